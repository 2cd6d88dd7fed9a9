"""Intercom's endpoints over the HTTP engine: what to ask each one and where its records are.

`IntercomClient` is the object every stream, the preflight and the post-load jobs hold: the
engine of `client.py` (auth, retries, rate limit, stats, `paginate`) plus one small method per
Intercom call. Every multi-page walk goes through `paginate` with a pager from `pagers.py`.
It knows nothing of dlt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from . import settings
from .client import HttpClient
from .errors import (
    IntercomMalformedResponseError,
    IntercomNotFoundError,
    IntercomRateLimitError,
    IntercomScrollError,
    IntercomTransientError,
)
from .pagers import BodyCursor, NextUrl, P, PageParse, PageRequest, QueryCursor, RecordsAt, ScrollPager

logger = logging.getLogger(__name__)

Record = dict[str, Any]

# where the records are in a search answer (conversations search answers "conversations" in
# some versions, tickets search "tickets")
SEARCH_RECORDS: dict[str, RecordsAt] = {
    "contacts_search": RecordsAt(("data", "conversations")),
    "conversations_search": RecordsAt(("data", "conversations")),
    "tickets_search": RecordsAt(("tickets", "data"), required=True),
}


class IntercomClient(HttpClient):
    """Synchronous, thread-safe Intercom API client: the engine plus Intercom's endpoints."""

    def __init__(self, access_token: str, **options: Any) -> None:
        super().__init__(access_token, **options)
        self._me: Record | None = None
        self._data_attributes: dict[str, list[Record]] = {}
        self._cache_lock = threading.Lock()
        self._scroll_lock = threading.Lock()
        # every company id of this client's last complete scroll, for the delete reconciliation
        self.scrolled_company_ids: frozenset[str] | None = None

    # ------------------------------------------------------------------ workspace
    def me(self) -> Record:
        """GET /me (cached): the token's admin with the workspace `app` (time zone, created_at)."""
        with self._cache_lock:
            if self._me is None:
                self._me = self.request("me")
            return self._me

    def workspace_timezone(self) -> str | None:
        """IANA time zone of the workspace; contacts search compares dates by day in it."""
        app = self.me().get("app")
        tz = app.get("timezone") if isinstance(app, dict) else None
        return tz if isinstance(tz, str) and tz else None

    def probe(self, endpoint: str) -> None:
        """One cheap call to `endpoint` (never opens a scroll): raises if the token may not use it."""
        if endpoint.endswith("_search"):
            query = {"field": "updated_at", "operator": ">", "value": str(int(time.time()))}
            self.request(endpoint, json={"query": query, "pagination": {"per_page": 1}})
        elif endpoint == "companies_list":
            self.request(endpoint, params={"per_page": 1})
        elif endpoint == "activity_logs":
            self.request(endpoint, params={"created_at_after": str(int(time.time()) - 60)})
        elif endpoint == "data_attributes":
            self.request(endpoint, params={"model": "contact"})
        else:
            self.request(endpoint)

    # ------------------------------------------------------------------ one-page lists
    def list_records(self, endpoint: str, params: Mapping[str, Any] | None = None) -> list[Record]:
        """One-page list endpoints (admins, tags, teams, segments, data_attributes)."""
        body = self.request(endpoint, params=params)
        key = settings.ENDPOINTS[endpoint].records
        records = body.get(key, body.get("data"))
        if not isinstance(records, list):
            raise IntercomMalformedResponseError(
                f"{settings.ENDPOINTS[endpoint].template}: answer has no '{key}' list", endpoint=endpoint
            )
        return [r for r in records if isinstance(r, dict)]

    def data_attributes(self, model: str) -> list[Record]:
        """GET /data_attributes?model=... once per client (used for typing and as a stream)."""
        with self._cache_lock:
            cached = self._data_attributes.get(model)
        if cached is None:
            cached = self.list_records("data_attributes", params={"model": model})
            with self._cache_lock:
                self._data_attributes[model] = cached
        return [dict(a) for a in cached]

    # ------------------------------------------------------------------ paged reads
    def search(
        self, endpoint: str, query: Mapping[str, Any], *, sort_field: str = "updated_at",
        per_page: int = settings.SEARCH_PAGE_SIZE, descending: bool = False, pager: BodyCursor | None = None,
        parse: PageParse[P] | None = None, starting_after: str | None = None,
    ) -> Iterator[list[Record] | P]:
        """Pages of a search endpoint, ascending on `sort_field` (unless `descending`); the cursor
        travels in the body. A `pager` of the caller's shows each page's `total_count`; a page
        `parse` reads is handed on as it made it (arrow_pages.py); `starting_after` starts the chain
        at a cursor an earlier chain was given."""
        pagination: dict[str, Any] = {"per_page": per_page}
        if starting_after is not None:
            pagination["starting_after"] = starting_after
        body = {
            "query": query, "sort": {"field": sort_field, "order": "descending" if descending else "ascending"},
            "pagination": pagination,
        }
        yield from self.paginate(
            endpoint, pager or BodyCursor(), PageRequest(json=body), records=SEARCH_RECORDS.get(endpoint, RecordsAt()),
            parse=parse,
        )

    def list_ids(self, endpoint: str, key: str) -> set[str]:
        """Every id of a cursor-paged GET list (`GET /contacts`, `GET /conversations`)."""
        first = PageRequest(params={"per_page": settings.SEARCH_PAGE_SIZE})
        ids: set[str] = set()
        for page in self.paginate(endpoint, QueryCursor(), first, records=RecordsAt((key, "data"), strict=False)):
            ids.update(str(r["id"]) for r in page if r.get("id") is not None)
        return ids

    def activity_logs(self, created_at_after: int, created_at_before: int | None) -> Iterator[list[Record]]:
        """Pages of one activity-log window; `pages.next` is followed as a URL."""
        params = {"created_at_after": str(int(created_at_after))}
        if created_at_before is not None:
            params["created_at_before"] = str(int(created_at_before))
        yield from self.paginate(
            "activity_logs", NextUrl(), PageRequest(params=params), records=RecordsAt(("activity_logs",))
        )

    # ------------------------------------------------------------------ details
    def get_conversation(self, conversation_id: str) -> Record | None:
        """GET /conversations/{id} with its parts (plain text bodies); None if it vanished (404)."""
        return self._detail("conversation", conversation_id, {"display_as": "plaintext"})

    def get_ticket(self, ticket_id: str) -> Record | None:
        """GET /tickets/{id} with its parts; None when the ticket vanished (404)."""
        return self._detail("ticket", ticket_id)

    def _detail(self, endpoint: str, record_id: str, params: Mapping[str, Any] | None = None) -> Record | None:
        try:
            return self.request(endpoint, path_params={"id": record_id}, params=params)
        except IntercomNotFoundError:
            self.stats.add("not_found_skipped", settings.ENDPOINTS[endpoint].template)
            logger.info("%s %s vanished before its detail fetch; skipped", endpoint, record_id)
            return None

    # ------------------------------------------------------------------ the companies scroll
    def scroll_companies(self) -> Iterator[list[Record]]:
        """Every company via GET /companies/scroll, one scroll at a time per client.

        A busy scroll (400 scroll_exists) is waited out with backoff; a 5xx or an expired scroll
        (404) mid-way restarts from scratch, and companies already yielded are not yielded again.
        Only restarts in a row that brought no new company count against `SCROLL_MAX_RESTARTS`:
        a long scroll on a flaky day keeps going while it gets further, a scroll that keeps
        breaking at the same place gives up. A scroll that ends leaves its ids in
        `scrolled_company_ids` (the delete reconciliation reuses them instead of scrolling again).
        """
        with self._scroll_lock:
            seen: set[str] = set()
            fruitless = 0
            while True:
                progressed = False
                try:
                    for page in self._scroll_once():
                        # a company without id passes on (kept aside downstream); never "None" for all
                        fresh = [c for c in page if c.get("id") is None or str(c["id"]) not in seen]
                        seen.update(str(c["id"]) for c in fresh if c.get("id") is not None)
                        if fresh:
                            progressed = True
                            yield fresh
                    self.scrolled_company_ids = frozenset(seen)
                    return
                except (IntercomTransientError, IntercomNotFoundError) as exc:
                    if isinstance(exc, IntercomRateLimitError):
                        raise
                    self.stats.add("scroll_restarts")
                    fruitless = 0 if progressed else fruitless + 1
                    if fruitless > settings.SCROLL_MAX_RESTARTS:
                        raise IntercomScrollError(
                            f"GET /companies/scroll failed {fruitless} times in a row without reaching a new "
                            f"company ({exc})"
                        ) from None
                    logger.warning("companies scroll broke (%s); restarting it from scratch", exc)

    def _scroll_once(self) -> Iterator[list[Record]]:
        pager = ScrollPager(self.backoff_base, self.backoff_max)
        yield from self.paginate("companies_scroll", pager, records=RecordsAt(("data",), required=True))

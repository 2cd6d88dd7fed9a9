"""Complete relations: what an embedded list leaves out, fetched only for records that changed.

Intercom embeds at most 10 `tags`, `companies` and `notes` in a contact (`{type: list, data,
url, total_count, has_more}`); the full list is at the list's `url`. Company `segments` are read
from GET /companies/{id}/segments. Both happen on the RAW record before it is shaped, so every
shaping path (dicts or Arrow) sees complete lists, and only for records that the incremental
filter let through (changed since the last run), a page at a time with the detail worker pool.

The relation tables are dlt child tables of their (merged) parents: when a parent is loaded
again, dlt deletes all its child rows and inserts the new ones, so a relation removed in
Intercom (a tag taken off a contact) disappears from the table, and in history mode each parent
version keeps its own relation rows. Table names (issue name -> table):

    contact_tags          contacts__tags          (contact_id, id = tag id)
    contact_companies     contacts__companies     (contact_id, id = company id)
    company_segments      companies__segments     (company_id, id = segment id)
    company_tags          companies__tags         (company_id, id = tag id)
    conversation_contacts conversations__contacts (conversation_id, id = contact id)
    conversation_tags     conversations__tags     (conversation_id, id = tag id)
    conversation_teammates conversations__teammates (conversation_id, id = admin id)
    team_admins           teams__admins           (team_id, admin_id)
    ticket_contacts       tickets__contacts       (ticket_id, id = contact id)

Pure functions plus calls through `IntercomClient.paginate`; nothing here knows dlt.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .api import IntercomClient
from .arrow_pages import ArrowPage, Page, records_of
from .errors import IntercomNotFoundError
from .pagers import NextUrlOrCursor, PageRequest, RecordsAt

logger = logging.getLogger(__name__)

# embedded contact lists completed through their `url` (notes stay embedded: at most 10 refs,
# `notes_total_count` says how many exist)
CONTACT_LISTS: dict[str, tuple[str, str]] = {
    # field: (endpoint key, element type)
    "tags": ("contact_tags", "tag"),
    "companies": ("contact_companies", "company"),
}
_MAX_LIST_PAGES = 1000  # a guard against a server that never stops paging
_RELATION_RECORDS = RecordsAt(("data", "tags", "companies", "segments"), strict=False)


def needs_completion(envelope: Any) -> bool:
    """True when an embedded list holds fewer elements than exist (`has_more` or `total_count`)."""
    if type(envelope) is not dict and not isinstance(envelope, Mapping):
        return False
    data = envelope.get("data")
    shown = len(data) if isinstance(data, list) else 0
    if envelope.get("has_more") is True:
        return True
    total = envelope.get("total_count")
    try:
        return total is not None and int(total) > shown
    except (TypeError, ValueError):
        return False


def _ref(element: Mapping[str, Any], element_type: str, url_root: str) -> dict[str, Any]:
    """The embedded reference shape `{type, id, url}` of a full object from a relation list."""
    eid = str(element.get("id"))
    return {"type": element.get("type") or element_type, "id": eid, "url": f"/{url_root}/{eid}"}


def fetch_list(client: IntercomClient, endpoint: str, url: str | None, record_id: str) -> list[dict[str, Any]] | None:
    """Every element of a relation list (following `pages.next`); None if the parent vanished."""
    first = PageRequest(url=url) if url and urlsplit(url).path else PageRequest(path_params={"id": record_id})
    try:
        pages = client.paginate(endpoint, NextUrlOrCursor(), first, records=_RELATION_RECORDS, max_pages=_MAX_LIST_PAGES)
        return [record for page in pages for record in page]
    except IntercomNotFoundError:
        client.stats.add("not_found_skipped", f"{endpoint}")
        return None


def complete_contact(client: IntercomClient, raw: dict[str, Any]) -> dict[str, Any]:
    """The contact with complete `tags` and `companies` (a copy when anything was fetched)."""
    out = raw
    for field, (endpoint, element_type) in CONTACT_LISTS.items():
        envelope = raw.get(field)
        if not needs_completion(envelope):
            continue
        assert isinstance(envelope, Mapping)
        items = fetch_list(client, endpoint, envelope.get("url"), str(raw.get("id")))
        if items is None:
            continue  # the contact vanished meanwhile: keep what was embedded
        if out is raw:
            out = dict(raw)
        url_root = "tags" if field == "tags" else "companies"
        out[field] = {**envelope, "data": [_ref(i, element_type, url_root) for i in items]}
    return out


def complete_company(client: IntercomClient, raw: dict[str, Any]) -> dict[str, Any]:
    """The company with its segments from GET /companies/{id}/segments (a copy)."""
    items = fetch_list(client, "company_segments", None, str(raw.get("id")))
    if items is None:
        return raw
    out = dict(raw)
    out["segments"] = {"type": "segment.list", "segments": items}
    return out


def _pooled(
    fn: Callable[[IntercomClient, dict[str, Any]], dict[str, Any]], client: IntercomClient, raws: Sequence[dict[str, Any]],
    todo: Sequence[int], max_workers: int,
) -> list[dict[str, Any]]:
    """`raws` with `fn` applied to the records at the positions `todo`, concurrently."""
    out = list(raws)
    if not todo:
        return out
    if len(todo) == 1 or max_workers <= 1:
        for i in todo:
            out[i] = fn(client, raws[i])
        return out
    with ThreadPoolExecutor(max_workers=min(max_workers, len(todo)), thread_name_prefix="intercom-rel") as pool:
        for i, done in zip(todo, pool.map(lambda j: fn(client, raws[j]), todo), strict=True):
            out[i] = done
    return out


@dataclass(frozen=True)
class Completion:
    """How a stream's records are completed: which need requests, and the requests for one."""

    record: Callable[[IntercomClient, dict[str, Any]], dict[str, Any]]
    wanted: Callable[[dict[str, Any]], bool]
    lists: tuple[str, ...] | None = None  # `wanted` only for a list cut among these (None: any record may be)

    def todo(self, raws: Sequence[dict[str, Any]]) -> list[int]:
        """The positions of the records that need requests."""
        return [i for i, r in enumerate(raws) if self.wanted(r)]

    def page(
        self, client: IntercomClient, raws: Sequence[dict[str, Any]], max_workers: int, todo: Sequence[int],
    ) -> list[dict[str, Any]]:
        """One page with its records at `todo` completed concurrently."""
        return _pooled(self.record, client, raws, todo, max_workers)


# a contact's tag and company lists when cut at 10; every company's segments (one request each)
CONTACTS = Completion(
    complete_contact, lambda r: any(needs_completion(r.get(f)) for f in CONTACT_LISTS), tuple(CONTACT_LISTS),
)
COMPANIES = Completion(complete_company, lambda r: r.get("id") is not None)


def completed_meanwhile(
    completion: Completion, client: IntercomClient, pages: Iterable[Page], max_workers: int,
    behind: int = 32, pages_at_once: int = 8,
) -> Iterator[Page]:
    """Pages with their records completed; a page that needs requests is completed in a pool (up to
    `pages_at_once` pages at a time) and handed on `behind` pages later, the others at once.

    Why: completing a page waits for its relation requests (two round trips for a contact with
    more than 10 tags and companies), and the stream's reading thread, which also shapes every
    page, waited with it: 20 such requests at 100 ms were 2 s of a 15 s sync of 200,000 contacts.
    32 pages are about 0.3 s of shaping, time for two round trips. The order stays a function of
    the pages alone, not of the requests' timing.
    """
    with ThreadPoolExecutor(max_workers=pages_at_once, thread_name_prefix="intercom-complete") as pool:
        waiting: deque[tuple[int, Future[list[dict[str, Any]]]]] = deque()
        try:
            for n, page in enumerate(pages):
                whole = isinstance(page, ArrowPage) and completion.lists is not None and not page.lists_cut(completion.lists)
                raws = [] if whole else records_of(page)  # an Arrow page with no list cut stays one
                todo = completion.todo(raws)
                if todo:
                    waiting.append((n + behind, pool.submit(completion.page, client, raws, max_workers, todo)))
                else:
                    yield page if whole else raws
                while waiting and waiting[0][0] <= n:
                    yield waiting.popleft()[1].result()
            while waiting:
                yield waiting.popleft()[1].result()
        finally:
            for _, future in waiting:
                future.cancel()


def with_team_admins(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A team with `admins` = [{team_id, admin_id}] from `admin_ids` (the `teams__admins` table)."""
    out = dict(raw)
    listed = raw.get("admin_ids")
    ids: Iterable[Any] = listed if isinstance(listed, list) else []  # never the characters of a string
    out["admins"] = [{"team_id": str(raw.get("id")), "admin_id": str(a)} for a in ids if a is not None]
    return out

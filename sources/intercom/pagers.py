"""How Intercom's endpoints page: small pager objects driven by the client's one `paginate` loop.

Each pager answers one question, "what is the request for the next page?", from the page just
read (and, for the companies scroll, whether a failed first page may be waited out). The loop
itself, the records' place in the body and the HTTP behaviour live in `client.py`.

Intercom has five styles:

* cursor in the body (`POST /*/search`): `pages.next.starting_after` goes into `pagination`;
* cursor in the query (`GET /contacts`, `GET /conversations`): `?starting_after=`;
* next URL (`GET /admins/activity_logs`, relation lists): `pages.next` is a URL to follow;
* the companies scroll: `scroll_param` in the query; a page is never resent (see `ScrollPager`);
* page numbers (`GET /conversations/deleted`, 2.16+): `page` while below `pages.total_pages`.

`pages.next` is read in one place, `next_link`, tolerant of every shape seen (a URL string, an
object with `starting_after` and/or `url`, or anything else meaning "no next page").
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sized
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from . import settings
from .errors import IntercomAPIError, IntercomScrollError

Records = Sized  # a page's records: the pagers only ask whether there are any


class ParsedPage(Protocol):
    """A page a caller's parser read instead of orjson (a search page read by Arrow, arrow_pages.py):
    its envelope for the pager; its records are the caller's."""

    @property
    def envelope(self) -> Mapping[str, Any]: ...

    def __len__(self) -> int: ...


P = TypeVar("P", bound=ParsedPage)
PageParse = Callable[[bytes], P | None]  # a page's bytes as the caller reads them; None: orjson decodes them


@dataclass(frozen=True)
class PageRequest:
    """What one page request sends: query, JSON body, or a server-given URL instead of the path."""

    params: Mapping[str, Any] | None = None
    json: Mapping[str, Any] | None = None
    url: str | None = None
    path_params: Mapping[str, str] | None = None
    idempotent: bool = True  # False: never resent after a failure (a scroll page)


class Pager(Protocol):
    """The next page's request, or None when the page just read was the last."""

    def next_request(self, sent: PageRequest, body: Mapping[str, Any], records: Records) -> PageRequest | None: ...

    def wait_before_retry(self, exc: IntercomAPIError, sent: PageRequest) -> float | None:
        """Seconds to wait before sending `sent` again after `exc`; None: let `exc` through."""
        ...


def next_link(body: Mapping[str, Any]) -> str | Mapping[str, Any] | None:
    """`pages.next` of a page body: a URL, a cursor object, or None."""
    pages = body.get("pages")
    nxt = pages.get("next") if isinstance(pages, Mapping) else None
    return nxt if isinstance(nxt, (str, Mapping)) and nxt else None


def next_cursor(body: Mapping[str, Any]) -> str | None:
    """`pages.next.starting_after`, when it is a non-empty string."""
    nxt = next_link(body)
    cursor = nxt.get("starting_after") if isinstance(nxt, Mapping) else None
    return cursor if isinstance(cursor, str) and cursor else None


def next_url(body: Mapping[str, Any]) -> str | None:
    """`pages.next` as a URL: the string itself or the object's `url`."""
    nxt = next_link(body)
    url = nxt.get("url") if isinstance(nxt, Mapping) else nxt
    return url if isinstance(url, str) and url else None


class _NoRetry:
    def wait_before_retry(self, exc: IntercomAPIError, sent: PageRequest) -> float | None:
        return None


class BodyCursor(_NoRetry):
    """Search endpoints: the cursor travels in the body's `pagination.starting_after`.

    Keeps the last page's `total_count` (the records the query matches), which sizes search
    windows, and the cursor that page was asked with, from which a chain that ended can be asked
    again for what sorted after it since (window_readers.py).
    """

    def __init__(self) -> None:
        self.total_count: int | None = None
        self.asked_after: str | None = None  # the last page's `starting_after` (None: the first page)

    def next_request(self, sent: PageRequest, body: Mapping[str, Any], records: Records) -> PageRequest | None:
        total = body.get("total_count")
        self.total_count = total if isinstance(total, int) and not isinstance(total, bool) else None
        pagination = (sent.json or {}).get("pagination")
        asked = pagination.get("starting_after") if isinstance(pagination, Mapping) else None
        self.asked_after = asked if isinstance(asked, str) else None
        cursor = next_cursor(body)
        if cursor is None or not records:
            return None
        payload = dict(sent.json or {})
        payload["pagination"] = {**dict(payload.get("pagination") or {}), "starting_after": cursor}
        return replace(sent, json=payload)


class QueryCursor(_NoRetry):
    """GET lists: the cursor travels as `?starting_after=`."""

    def next_request(self, sent: PageRequest, body: Mapping[str, Any], records: Records) -> PageRequest | None:
        cursor = next_cursor(body)
        if cursor is None or not records:
            return None
        return replace(sent, params={**dict(sent.params or {}), "starting_after": cursor})


class NextUrl(_NoRetry):
    """`pages.next` is a URL to follow as given (activity logs)."""

    def next_request(self, sent: PageRequest, body: Mapping[str, Any], records: Records) -> PageRequest | None:
        url = next_url(body)
        if url is None or not records:
            return None
        return PageRequest(url=url)


class NextUrlOrCursor(_NoRetry):
    """Relation lists: `pages.next` is a URL in some answers and a cursor object in others."""

    def next_request(self, sent: PageRequest, body: Mapping[str, Any], records: Records) -> PageRequest | None:
        if not records:
            return None
        nxt = next_link(body)
        if isinstance(nxt, str):
            return PageRequest(url=nxt)
        cursor = next_cursor(body)
        return replace(sent, params={"starting_after": cursor}) if cursor else None


class PageNumber(_NoRetry):
    """`page` numbers (GET /conversations/deleted): `pages.next` when given, else the page after
    `pages.page` while it is below `pages.total_pages`."""

    def next_request(self, sent: PageRequest, body: Mapping[str, Any], records: Records) -> PageRequest | None:
        if not records:
            return None
        url = next_url(body)
        if url is not None:
            return PageRequest(url=url)
        pages = body.get("pages")
        page = pages.get("page") if isinstance(pages, Mapping) else None
        total = pages.get("total_pages") if isinstance(pages, Mapping) else None
        if isinstance(page, int) and isinstance(total, int) and page < total:
            return replace(sent, params={**dict(sent.params or {}), "page": page + 1}, url=None)
        return None


@dataclass
class ScrollPager:
    """GET /companies/scroll: `scroll_param` in the query, the first page waits out a busy scroll.

    A scroll page is not idempotent (the server may have moved the scroll on before an answer was
    lost), so only the first request may be resent; a later failure ends this scroll and the
    caller starts a new one. A first request answered 400 `scroll_exists` (another scroll is open
    in the workspace) is waited out with backoff, up to `SCROLL_BUSY_MAX_WAIT_SECONDS`.
    """

    backoff_base: float
    backoff_max: float
    busy_waited: float = 0.0
    busy_attempts: int = 0
    scroll_param: str | None = field(default=None, repr=False)

    def next_request(self, sent: PageRequest, body: Mapping[str, Any], records: Records) -> PageRequest | None:
        param = body.get("scroll_param")
        self.scroll_param = param if isinstance(param, str) and param else self.scroll_param
        if not records or not self.scroll_param:
            return None
        return PageRequest(params={"scroll_param": self.scroll_param}, idempotent=False)

    def wait_before_retry(self, exc: IntercomAPIError, sent: PageRequest) -> float | None:
        if sent.params or exc.status != 400 or exc.code != "scroll_exists":
            return None
        delay = min(self.backoff_max, self.backoff_base * (2**self.busy_attempts)) * random.uniform(0.5, 1.0)
        if self.busy_waited + delay > settings.SCROLL_BUSY_MAX_WAIT_SECONDS:
            raise IntercomScrollError(
                "GET /companies/scroll: another scroll is open in this workspace (400 "
                "scroll_exists) and did not expire in time; is another sync running?",
                status=400, code="scroll_exists",
            ) from None
        self.busy_waited += delay
        self.busy_attempts += 1
        return delay


@dataclass(frozen=True)
class RecordsAt:
    """Where a page's records are: the first of `keys` holding a list.

    `strict`: a key holding something else than a list is a malformed answer (retried by nobody:
    the body parsed, the shape is wrong). `required`: a page without any of the keys is malformed.
    Otherwise the page has no records.
    """

    keys: tuple[str, ...] = ("data",)
    strict: bool = True
    required: bool = False

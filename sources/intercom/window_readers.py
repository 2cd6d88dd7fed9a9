"""The readers of a split search (windows.py plans it): its windows' chains side by side, each
window's records kept to its range, and the open tail read beside them, then asked again once they
are done for what changed meanwhile."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import queue
import threading
from collections import deque
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson

from . import schema, settings
from .api import IntercomClient
from .arrow_pages import ArrowPage, Page, PageParser
from .errors import IntercomAPIError, IntercomAuthError, IntercomPermissionError
from .pagers import BodyCursor
from .streams import (
    DAY_MARGIN,
    PAGES_DONE,
    PagesAhead,
    ReaderFailed,
    day_safe_lower_bound,
    day_safe_upper_bound,
    workspace_zone,
)

logger = logging.getLogger(__name__)

Record = dict[str, Any]
# Pages read but not yet taken by the stream, besides one per reader. The stream takes them in
# bursts: between two it writes a batch out (Arrow, dlt), and with 4 pages held the readers
# stopped then, down to 3-15 of 27 requests in flight for a quarter second several times a sync.
# contacts-heavy --scale 10 (100 ms, 10,000/min): 4 pages 10.6-11.3 s, 16 10.0-10.2 s, 32
# 9.2-9.9 s, 64 9.6-10.2 s; peak RSS 380-396 MB in each (a parsed page is about 0.4 MB).
_HANDED_ON_PAGES = 32


@dataclass(frozen=True)
class Window:
    """Records with lo <= updated_at < hi (hi None: open-ended, the tail)."""

    lo: int
    hi: int | None

    def holds(self, record: Record) -> bool:
        epoch = schema.to_epoch(record.get("updated_at"))
        if epoch is None:  # no usable cursor: passed on, the stream's screening rejects it
            return True
        return self.lo <= epoch and (self.hi is None or epoch < self.hi)


class Units:
    """Window bounds aligned to a unit: local days of the workspace zone, or seconds."""

    def __init__(self, unit: Literal["day", "second"], tz: str | None) -> None:
        self.unit = unit
        self.tz = tz
        self.zone: ZoneInfo | None = workspace_zone(tz) if unit == "day" else None
        if unit == "day" and self.zone is None:
            self.zone = ZoneInfo("UTC")  # days of an unknown zone: queried with two days of margin
            self.exact = False
        else:
            self.exact = unit == "day"

    def floor(self, epoch: int) -> int:
        if self.zone is None:
            return epoch
        local = datetime.fromtimestamp(epoch, self.zone)
        return int(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())

    def ceil(self, epoch: int) -> int:
        """The first unit bound at or after `epoch` (the next local midnight for days)."""
        floor = self.floor(epoch)
        if floor == epoch or self.zone is None:
            return epoch
        day = datetime.fromtimestamp(floor, self.zone).date() + timedelta(days=1)
        return int(datetime(day.year, day.month, day.day, tzinfo=self.zone).timestamp())

    def cuts(self, lo: int, hi: int, pieces: int) -> list[int]:
        """Up to `pieces` + 1 aligned bounds from lo to hi (both included), evenly spread."""
        if self.zone is None:
            step = max(1, math.ceil((hi - lo) / pieces))
            return [*range(lo, hi, step), hi]
        days = []
        day = datetime.fromtimestamp(lo, self.zone).date()
        while True:
            epoch = int(datetime(day.year, day.month, day.day, tzinfo=self.zone).timestamp())
            if epoch >= hi:
                break
            days.append(epoch)
            day += timedelta(days=1)
        step = max(1, math.ceil(len(days) / pieces))
        return [*days[::step], hi]

    def query(self, window: Window) -> dict[str, Any]:
        """A search query matching at least the window's records, under day or second comparison."""
        if self.exact:  # lo, hi are local midnights: `> lo - 1h` matches from lo's day, `< hi + 1h` before hi's
            lower, upper = window.lo - DAY_MARGIN, None if window.hi is None else window.hi + DAY_MARGIN
        else:
            lower = day_safe_lower_bound(datetime.fromtimestamp(window.lo, ZoneInfo("UTC")), self.tz)
            upper = (
                None if window.hi is None
                else day_safe_upper_bound(datetime.fromtimestamp(window.hi, ZoneInfo("UTC")), self.tz)
            )
        low = {"field": "updated_at", "operator": ">", "value": str(max(0, lower))}
        if upper is None:
            return low
        return {"operator": "AND", "value": [low, {"field": "updated_at", "operator": "<", "value": str(upper)}]}


@dataclass(frozen=True)
class _Added:
    """A reader split its window: this many more windows will each end with `PAGES_DONE`."""

    windows: int


Version = tuple[str, float | None] | bytes  # `ArrowPage.keys()`'s (id, cursor), else a record's JSON


@dataclass(frozen=True)
class _TailEnded:
    """The tail's chain reached its end: once every window is done, it is asked again from the
    cursor its last page was asked with (`after`), without the record versions it read (`seen`)."""

    after: str | None
    seen: frozenset[Version]


def versions(page: Page) -> frozenset[Version]:
    """Each record's version on a page: its id and `updated_at`, else (one unusable) its whole JSON."""
    if isinstance(page, ArrowPage):
        keys = page.keys()
        if keys is not None:
            return frozenset(keys)
        page = page.decoded()
    return frozenset(_version(r) for r in page)


def _version(record: Record) -> Version:
    rid, epoch = record.get("id"), schema.to_epoch(record.get("updated_at"))
    if rid is None or epoch is None:
        return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    return (str(rid), epoch)


def _refused_cursor(exc: IntercomAPIError) -> bool:
    """A 4xx to a search sent again with a cursor it gave: a cursor that may not be sent twice.
    Denied access is not that (it fails the run as ever), nor is a 429 (the client waits)."""
    status = exc.status or 0
    return 400 <= status < 500 and status != 429 and not isinstance(exc, (IntercomAuthError, IntercomPermissionError))


def unseen(page: Page, seen: AbstractSet[Version]) -> Page:
    """The records of a page whose version is not in `seen`."""
    if not seen:
        return page
    if isinstance(page, ArrowPage):
        keys = page.keys()
        if keys is not None:
            return page.take([i for i, key in enumerate(keys) if key not in seen])
        page = page.decoded()
    return [r for r in page if _version(r) not in seen]


def last_epoch(page: Page) -> int | None:
    """The newest usable `updated_at` of a page (ascending: its last), None when none is usable."""
    if isinstance(page, ArrowPage):
        seconds = page.epochs
        if seconds is not None:
            return max(seconds) if seconds else None
        page = page.decoded()
    epochs = [e for e in (schema.to_epoch(r.get("updated_at")) for r in page) if e is not None]
    return max(epochs) if epochs else None


def within(page: Page, window: Window) -> Page:
    """The records of a page inside `window` (one without a usable cursor passes: screened later)."""
    if isinstance(page, ArrowPage):
        epochs = page.epochs
        if epochs is not None:
            lo, hi = window.lo, window.hi
            return page.take([i for i, e in enumerate(epochs) if lo <= e and (hi is None or e < hi)])
        page = page.decoded()
    return [r for r in page if window.holds(r)]


def read_concurrently(
    client: IntercomClient, endpoint: str, units: Units, windows: list[Window], readers: int, mean_pages: float,
    parse: PageParser | None = None, tail: Window | None = None,
) -> Iterator[Page]:
    """The pages of every window, and of the open `tail`, as they come; one page per reader held, and `_HANDED_ON_PAGES`.

    Windows are even in time, records are not (a workspace's recent days hold the most), and one
    window's pages come one round trip after another: at 200,000 contacts the newest of 61 even
    windows held 79 pages, 8 s at 100 ms whatever the other readers do. So a window whose first
    page counts more pages than the windows' mean keeps its first share of the range on its own
    chain, which it leaves once a page passes that share, and hands the rest on as new windows,
    which split again the same way (down to one unit: a day of contacts). `mean_pages`: the
    planned windows' mean. A free reader takes the newest window waiting, shares handed on before
    any other: the long chains start first, and the last ones to start are short (read oldest
    first, the readers tapered off from 18 requests in flight to 1 over the last 1.3 s of 9.6).

    The tail (a whole day of contacts, read last it took 1 s of 11 at 100 ms) is read first, beside
    the windows. A record changed meanwhile sorts after every other (its `updated_at` is the
    newest), past the tail's end when the tail was read before it changed: so once every window is
    done, the tail's last page is asked again with the cursor it was asked with, and the chain goes
    on from there, without the record versions the tail held. Search cursors name the last record
    served (docs/emulator-contract.md): asked again, one gives what sorts after that record now. A
    4xx to a cursor sent twice reads the tail again from its start instead, nothing twice.
    """
    if not windows:
        return
    ahead = PagesAhead(contextvars.copy_context())
    # pages held: one per reader (waiting to be handed on) plus these; a reader fetches its next
    # page only once its last one was taken, so a slow consumer holds the readers, not memory
    ahead.pages.maxsize = _HANDED_ON_PAGES
    pool = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="intercom-window")
    futures: list[Future[None]] = []
    # the newest windows first, split-off shares before any window not started: a workspace's
    # recent days hold the most, so the longest chains start early and the last ones are short
    waiting, waiting_lock = deque(reversed(windows)), threading.Lock()

    def share_of(window: Window, first: Page, pager: BodyCursor) -> Window:
        """The part of `window` this chain keeps; the rest is submitted as new windows."""
        pages = math.ceil((pager.total_count or 0) / settings.SEARCH_PAGE_SIZE)
        if window.hi is None or pages <= mean_pages or last_epoch(first) is None:
            return window
        cuts = units.cuts(window.lo, window.hi, math.ceil(pages / mean_pages))
        if len(cuts) <= 2 or (cuts[0], cuts[-1]) != (window.lo, window.hi) or ahead.stop.is_set():
            return window
        rest = [Window(lo, hi) for lo, hi in zip(cuts[1:], cuts[2:], strict=False)]
        if not ahead.put(_Added(len(rest))):
            return window
        with waiting_lock:
            waiting.extendleft(rest)  # before the windows not started: the newest first
        futures.extend(pool.submit(read_next) for _ in rest)
        logger.debug("window [%s, %s) of %d pages split in %d", window.lo, window.hi, pages, len(cuts) - 1)
        return Window(cuts[0], cuts[1])

    def read_next() -> None:
        """The first window waiting when a reader is free (one task a window, so one is waiting)."""
        with waiting_lock:
            window = waiting.popleft()
        read(window)

    def read(window: Window) -> None:
        pager = BodyCursor()
        chain = client.search(endpoint, units.query(window), pager=pager, parse=parse)
        try:
            kept = window
            for n, page in enumerate(chain):
                if n == 0:
                    kept = share_of(window, page, pager)
                if not ahead.put(within(page, kept)):
                    return
                if kept is not window and kept.hi is not None and (last_epoch(page) or 0) >= kept.hi:
                    break  # ascending: every record of the kept share was on this page or before
            ahead.put(PAGES_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
            ahead.put(ReaderFailed(exc))
        finally:
            chain.close()

    def tail_pages(window: Window, after: str | None, seen: set[Version], pager: BodyCursor) -> bool:
        """Hands on the tail's pages from `after`, without the versions in `seen` (which grows);
        False when the consumer stopped."""
        chain = client.search(endpoint, units.query(window), pager=pager, parse=parse, starting_after=after)
        try:
            for page in chain:
                new = unseen(page, seen)
                seen |= versions(new)
                if not ahead.put(within(new, window)):
                    return False
            return True
        finally:
            chain.close()

    def read_tail(window: Window, ended: _TailEnded | None) -> None:
        """The tail's chain; then (`ended`) what sorts after where it ended, asked once every window is done."""
        pager, seen = BodyCursor(), set(ended.seen) if ended is not None else set()
        after = ended.after if ended is not None else None
        try:
            try:
                handed_on = tail_pages(window, after, seen, pager)
            except IntercomAPIError as exc:
                if after is None or not _refused_cursor(exc):
                    raise
                # a cursor not taken a second time: the tail again from its start, nothing read twice
                logger.info("%s did not take a search cursor again (%s); the tail is read again", endpoint, exc.status)
                pager = BodyCursor()
                handed_on = tail_pages(window, None, seen, pager)
            if handed_on:
                ahead.put(PAGES_DONE if ended is not None else _TailEnded(pager.asked_after, frozenset(seen)))
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
            ahead.put(ReaderFailed(exc))

    if tail is not None:  # first: the tail is one chain, often the longest
        futures.append(pool.submit(read_tail, tail, None))
    futures.extend(pool.submit(read_next) for _ in windows)
    try:
        done, expected = 0, len(windows) + (tail is not None)
        ended: _TailEnded | None = None
        while done < expected:
            item = ahead.pages.get()
            if item is PAGES_DONE:
                done += 1
            elif isinstance(item, _Added):
                expected += item.windows
            elif isinstance(item, _TailEnded):
                ended = item
            elif isinstance(item, ReaderFailed):
                raise item.exc
            else:
                yield item
            if ended is not None and done == expected - 1:  # every window done: the tail asked again
                futures.append(pool.submit(read_tail, tail, ended))
                ended = None
    finally:
        ahead.stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        while not all(f.done() for f in list(futures)):  # drained so that a reader blocked on a full queue sees `stop`
            with contextlib.suppress(queue.Empty):
                ahead.pages.get(timeout=0.1)

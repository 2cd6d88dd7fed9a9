"""Search streams read as disjoint `updated_at` windows side by side.

Why: one search is one cursor chain, a page at a time, so latency, not the quota, sets its pace
(200,000 contacts at 100 ms: 1,334 pages one after another). Disjoint ranges of `updated_at`
are independent chains, read concurrently.

How a split search reads (`windowed_search`):

1. The stream's usual first page (the whole range, ascending) is the scout: its `total_count`
   says whether splitting is worth it. A small search (an incremental run) goes on as one chain,
   so its request count does not change.
2. Otherwise one more request (descending, one record) gives the newest `updated_at`, M. The
   closed windows cover [D, T): D is the unit (day, second) of the scout page's last record (the
   records before D are complete on the scout page and kept), T the unit of M (a backfill: its
   end). Windows are aligned to the spec's unit: contacts search compares dates by calendar day in
   the workspace time zone, so its windows are whole local days (DST days included).
3. The windows are read concurrently (a bounded queue between the readers and the stream, like
   `read_ahead`); each query is a superset of its window under either date granularity and every
   record outside [lo, hi) is dropped, so a record with one `updated_at` is read exactly once.
   A window whose first page counts more pages than the mean keeps its first share and hands the
   rest of its range on as new windows (`_concurrently`).
4. Then the open tail [T, now) is read as one chain, last: a record updated while the sync runs
   gets a new `updated_at` >= M >= T and is read there even when its old window was already done
   (or had not started yet). Like the single chain before, such a record is then read twice, in
   its two versions; the merge keeps one row per id (a first load into empty tables is merged
   then too, first_load.py).

The number of readers is what the quota leaves to the search: the client's suggested concurrency,
divided among the calls each record costs (a conversation's detail GET). A detail-bound stream
stays one chain.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import queue
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import dlt
from dlt.extract.incremental import Incremental

from . import schema, settings
from .api import IntercomClient
from .arrow_pages import PAGE_PARSER, ArrowPage, Page, PageParser
from .pagers import BodyCursor
from .streams import (
    DAY_MARGIN,
    PAGES_DONE,
    RESOURCE_STATE,
    PagesAhead,
    ReaderFailed,
    StreamContext,
    build_search_query,
    day_safe_lower_bound,
    day_safe_upper_bound,
    workspace_zone,
)

logger = logging.getLogger(__name__)

Record = dict[str, Any]
_HANDED_ON_PAGES = 4  # pages read but not yet taken by the stream, besides one per reader


@dataclass(frozen=True)
class SearchSplit:
    """How a search stream may be split: window `unit` ("day": the search compares dates by
    calendar day in the workspace zone; "second"), and the calls each record costs besides its
    search page (a detail GET), which the search's readers share the quota with."""

    unit: Literal["day", "second"]
    calls_per_record: int = 0


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


STATE_KEY = "search_windows"  # resource state: {"from": epoch, "done_until": epoch, "more": bool}


def windowed_search(endpoint: str, split: SearchSplit) -> Callable[[StreamContext, Incremental[Any]], Iterator[Page]]:
    """The page source of a search stream that may be read as concurrent windows (see module doc).
    The windows' pages are parsed by the stream's `PAGE_PARSER` when it can (arrow_pages.py)."""

    def pages(ctx: StreamContext, cursor: Incremental[Any]) -> Iterator[Page]:
        client, progress = ctx.client, _Progress(cursor)
        tz = client.workspace_timezone()
        lower = progress.resume_from()
        scout = BodyCursor()
        chain = client.search(endpoint, build_search_query(lower, cursor.end_value, tz), pager=scout)
        first = next(chain, None)
        if first is None:
            progress.finished()
            return
        total = scout.total_count
        if total is None or total <= settings.SEARCH_SPLIT_MIN_PAGES * settings.SEARCH_PAGE_SIZE:
            progress.finished()
            yield progress.kept(first)
            for page in chain:
                yield progress.kept(page)
            return
        chain.close()
        plan = _Plan(
            client, endpoint, Units(split.unit, tz), cursor, lower, total, _readers(client, split), PAGE_PARSER.get(),
        )
        yield from plan.pages(first, progress, ctx.checkpoint_records)

    return pages


def _readers(client: IntercomClient, split: SearchSplit) -> int:
    share = 1 + split.calls_per_record * settings.SEARCH_PAGE_SIZE
    return max(2, math.ceil(client.suggested_concurrency() / share))


class _Progress:
    """A split search's progress in the resource state, committed with each load package.

    Why: dlt commits a resource's state only with its load package, at the end of a run's extract,
    so a long split search ends its run every `checkpoint_records` records with `more` set, and the
    pipeline runs again (`run_until_caught_up`). The next part starts at `done_until`: every record
    below it was loaded with the package that saved it (the windows are done in ascending groups,
    so dlt's cursor, committed with it, never passes an unread window either). A backfill's saved
    progress counts only for the same start.
    """

    def __init__(self, cursor: Incremental[Any]) -> None:
        state = RESOURCE_STATE.get()
        self.state: dict[str, Any] = state if state is not None else dlt.current.resource_state()
        self.start = int(cursor.start_value.timestamp()) if cursor.start_value is not None else None
        self.backfill = cursor.end_value is not None
        saved = self.state.get(STATE_KEY) or {}
        done = saved.get("done_until")
        # a backfill's progress is its own only for the same start; a scheduled run's is always its own
        same = saved.get("more") and (not self.backfill or saved.get("from") == self.start)
        self.done_until: int | None = done if same and isinstance(done, int) else None
        if self.done_until is not None and self.start is not None and self.done_until <= self.start:
            self.done_until = None

    def resume_from(self) -> datetime | None:
        """Where this run's search starts: a backfill's saved progress, else the cursor's start."""
        if self.done_until is not None:
            return datetime.fromtimestamp(self.done_until, ZoneInfo("UTC"))
        return datetime.fromtimestamp(self.start, ZoneInfo("UTC")) if self.start is not None else None

    def kept(self, page: Page) -> Page:
        """A resumed backfill's records below its saved progress were loaded: dropped."""
        if self.done_until is None:
            return page
        return _within(page, Window(self.done_until, None))

    def more(self, done_until: int) -> None:
        self.state[STATE_KEY] = {"from": self.start, "done_until": done_until, "more": True}

    def finished(self) -> None:
        self.state.pop(STATE_KEY, None)


def unfinished(resource_states: Mapping[str, Any]) -> list[str]:
    """The streams whose split search ended its run early and must run again (by resource name)."""
    return [
        name for name, state in resource_states.items()
        if isinstance(state, Mapping) and isinstance(state.get(STATE_KEY), Mapping) and state[STATE_KEY].get("more")
    ]


@dataclass
class _Plan:
    """The windows of one split search, from the scout page on."""

    client: IntercomClient
    endpoint: str
    units: Units
    cursor: Incremental[Any]
    lower: datetime | None
    total: int
    readers: int
    parse: PageParser | None

    def _query(self) -> dict[str, Any]:
        return build_search_query(self.lower, self.cursor.end_value, self.units.tz)

    def pages(self, first: list[Record], progress: _Progress, checkpoint_records: int) -> Iterator[Page]:
        units = self.units
        scouted = _last_epoch(first)
        if scouted is None:  # nothing to place windows with: one chain
            progress.finished()
            yield progress.kept(first)
            for page in self.client.search(self.endpoint, self._query()):
                yield progress.kept(page)
            return
        start = max(units.floor(scouted), progress.done_until or 0)  # a resumed part: from where it stopped
        yield progress.kept([r for r in first if Window(0, start).holds(r)])  # complete below `start`: sorted

        newest_page = next(self.client.search(self.endpoint, self._query(), descending=True, per_page=1), [])
        newest = schema.to_epoch(newest_page[0].get("updated_at")) if newest_page else None
        newest = max(newest or 0, scouted)
        backfill_end = int(self.cursor.end_value.timestamp()) if self.cursor.end_value is not None else None
        # closed up to the newest record's unit (a record changed from now on lands past it, in the
        # tail), or up to a backfill's end when that comes first
        end = units.floor(newest)
        if backfill_end is not None:
            end = min(end, units.ceil(backfill_end))
        pieces = max(2, min(
            2 * self.readers, math.ceil(self.total / settings.SEARCH_PAGE_SIZE / settings.SEARCH_WINDOW_MIN_PAGES)
        ))
        cuts = units.cuts(start, end, pieces) if end > start else [start]
        windows = [Window(lo, hi) for lo, hi in zip(cuts, cuts[1:], strict=False)]
        # a checkpoint every `checkpoint_records` (windows assumed to hold equal shares)
        per_part = max(1, min(len(windows), math.floor(len(windows) * checkpoint_records / self.total)))
        logger.info(
            "%s: %d records read as %d windows by %d readers (%d windows per load package)",
            settings.ENDPOINTS[self.endpoint].template, self.total, len(windows), self.readers, per_part,
        )
        part, rest = windows[:per_part], windows[per_part:]
        mean_pages = max(settings.SEARCH_WINDOW_MIN_PAGES, self.total / settings.SEARCH_PAGE_SIZE / max(1, len(windows)))
        yield from _concurrently(self.client, self.endpoint, units, part, self.readers, mean_pages, self.parse)
        if rest:
            assert part[-1].hi is not None
            progress.more(part[-1].hi)
            return
        progress.finished()
        if backfill_end is None or end < backfill_end:  # what changes while the sync runs lands here
            tail = Window(max(start, end), None)
            for page in self.client.search(self.endpoint, units.query(tail), parse=self.parse):
                yield _within(page, tail)


@dataclass(frozen=True)
class _Added:
    """A reader split its window: this many more windows will each end with `PAGES_DONE`."""

    windows: int


def _last_epoch(page: Page) -> int | None:
    """The newest usable `updated_at` of a page (ascending: its last), None when none is usable."""
    if isinstance(page, ArrowPage):
        seconds = page.epochs
        if seconds is not None:
            return max(seconds) if seconds else None
        page = page.decoded()
    epochs = [e for e in (schema.to_epoch(r.get("updated_at")) for r in page) if e is not None]
    return max(epochs) if epochs else None


def _within(page: Page, window: Window) -> Page:
    """The records of a page inside `window` (one without a usable cursor passes: screened later)."""
    if isinstance(page, ArrowPage):
        epochs = page.epochs
        if epochs is not None:
            lo, hi = window.lo, window.hi
            return page.take([i for i, e in enumerate(epochs) if lo <= e and (hi is None or e < hi)])
        page = page.decoded()
    return [r for r in page if window.holds(r)]


def _concurrently(
    client: IntercomClient, endpoint: str, units: Units, windows: list[Window], readers: int, mean_pages: float,
    parse: PageParser | None = None,
) -> Iterator[Page]:
    """The pages of every window, as they come; about one page per reader held.

    Windows are even in time, records are not (a workspace's recent days hold the most), and one
    window's pages come one round trip after another: at 200,000 contacts the newest of 61 even
    windows held 79 pages, 8 s at 100 ms whatever the other readers do. So a window whose first
    page counts more pages than the windows' mean keeps its first share of the range on its own
    chain, which it leaves once a page passes that share, and hands the rest on as new windows,
    which split again the same way (down to one unit: a day of contacts). `mean_pages`: the
    planned windows' mean.
    """
    if not windows:
        return
    ahead = PagesAhead(contextvars.copy_context())
    # pages held: one per reader (waiting to be handed on) plus these; a reader fetches its next
    # page only once its last one was taken, so a slow consumer holds the readers, not memory
    ahead.pages.maxsize = _HANDED_ON_PAGES
    pool = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="intercom-window")
    futures: list[Future[None]] = []

    def share_of(window: Window, first: Page, pager: BodyCursor) -> Window:
        """The part of `window` this chain keeps; the rest is submitted as new windows."""
        pages = math.ceil((pager.total_count or 0) / settings.SEARCH_PAGE_SIZE)
        if window.hi is None or pages <= mean_pages or _last_epoch(first) is None:
            return window
        cuts = units.cuts(window.lo, window.hi, math.ceil(pages / mean_pages))
        if len(cuts) <= 2 or (cuts[0], cuts[-1]) != (window.lo, window.hi) or ahead.stop.is_set():
            return window
        rest = [Window(lo, hi) for lo, hi in zip(cuts[1:], cuts[2:], strict=False)]
        if not ahead.put(_Added(len(rest))):
            return window
        futures.extend(pool.submit(read, sub) for sub in rest)
        logger.debug("window [%s, %s) of %d pages split in %d", window.lo, window.hi, pages, len(cuts) - 1)
        return Window(cuts[0], cuts[1])

    def read(window: Window) -> None:
        pager = BodyCursor()
        chain = client.search(endpoint, units.query(window), pager=pager, parse=parse)
        try:
            kept = window
            for n, page in enumerate(chain):
                if n == 0:
                    kept = share_of(window, page, pager)
                if not ahead.put(_within(page, kept)):
                    return
                if kept is not window and kept.hi is not None and (_last_epoch(page) or 0) >= kept.hi:
                    break  # ascending: every record of the kept share was on this page or before
            ahead.put(PAGES_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
            ahead.put(ReaderFailed(exc))
        finally:
            chain.close()

    futures.extend(pool.submit(read, window) for window in windows)
    try:
        done, expected = 0, len(windows)
        while done < expected:
            item = ahead.pages.get()
            if item is PAGES_DONE:
                done += 1
            elif isinstance(item, _Added):
                expected += item.windows
            elif isinstance(item, ReaderFailed):
                raise item.exc
            else:
                yield item
    finally:
        ahead.stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        while not all(f.done() for f in list(futures)):  # drained so that a reader blocked on a full queue sees `stop`
            with contextlib.suppress(queue.Empty):
                ahead.pages.get(timeout=0.1)

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
4. Then the open tail [T, now) is read as one chain, last: a record updated while the sync runs
   gets a new `updated_at` >= M >= T and is read there even when its old window was already done
   (or had not started yet). Like the single chain before, such a record is then read twice, in
   its two versions; the merge keeps one row per id.

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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from dlt.extract.incremental import Incremental

from . import schema, settings
from .api import IntercomClient
from .pagers import BodyCursor
from .streams import (
    _DONE,
    _Ahead,
    _Failed,
    _zone,
    build_search_query,
    day_safe_lower_bound,
    day_safe_upper_bound,
)

logger = logging.getLogger(__name__)

Record = dict[str, Any]
_MARGIN = 3600  # a local midnight +- one hour stays inside the neighbouring day (days are >= 23 h)


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


class _Units:
    """Window bounds aligned to a unit: local days of the workspace zone, or seconds."""

    def __init__(self, unit: Literal["day", "second"], tz: str | None) -> None:
        self.unit = unit
        self.tz = tz
        self.zone: ZoneInfo | None = _zone(tz) if unit == "day" else None
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
            lower, upper = window.lo - _MARGIN, None if window.hi is None else window.hi + _MARGIN
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


def windowed_search(endpoint: str, split: SearchSplit) -> Callable[[IntercomClient, Incremental[Any]], Iterator[list[Record]]]:
    """The page source of a search stream that may be read as concurrent windows (see module doc)."""

    def pages(client: IntercomClient, cursor: Incremental[Any]) -> Iterator[list[Record]]:
        tz = client.workspace_timezone()
        scout = BodyCursor()
        chain = client.search(endpoint, build_search_query(cursor.start_value, cursor.end_value, tz), pager=scout)
        first = next(chain, None)
        if first is None:
            return
        readers = _readers(client, split)
        total = scout.total_count
        if total is None or total <= settings.SEARCH_SPLIT_MIN_PAGES * settings.SEARCH_PAGE_SIZE:
            yield first
            yield from chain
            return
        chain.close()
        yield from _split(client, endpoint, _Units(split.unit, tz), cursor, first, total, readers)

    return pages


def _readers(client: IntercomClient, split: SearchSplit) -> int:
    share = 1 + split.calls_per_record * settings.SEARCH_PAGE_SIZE
    return max(2, math.ceil(client.suggested_concurrency() / share))


def _split(
    client: IntercomClient, endpoint: str, units: _Units, cursor: Incremental[Any], first: list[Record],
    total: int, readers: int,
) -> Iterator[list[Record]]:
    epochs = [e for e in (schema.to_epoch(r.get("updated_at")) for r in first) if e is not None]
    if not epochs:  # nothing to place windows with: one chain
        yield first
        yield from client.search(endpoint, build_search_query(cursor.start_value, cursor.end_value, units.tz))
        return
    start = units.floor(max(epochs))
    yield [r for r in first if Window(0, start).holds(r)]  # complete below `start`: sorted ascending

    newest_page = next(client.search(
        endpoint, build_search_query(cursor.start_value, cursor.end_value, units.tz), descending=True, per_page=1,
    ), [])
    newest = schema.to_epoch(newest_page[0].get("updated_at")) if newest_page else None
    newest = max(newest or 0, max(epochs))
    backfill_end = int(cursor.end_value.timestamp()) if cursor.end_value is not None else None
    # closed up to the newest record's unit; a backfill up to its end when that comes first
    end = units.floor(newest) if backfill_end is None else units.ceil(min(backfill_end, newest + 1))
    pieces = max(2, min(2 * readers, math.ceil(total / settings.SEARCH_PAGE_SIZE / settings.SEARCH_WINDOW_MIN_PAGES)))
    cuts = units.cuts(start, end, pieces) if end > start else [start]
    windows = [Window(lo, hi) for lo, hi in zip(cuts, cuts[1:], strict=False)]
    logger.info("%s: %d records read as %d windows by %d readers", endpoint, total, len(windows), readers)
    yield from _concurrently(client, endpoint, units, windows, readers)
    if backfill_end is None or end < backfill_end:  # what changes while the sync runs lands here
        tail = Window(max(start, end), None)
        for page in client.search(endpoint, units.query(tail)):
            yield [r for r in page if tail.holds(r)]


def _concurrently(
    client: IntercomClient, endpoint: str, units: _Units, windows: list[Window], readers: int
) -> Iterator[list[Record]]:
    """The pages of every window, as they come; at most a few pages per reader held."""
    if not windows:
        return
    ahead = _Ahead(contextvars.copy_context())
    ahead.pages.maxsize = 2 * readers

    def read(window: Window) -> None:
        chain = client.search(endpoint, units.query(window))
        try:
            for page in chain:
                if not ahead.put([r for r in page if window.holds(r)]):
                    return
            ahead.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
            ahead.put(_Failed(exc))
        finally:
            chain.close()

    pool = ThreadPoolExecutor(max_workers=min(readers, len(windows)), thread_name_prefix="intercom-window")
    futures = [pool.submit(read, window) for window in windows]
    try:
        done = 0
        while done < len(windows):
            item = ahead.pages.get()
            if item is _DONE:
                done += 1
            elif isinstance(item, _Failed):
                raise item.exc
            else:
                yield item
    finally:
        ahead.stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        while not all(f.done() for f in futures):  # drained so that a reader blocked on a full queue sees `stop`
            with contextlib.suppress(queue.Empty):
                ahead.pages.get(timeout=0.1)

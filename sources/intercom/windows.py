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
   rest of its range on as new windows (`read_concurrently`).
4. The open tail [T, now) is one chain, read beside the windows and asked again once they are
   all done, from where it ended (`read_concurrently`): a record updated while the sync runs gets a
   new `updated_at` >= M >= T and is read there even when its old window was already done (or had
   not started yet). Like the single chain before, such a record is then read twice, in its two
   versions; the merge keeps one row per id (a first load into empty tables is merged then too,
   first_load.py).

The number of readers is what the quota leaves to the search: the client's suggested concurrency,
divided among the calls each record costs (a conversation's detail GET). A detail-bound stream
stays one chain.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import dlt
from dlt.extract.incremental import Incremental

from . import schema, settings
from .api import IntercomClient
from .arrow_pages import PAGE_PARSER, Page, PageParser
from .pagers import BodyCursor
from .streams import RESOURCE_STATE, StreamContext, build_search_query
from .window_readers import Units, Window, last_epoch, read_concurrently, within

logger = logging.getLogger(__name__)

Record = dict[str, Any]


@dataclass(frozen=True)
class SearchSplit:
    """How a search stream may be split: window `unit` ("day": the search compares dates by
    calendar day in the workspace zone; "second"), and the calls each record costs besides its
    search page (a detail GET), which the search's readers share the quota with."""

    unit: Literal["day", "second"]
    calls_per_record: int = 0


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
        return within(page, Window(self.done_until, None))

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
        scouted = last_epoch(first)
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
        # what changes while the sync runs lands in the tail: read with the last part's windows
        tail = Window(max(start, end), None) if not rest and (backfill_end is None or end < backfill_end) else None
        yield from read_concurrently(
            self.client, self.endpoint, units, part, self.readers, mean_pages, self.parse, tail if part else None
        )
        if rest:
            assert part[-1].hi is not None
            progress.more(part[-1].hi)
            return
        progress.finished()
        if tail is not None and not part:  # no window to read beside it: the tail alone, one chain
            for page in self.client.search(self.endpoint, units.query(tail), parse=self.parse):
                yield within(page, tail)

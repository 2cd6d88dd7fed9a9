"""What the stream readers share: cursor rules, the recent map, the read-ahead thread, the detail
pool and the parts hand-off.

Each stream is one spec (`specs.py`) read by one of the readers of `readers.py`; HTTP details
live in `client.py`/`api.py`, row shapes in `schema.py`. Cursor rules of the incremental streams:

* dlt's `incremental` (with `lag = lookback_seconds`) owns the cursor; its lag-adjusted
  `start_value` widens the SERVER query, and the search lower bound is moved to the previous
  calendar day in the workspace time zone so day-granular date search cannot skip the rest of
  the cursor's day. Never an upper bound of "now".
* A bounded map `{id: updated_at}` of records inside the lookback window (resource state,
  committed with the data, pruned every run) skips records that did not change since they were
  loaded, so a rerun with no changes loads nothing and fetches no conversation details.
* Backfills (`end_value` set) neither read nor write that map (and dlt keeps no cursor state).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dlt
from dlt.common.schema import Schema
from dlt.common.typing import TDataItem
from dlt.extract.incremental import Incremental

from . import schema, settings
from .api import IntercomClient
from .arrow_pages import ArrowPage, Page, records_of
from .first_load import FirstLoad
from .rejects import Rejects

if TYPE_CHECKING:
    from .arrow_items import MainThreadStep

logger = logging.getLogger(__name__)

DAY = 24 * 3600
_PAGES_IN_FLIGHT = 3  # search pages whose conversation details may be fetching at once
DAY_MARGIN = 3600  # an hour off a local midnight stays inside the neighbouring calendar day (days are >= 23 h)


# ------------------------------------------------------------------------- query building
def workspace_zone(tz: str | None) -> ZoneInfo | None:
    if not tz:
        return None
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("unknown workspace time zone %r; widening search bounds by two days", tz)
        return None


def day_safe_lower_bound(start: datetime | None, tz: str | None) -> int:
    """Value V for `updated_at > V` that includes the whole calendar day containing `start`.

    Contacts search truncates V to its day in the workspace zone and matches from the next
    day, so V is put on the previous day: `> V` then matches from the start of `start`'s day.
    With second-precision comparison the same V only adds a day of overlap (merged on id).
    """
    if start is None:
        return 0
    zone = workspace_zone(tz)
    if zone is None:
        return max(0, int(start.timestamp()) - 2 * DAY)
    local = start.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return max(0, int(midnight.timestamp()) - DAY_MARGIN)


def day_safe_upper_bound(end: datetime, tz: str | None) -> int:
    """Value U for `updated_at < U` that includes the whole calendar day containing `end`."""
    zone = workspace_zone(tz)
    if zone is None:
        return int(end.timestamp()) + 2 * DAY
    local = end.astimezone(zone)
    next_day = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return int(next_day.timestamp()) + DAY_MARGIN


def build_search_query(
    start: datetime | None, end: datetime | None, tz: str | None, field_name: str = "updated_at"
) -> dict[str, Any]:
    """Intercom search query covering [start, end) under day-granular date comparison."""
    lower = {"field": field_name, "operator": ">", "value": str(day_safe_lower_bound(start, tz))}
    if end is None:
        return lower
    upper = {"field": field_name, "operator": "<", "value": str(day_safe_upper_bound(end, tz))}
    return {"operator": "AND", "value": [lower, upper]}


# ------------------------------------------------------------------------- recent map
class RecentWindow:
    """`{id: epoch}` of records loaded inside the lookback window of the newest one."""

    STATE_KEY = "recent"

    _MIN_PRUNE_SIZE = 10_000

    def __init__(self, entries: Mapping[str, int] | None, lookback_seconds: int) -> None:
        self._entries: dict[str, int] = {str(k): int(v) for k, v in (entries or {}).items()}
        self._lookback = lookback_seconds
        self._newest: int | None = max(self._entries.values()) if self._entries else None
        # pruned as it grows: a full sync of 1M contacts would otherwise hold every id
        self._prune_at = max(self._MIN_PRUNE_SIZE, 2 * len(self._entries))

    @classmethod
    def load(cls, state: Mapping[str, Any], lookback_seconds: int) -> RecentWindow:
        return cls(state.get(cls.STATE_KEY), lookback_seconds)

    def changed(self, records: list[tuple[int, str, int]]) -> tuple[list[int], int]:
        """The positions of the `records` (position, id, cursor epoch) not loaded as they are, each
        noted; and how many were. The map is pruned as it grows (amortized O(1) a record). One
        loop a page: two method calls a record cost as much as the rest."""
        entries, newest = self._entries, self._newest
        kept: list[int] = []
        unchanged = 0
        for i, record_id, epoch in records:
            if entries.get(record_id) == epoch:
                unchanged += 1
                continue
            kept.append(i)
            entries[record_id] = epoch
            if newest is None or epoch > newest:
                newest = epoch
        self._newest = newest
        if len(entries) >= self._prune_at:
            # entries below the floor of the newest so far are below the final floor too
            self._entries = self.pruned()
            self._prune_at = max(self._MIN_PRUNE_SIZE, 2 * len(self._entries))
        return kept, unchanged

    def pruned(self) -> dict[str, int]:
        """Entries still inside the lookback window of the newest entry (what the next run re-reads)."""
        if not self._entries or self._newest is None:
            return {}
        floor = self._newest - self._lookback - 1
        return {k: v for k, v in self._entries.items() if v >= floor}

    def save(self, state: dict[str, Any]) -> None:
        state[self.STATE_KEY] = self.pruned()


# ------------------------------------------------------------------------- run context
@dataclass
class StreamContext:
    """What every stream of one source instance shares: one client, options, the parts hand-offs."""

    client: IntercomClient
    lookback_seconds: int = settings.DEFAULT_LOOKBACK_SECONDS
    max_workers: int = settings.DEFAULT_MAX_WORKERS
    checkpoint_records: int = settings.SEARCH_CHECKPOINT_RECORDS  # split searches: records per load package
    keep_nulls: bool = False  # history mode: rows keep their None values (schema.record_row)
    columnar: bool = False  # contacts and companies as Arrow tables (columnar.py, arrow_items.py)
    json_lane: bool = False  # with `columnar`: pages parsed by Arrow's JSON reader (json_lane.py)
    main_thread_steps: dict[str, MainThreadStep] = field(default_factory=dict)  # by stream, arrow_items.py
    secrets: tuple[str, ...] = ()  # redacted from the records kept in the rejects table
    hand_offs: dict[str, PartsHandOff] = field(default_factory=dict)  # by parent stream
    appended: dict[str, FirstLoad] = field(default_factory=dict)  # streams appended into empty tables (first_load.py)

    def custom_types(self, model: str | None) -> schema.CustomTypes:
        """The custom attribute types of a data-attribute `model` (none without one)."""
        if model is None:
            return schema.CustomTypes({})
        return schema.custom_attribute_types(self.client.data_attributes(model))

    def rejects(self, stream: str) -> Rejects:
        return Rejects(stream, self.secrets)

    def hand_off(self, parent: str) -> PartsHandOff:
        return self.hand_offs.setdefault(parent, PartsHandOff(False, {}, threading.Lock()))



class FirstPageHints:
    """Attach `custom_*` column types to the first page a resource yields (later pages pass)."""

    def __init__(self, types: Mapping[str, str]) -> None:
        self.types = types
        self.done = False

    def __call__(self, rows: list[dict[str, Any]]) -> Any:
        if self.done:
            return rows
        self.done = True
        columns = schema.custom_attribute_columns(self.types)
        if not columns:
            return rows
        return dlt.mark.with_hints(rows, dlt.mark.make_hints(columns=list(columns.values())))


def with_details(
    ctx: StreamContext,
    pages: Iterator[list[dict[str, Any]]],
    fetch: Callable[[str], dict[str, Any] | None] | None,
    thread_name: str,
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any] | None]]]:
    """Each page of records with the detail `fetch(id)` gives for each (None without `fetch`),
    pages in order.

    Details of later pages are fetched while earlier pages are still in flight, so the pool never
    drains between pages; at most `_PAGES_IN_FLIGHT` pages are held in memory.
    """
    if fetch is None:
        for raws in pages:
            yield raws, [None] * len(raws)
        return
    pool: ThreadPoolExecutor | None = None
    pending: deque[tuple[list[dict[str, Any]], list[Future[dict[str, Any] | None]]]] = deque()
    try:
        for raws in pages:
            if pool is None:
                pool = ThreadPoolExecutor(
                    max_workers=ctx.client.suggested_concurrency(ctx.max_workers), thread_name_prefix=thread_name
                )
            pending.append((raws, [pool.submit(fetch, str(r["id"])) for r in raws]))
            while pending and (len(pending) > _PAGES_IN_FLIGHT or all(f.done() for f in pending[0][1])):
                head_raws, head_futures = pending.popleft()
                yield head_raws, [f.result() for f in head_futures]
        while pending:
            head_raws, head_futures = pending.popleft()
            yield head_raws, [f.result() for f in head_futures]
    finally:
        if pool is not None:
            for _, futures in pending:
                for f in futures:
                    f.cancel()
            pool.shutdown(wait=True)


def incremental_records(
    ctx: StreamContext,
    inc: Incremental[Any],
    pages: Iterator[Page],
    cursor_field: str,
    rejects: Rejects,
) -> Iterator[Page]:
    """Pages of the records in range and changed since loaded (as the API sent them); maintains the map.
    A page parsed by Arrow (arrow_pages.py) stays one when its ids and cursors are all usable.

    A record without a usable id or cursor goes to `rejects` first: nothing downstream (the map,
    detail fetches, dlt's merge key) can handle it, and without a cursor it would silently never load.
    A page whose records were all rejected still yields (empty) so the stream can pass the rejects on.
    """
    backfill = inc.end_value is not None
    state = RESOURCE_STATE.get()
    if state is None:
        state = dlt.current.resource_state()
    recent = RecentWindow.load({} if backfill else state, ctx.lookback_seconds)
    skipped = 0
    # the same [start_value, end_value) test dlt applies, done first to avoid useless work; in Unix
    # seconds, so a cursor in plain seconds (the usual form) is compared without building a datetime
    start = inc.start_value.timestamp() if inc.start_value is not None else None
    end = inc.end_value.timestamp() if inc.end_value is not None else None
    try:
        for page in pages:
            screened: Page
            keys: list[tuple[str, float | None]] | None = page.keys() if isinstance(page, ArrowPage) else None
            if keys is not None:  # every record has a usable id and cursor: the page stays parsed
                screened = page
            else:
                screened = rejects.screened(records_of(page), cursor_field=cursor_field)
                keys = [(str(raw["id"]), schema.to_seconds(raw.get(cursor_field))) for raw in screened]
            in_range = [(i, record_id, int(seconds)) for i, (record_id, seconds) in enumerate(keys)
                        if seconds is not None and (start is None or seconds >= start) and (end is None or seconds < end)]
            if backfill:
                kept = [i for i, _, _ in in_range]
            else:
                kept, unchanged = recent.changed(in_range)
                skipped += unchanged
            if kept or rejects.rows:
                yield screened.take(kept) if isinstance(screened, ArrowPage) else [screened[i] for i in kept]
    finally:
        # once, not per page: pruning scans the whole map
        if not backfill:
            recent.save(state)
    if skipped:
        logger.info("skipped %d unchanged records already loaded inside the lookback window", skipped)


def _ordered_map(
    pool: ThreadPoolExecutor, fn: Callable[[Any], Any], items: Iterable[Any], in_flight: int
) -> Iterator[Any]:
    """`pool.map` that keeps at most `in_flight` calls submitted ahead of the consumer.

    Why: `Executor.map` submits everything at once, so a slow consumer (dlt's extract) would hold
    every window's records in memory; results still come back in input order.
    """
    pending: deque[Future[Any]] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= max(1, in_flight):
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


_AHEAD_PAGES = 2  # pages a stream may fetch ahead of dlt's extract (bounds memory)
PAGES_DONE = object()  # a reading thread's last item: no more pages
# the resource's state, resolved in dlt's thread: dlt's state container is not visible from ours
RESOURCE_STATE: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "intercom_resource_state", default=None
)


@dataclass(frozen=True)
class ExtractScope:
    """The extract's source schema and load id, resolved in dlt's thread for the reading thread."""

    schema: Schema
    load_id: str


EXTRACT_SCOPE: contextvars.ContextVar[ExtractScope | None] = contextvars.ContextVar("intercom_extract", default=None)


def _extract_scope() -> ExtractScope | None:
    try:
        return ExtractScope(dlt.current.source_schema(), dlt.current.load_package_state()["load_id"])
    except Exception:  # noqa: BLE001 - outside a pipeline's extract (a resource iterated alone)
        return None


class ReaderFailed:
    """A reading thread's exception, handed to dlt's thread to raise there."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class PagesAhead:
    """The bounded queue between a stream's reading thread and dlt's."""

    def __init__(self, context: contextvars.Context) -> None:
        self.context = context
        self.pages: queue.Queue[Any] = queue.Queue(maxsize=_AHEAD_PAGES)
        self.stop = threading.Event()

    def put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.pages.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce(self, gen: Iterator[Any]) -> None:
        """Read `gen` in the caller's context copy until it ends, fails or the consumer stops."""
        try:
            while not self.stop.is_set():
                try:
                    item = self.context.run(next, gen)
                except StopIteration:
                    self.put(PAGES_DONE)
                    return
                if not self.put(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
            self.put(ReaderFailed(exc))
        finally:
            close = getattr(gen, "close", None)
            if close is not None:
                self.context.run(close)

    def consume(self) -> Iterator[Any]:
        while True:
            item = self.pages.get()
            if item is PAGES_DONE:
                return
            if isinstance(item, ReaderFailed):
                raise item.exc
            yield item


def read_ahead(fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    """Run a stream generator in its own thread, at most `_AHEAD_PAGES` pages ahead of dlt.

    Why: dlt only advances a resource when its extract loop asks for the next item, and that loop
    also writes every other resource's items. While it is busy, a stream that fetches between
    yields (search pages, conversation details, segments) sends nothing and the quota goes idle.
    The thread keeps fetching while dlt writes; the bounded queue keeps memory flat. The thread
    runs in a copy of the caller's context, with the resource state resolved beforehand (dlt's
    state container is only visible from the thread dlt runs the resource in).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
        context = contextvars.copy_context()
        context.run(RESOURCE_STATE.set, dlt.current.resource_state())
        context.run(EXTRACT_SCOPE.set, _extract_scope())
        stream = dlt.current.resource_name()
        ahead = PagesAhead(context)
        thread = threading.Thread(
            target=ahead.produce, args=(fn(*args, **kwargs),), name=f"intercom-ahead-{stream}", daemon=True
        )
        thread.start()
        # dlt's extract pool, or its main loop if the resource lost `parallelized` (see resources.py)
        logger.debug("stream %s: pages handed to dlt in thread %s", stream, threading.current_thread().name)
        try:
            yield from ahead.consume()
        finally:
            ahead.stop.set()
            while thread.is_alive():
                with contextlib.suppress(queue.Empty):
                    ahead.pages.get(timeout=0.1)
            thread.join()

    return wrapper


# ------------------------------------------------------------------------- parts hand-off
@dataclass
class PartsHandOff:
    """How a parent stream (conversations, tickets) hands the parts of its details to its child."""

    fetch_parts: bool
    cache: dict[str, list[dict[str, Any]]]
    lock: threading.Lock

    def shaped(
        self,
        raws: list[dict[str, Any]],
        details: list[dict[str, Any] | None],
        shape: Callable[[Mapping[str, Any], Mapping[str, Any] | None], dict[str, Any]],
        part_rows: Callable[[Mapping[str, Any], str, Rejects], list[dict[str, Any]]],
        rejects: Rejects,
        part_rejects: Rejects,
    ) -> list[dict[str, Any]]:
        """One page of parent rows; each one's parts put in the cache for the child resource.

        A parent whose record or detail cannot be shaped becomes a reject with its parts unread.
        """
        rows = []
        for raw, detail in zip(raws, details, strict=True):
            parent_id = str(raw["id"])
            if self.fetch_parts and detail is None:
                continue  # vanished between search and detail fetch (counted by the client)
            try:
                row = shape(raw, detail)
                parts = None if detail is None else part_rows(detail, parent_id, part_rejects)
            except Exception as exc:  # noqa: BLE001 - one odd record must not stop the run
                rejects.unshapeable(exc, raw)
                continue
            rows.append(row)
            if parts is not None:
                with self.lock:
                    self.cache[parent_id] = parts
        return rows


def handed_over_parts(
    parent_rows: TDataItem,
    lock: threading.Lock,
    cache: dict[str, list[dict[str, Any]]],
    fetch_parts: Callable[[str], list[dict[str, Any]]],
) -> Iterator[TDataItem]:
    """The parts of each parent row: those its resource fetched and handed over in `cache`, else
    fetched now with `fetch_parts(id)` (a parent row dlt kept but whose hand-over is gone)."""
    rows = parent_rows if isinstance(parent_rows, list) else [parent_rows]
    out: list[dict[str, Any]] = []
    for parent in rows:
        pid = str(parent["id"])
        with lock:
            parts = cache.pop(pid, None)
        out.extend(fetch_parts(pid) if parts is None else parts)
    if out:
        yield out

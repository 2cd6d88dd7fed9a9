"""The four ways a spec's records are read, and the page sources the specs name.

* `read_records`: an incremental stream (contacts, companies, conversations, tickets, activity
  logs): the spec's pages, screened and filtered on its cursor, completed, detailed and shaped;
* `read_parts`: the child of a parent with parts (conversation_parts, ticket_parts);
* `read_listed` (deletes.py): a small list read whole every run, with soft deletes;
* `read_attributes`: GET /data_attributes of every model.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import dlt
import pendulum
from dlt.common.normalizers.json.helpers import normalize_identifier
from dlt.common.typing import TDataItem
from dlt.extract.incremental import Incremental

from . import arrow_items, json_lane, relations, schema, settings
from .api import IntercomClient
from .arrow_items import ArrowBatch, MainThreadStep
from .arrow_pages import PAGE_PARSER, ArrowPage, Page, PageParser, records_of
from .column_plans import Layout, NotColumnar
from .columnar import Columnizer
from .first_load import RepeatWatch
from .json_lane import JsonLane
from .rejects import Rejects, is_rejects_item, rows_and_rejects
from .streams import (
    DAY,
    EXTRACT_SCOPE,
    FirstPageHints,
    StreamContext,
    _ordered_map,
    build_search_query,
    handed_over_parts,
    incremental_records,
    read_ahead,
    with_details,
)
from .windows import SearchSplit, windowed_search

if TYPE_CHECKING:
    from .specs import Parts, StreamSpec

logger = logging.getLogger(__name__)

Record = dict[str, Any]
Pages = Callable[[StreamContext, Incremental[Any]], Iterator[Page]]


# ------------------------------------------------------------------------- page sources
def search(endpoint: str, split: SearchSplit | None = None) -> Pages:
    """Pages of a search endpoint on `updated_at` from the cursor (day-safe bounds, see streams.py);
    with a `split`, a large search is read as concurrent windows (windows.py)."""
    if split is not None:
        return windowed_search(endpoint, split)

    def pages(ctx: StreamContext, cursor: Incremental[Any]) -> Iterator[list[Record]]:
        query = build_search_query(cursor.start_value, cursor.end_value, ctx.client.workspace_timezone())
        return ctx.client.search(endpoint, query)

    return pages


def companies_scroll(ctx: StreamContext, cursor: Incremental[Any]) -> Iterator[list[Record]]:
    """Every company once per run (no server filter); the client keeps the ids for --reconcile-deletes."""
    return ctx.client.scroll_companies()


def activity_log_pages(ctx: StreamContext, cursor: Incremental[Any]) -> Iterator[list[Record]]:
    """GET /admins/activity_logs in 5-day created_at windows from the cursor; the last one open-ended.

    Windows are independent: fetched concurrently, yielded in order. Both ends of a window are
    inclusive, so only records exactly on a shared bound can come twice; they are dropped.
    """
    client = ctx.client
    bounds = _activity_windows(client, cursor)
    workers = max(1, min(settings.ACTIVITY_LOG_WORKERS, len(bounds)))

    def fetch(window: tuple[int, int | None]) -> list[list[Record]]:
        return list(client.activity_logs(*window))

    on_bound: set[str] = set()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="intercom-alog") as pool:
        for (lo, up), pages in zip(bounds, _ordered_map(pool, fetch, bounds, 2 * workers), strict=True):
            previous, on_bound = on_bound, set()
            for page in pages:
                fresh = []
                for r in page:
                    rid, created = r.get("id"), schema.to_epoch(r.get("created_at"))
                    if rid is not None and created == lo and str(rid) in previous:
                        continue
                    if rid is not None and up is not None and created == up:  # no id: kept aside later
                        on_bound.add(str(rid))
                    fresh.append(r)
                yield fresh


def _activity_windows(client: IntercomClient, cursor: Incremental[Any]) -> list[tuple[int, int | None]]:
    start = cursor.start_value
    if start is None:
        app = client.me().get("app") or {}
        app_created = schema.to_epoch(app.get("created_at")) if isinstance(app, dict) else None
        start_epoch = app_created or int(time.time()) - 365 * DAY
        logger.info("activity_logs: no start date, reading from %s", start_epoch)
    else:
        start_epoch = int(start.timestamp())
    end_epoch = int(cursor.end_value.timestamp()) if cursor.end_value is not None else None
    limit = end_epoch if end_epoch is not None else int(time.time())
    bounds: list[tuple[int, int | None]] = []
    lower = start_epoch
    while True:
        upper: int | None = lower + settings.ACTIVITY_LOG_WINDOW_SECONDS
        if upper >= limit:
            # the last window: open-ended unless backfilling (never cut at our own "now")
            upper = end_epoch + 1 if end_epoch is not None else None
        bounds.append((lower, upper))
        if upper is None or upper > limit:
            return bounds
        lower = upper


# ------------------------------------------------------------------------- readers
@read_ahead
def read_records(
    ctx: StreamContext,
    spec: StreamSpec,
    cursor: dlt.sources.incremental[pendulum.DateTime] = dlt.sources.incremental("updated_at"),  # noqa: B008
) -> Iterator[TDataItem]:
    """The changed records of an incremental stream, as rows, with the page's rejects after them.

    Records are completed (`spec.complete`: lists embedded cut at 10) and detailed (`spec.parts`:
    the detail's parts handed to the child stream) only when they changed since they were loaded.
    A stream appended into empty tables (first_load.py) ends with its table back to merge if a
    record came twice.
    """
    assert spec.pages is not None
    types = ctx.custom_types(spec.custom_attributes)
    rejects = ctx.rejects(spec.name)
    # the JSON lane's plan, handed to the readers of a split search (arrow_pages.py)
    parser = (
        PageParser(spec.cursor, spec.complete.lists if spec.complete is not None else None)
        if ctx.columnar and ctx.json_lane and spec.record_shape is not None else None
    )
    PAGE_PARSER.set(parser)
    changed = incremental_records(ctx, cursor, spec.pages(ctx, cursor), spec.cursor, rejects)
    first = ctx.appended.get(spec.name)
    watch = RepeatWatch(spec.name, first, spec.hint_columns) if first is not None else None
    if watch is not None:
        changed = watch.pages(changed)
    yield from _changed_rows(ctx, spec, cursor, changed, types, rejects, parser)
    if watch is not None:
        yield from watch.last_items()


def _changed_rows(
    ctx: StreamContext, spec: StreamSpec, cursor: Incremental[Any], changed: Iterator[Page],
    types: schema.CustomTypes, rejects: Rejects, parser: PageParser | None,
) -> Iterator[TDataItem]:
    """The changed records' rows: completed, then the fast path, the usual way or with parts."""
    assert spec.shape is not None
    hints = FirstPageHints(types)
    if spec.complete is not None:
        changed = relations.completed_meanwhile(spec.complete, ctx.client, changed, ctx.max_workers)
    if spec.parts is None:
        shape, how = spec.shape, schema.Shaping(types, None, ctx.keep_nulls)
        fast = _columnar(ctx, spec, types, parser)
        if fast is not None:
            yield from fast.read(changed, lambda raw: shape(raw, how), hints, rejects, cursor)
            return
        for page in changed:
            rows = rejects.shaped(records_of(page), lambda raw: shape(raw, how))
            yield from rows_and_rejects(hints(rows) if rows else rows, rejects)
        return
    yield from _with_parts(ctx, spec, spec.parts, (records_of(page) for page in changed), types, hints, rejects)


def _columnar(
    ctx: StreamContext, spec: StreamSpec, types: schema.CustomTypes, parser: PageParser | None,
) -> ColumnarRecords | None:
    """The fast path of a stream with a `record_shape`, when this run can take it (columnar.py)."""
    scope, step = EXTRACT_SCOPE.get(), ctx.main_thread_steps.get(spec.name)
    if not ctx.columnar or spec.record_shape is None or scope is None or step is None:
        return None
    naming = scope.schema.naming
    tables = (spec.name, *spec.child_tables)
    hinted = {**spec.hint_columns, **schema.custom_attribute_columns(types)}
    layout = Layout(spec.name, arrow_items.stored_types(scope.schema, tables, hinted),
                    functools.partial(normalize_identifier, scope.schema, naming), naming.shorten_fragments)
    if any(layout.path(spec.name, field) != table for (field, _), table in zip(spec.record_shape.children, tables[1:], strict=True)):
        return None  # a naming convention that names the child tables otherwise than their variants
    columnizer = Columnizer(spec.record_shape, types, layout)
    stored = {table: set(scope.schema.tables[table].get("columns", {})) for table in tables if table in scope.schema.tables}
    batch = ArrowBatch(layout, scope.load_id, list(hinted.values()), stored)
    lane = JsonLane(columnizer, batch.sent, spec.cursor, parser) if ctx.json_lane else None
    return ColumnarRecords(columnizer, batch, spec.cursor, step, lane)


class ColumnarRecords:
    """A stream's changed records as Arrow tables (the fast path) and, for the records it cannot
    take, rows shaped the usual way; the cursor is moved here (`Incremental.advance`), since dlt's
    incremental step cannot filter child tables (the records are already filtered, streams.py)."""

    def __init__(
        self, columnizer: Columnizer, batch: ArrowBatch, cursor_field: str, step: MainThreadStep, lane: JsonLane | None,
    ) -> None:
        self.columnizer = columnizer
        self.batch = batch
        self.lane = lane
        self.cursor_field = cursor_field
        self.step = step
        self.newest: int | None = None  # Unix seconds of the newest record handed on so far
        self.columnar = 0  # records taken by the fast path
        self.usual = 0  # records shaped the usual way (a value the fast path does not take)
        self.parsed = 0  # records the lane took from pages the readers parsed (arrow_pages.py)

    def read(
        self, changed: Iterator[Page], shape: Callable[[Record], Record], hints: FirstPageHints,
        rejects: Rejects, cursor: Incremental[Any],
    ) -> Iterator[TDataItem]:
        # pages held for the JSON lane, read at once (json_lane.BATCH_RECORDS): decoded ones, or
        # ones the readers parsed with one plan (arrow_pages.py)
        held: list[Record] = []
        parsed: list[ArrowPage] = []
        steps = (shape, hints, rejects, cursor)
        for page in changed:
            lane = self.lane
            if isinstance(page, ArrowPage) and lane is not None and lane.wants_pages():
                if held or (parsed and parsed[0].plan is not page.plan):
                    yield from self._held(held, parsed, *steps)
                    held, parsed = [], []
                parsed.append(page)
                if sum(len(p) for p in parsed) >= json_lane.BATCH_RECORDS:
                    yield from self._held(held, parsed, *steps)
                    parsed = []
                continue
            raws = records_of(page)
            if parsed:
                yield from self._held(held, parsed, *steps)
                parsed = []
            if lane is not None and lane.wants_pages():
                held.extend(raws)
                if len(held) < json_lane.BATCH_RECORDS:
                    continue
                raws, held = held, []
            yield from self._records(raws, *steps)
        yield from self._held(held, parsed, *steps)  # also hands on any rejects left
        yield from self._flush(hints, cursor)
        parser = self.lane.parser if self.lane is not None else None
        logger.info("%s: %d records built as Arrow tables, %d shaped the usual way (%d of the first read by "
                    "Arrow's JSON reader, of them %d in the %d pages the readers parsed; %d pages refused; "
                    "read by %d calls)", self.batch.layout.root, self.columnar, self.usual,
                    self.lane.taken if self.lane is not None else 0, self.parsed, parser.parsed if parser else 0,
                    parser.refused if parser else 0, parser.reads if parser else 0)

    def _held(
        self, held: list[Record], parsed: list[ArrowPage], shape: Callable[[Record], Record], hints: FirstPageHints,
        rejects: Rejects, cursor: Incremental[Any],
    ) -> Iterator[TDataItem]:
        """The pages held for the lane: decoded ones, then the readers' parsed ones (with none at
        all: the rejects gathered are handed on)."""
        if held or not parsed:
            yield from self._records(held, shape, hints, rejects, cursor)
        if not parsed:
            return
        lane = self.lane
        page = lane.take_parsed(parsed) if lane is not None else None
        if page is None:
            rest = [raw for p in parsed for raw in p.decoded()]
        else:
            self._took(page)
            self.parsed += len(page.taken)
            rest = _left_out(parsed, page.taken)
        yield from self._rows(rest, sum(len(p) for p in parsed), shape, hints, rejects, cursor)

    def _records(
        self, raws: list[Record], shape: Callable[[Record], Record], hints: FirstPageHints, rejects: Rejects,
        cursor: Incremental[Any],
    ) -> Iterator[TDataItem]:
        """One page's records (or several pages' for the lane): the lane's, then `_rows`."""
        page = self.lane.take(raws) if self.lane is not None else None
        rest = raws
        if page is not None:
            self._took(page)
            taken = set(page.taken)
            rest = [raw for i, raw in enumerate(raws) if i not in taken] if len(taken) < len(raws) else []
        yield from self._rows(rest, len(raws), shape, hints, rejects, cursor)

    def _took(self, page: json_lane.LanePage) -> None:
        self.batch.add_page(page)
        self._saw(page.newest)

    def _rows(
        self, rest: list[Record], count: int, shape: Callable[[Record], Record], hints: FirstPageHints,
        rejects: Rejects, cursor: Incremental[Any],
    ) -> Iterator[TDataItem]:
        """The records the lane left (of `count`): the Columnizer's, then the usual way's; the
        batch handed on when full."""
        lane = self.lane
        leftovers = []
        for raw in rest:
            try:
                record = self.columnizer.rows(raw)
            except NotColumnar:
                leftovers.append(raw)
                continue
            self.batch.add(record)
            self._saw(record.row.get(self.cursor_field))
            if lane is not None:
                lane.learn(raw)
        self.columnar += count - len(leftovers)
        self.usual += len(leftovers)
        rows = rejects.shaped(leftovers, shape)
        for row in rows:
            self.columnizer.leave_to_usual(row)
            self._saw(schema.to_epoch(row.get(self.cursor_field)))
        if self.batch.full:
            yield from self._flush(hints, cursor)
        if rows:
            self._advance(cursor)
            rows = hints(rows)
        yield from rows_and_rejects(rows, rejects)

    def _saw(self, epoch: int | None) -> None:
        if epoch is not None and (self.newest is None or epoch > self.newest):
            self.newest = epoch

    def _flush(self, hints: FirstPageHints, cursor: Incremental[Any]) -> Iterator[TDataItem]:
        if not self.batch.records:
            return
        self._advance(cursor)
        first = () if hints.done else tuple(schema.custom_attribute_columns(hints.types).values())
        hints.done = True
        yield from self.batch.items(first)

    def _advance(self, cursor: Incremental[Any]) -> None:
        """Have the cursor moved to the newest record handed on, in dlt's thread (`MainThreadStep`)."""
        if self.newest is not None:
            self.step.move_cursor(cursor, pendulum.from_timestamp(self.newest))


def _left_out(pages: list[ArrowPage], taken: list[int]) -> list[Record]:
    """The records of `pages` (read as one) at positions not in `taken`, decoded."""
    if len(taken) == sum(len(page) for page in pages):
        return []
    kept = set(taken)
    rest: list[Record] = []
    offset = 0
    for page in pages:
        if any(i not in kept for i in range(offset, offset + len(page))):
            rest += [raw for i, raw in enumerate(page.decoded(), offset) if i not in kept]
        offset += len(page)
    return rest


def _with_parts(
    ctx: StreamContext, spec: StreamSpec, parts: Parts, changed: Iterator[list[Record]],
    types: Mapping[str, str], hints: FirstPageHints, rejects: Rejects,
) -> Iterator[TDataItem]:
    """Pages of a parent with parts: details fetched concurrently (only when its child is loaded)."""
    assert spec.shape is not None
    shape, hand_off = spec.shape, ctx.hand_off(spec.name)
    part_rejects = ctx.rejects(parts.child)

    def shaped(raw: Mapping[str, Any], detail: Mapping[str, Any] | None) -> Record:
        return shape(raw, schema.Shaping(types, detail, ctx.keep_nulls))

    client = ctx.client
    fetch = (lambda record_id: parts.detail(client, record_id)) if hand_off.fetch_parts else None
    with contextlib.closing(with_details(ctx, changed, fetch, parts.thread_name)) as detailed:
        for raws, details in detailed:
            rows = hand_off.shaped(raws, details, shaped, parts.rows, rejects, part_rejects)
            yield from rows_and_rejects(hints(rows) if rows else rows, rejects)
            yield from rows_and_rejects([], part_rejects)


def read_parts(parent_rows: TDataItem, ctx: StreamContext, spec: StreamSpec, meta: object = None) -> Iterator[TDataItem]:
    """Every part of each parent row the parent resource loaded in this run: handed over, else read now.

    Fed with the parent rows after dlt's incremental filter; parts are never filtered by their own
    time. The parent's own rejects reach this transformer too (dlt pipes every item): skipped.
    """
    if is_rejects_item(meta):
        return
    parts = spec.parts
    assert spec.parent is not None and parts is not None
    hand_off, rejects, client = ctx.hand_off(spec.parent), ctx.rejects(spec.name), ctx.client

    def fetch(parent_id: str) -> list[Record]:
        detail = parts.detail(client, parent_id)
        return parts.rows(detail, parent_id, rejects) if detail is not None else []

    for rows in handed_over_parts(parent_rows, hand_off.lock, hand_off.cache, fetch):
        # named: otherwise dlt gives these rows the parent's meta, and with it the parent's first-page
        # `custom_*` column hints (conversation_parts gained the conversations' custom columns)
        yield from rows_and_rejects(dlt.mark.with_table_name(rows, spec.name), rejects)
    yield from rows_and_rejects([], rejects)


def read_attributes(ctx: StreamContext, spec: StreamSpec) -> Iterator[TDataItem]:
    """GET /data_attributes for each model (shared with the typing of custom attributes).

    Keyed on (model, full_name): built-in attributes carry no `id`, and `name` repeats within a
    model (`name` and `plan.name`).
    """
    rejects = ctx.rejects(spec.name)
    for model in settings.DATA_ATTRIBUTE_MODELS:
        records = rejects.screened(ctx.client.data_attributes(model), key="full_name")
        rows = rejects.shaped(records, lambda r, model=model: schema.shape_data_attribute(r, model))
        yield from rows_and_rejects(rows, rejects)

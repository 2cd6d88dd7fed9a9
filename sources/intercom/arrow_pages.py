"""Search pages parsed once, by Arrow's JSON reader, in the thread that read them (issue 17).

Why: the JSON lane (json_lane.py) took pages that orjson had already decoded into Python objects
(13 us a contact, under the GIL), wrote them out again (2 us) and parsed them a second time. A page
the lane's current plan can read is now parsed from the bytes as served, by the window readers,
where Arrow's reader releases the GIL: pages that come at about the same moment by one call of it
(read_together.py), since each call costs about a third of a page before it reads a byte.

The stages between that reader and the lane (window bounds, a resumed backfill's progress, the
screening and cursor filter, the first load's ids, completion of cut lists) read only the ids and
cursors of such a page, or whether one of its lists is cut. A page with anything they treat
otherwise (a record without a usable id or cursor, a cursor not in plain seconds, a cut list) is
decoded as before (`ArrowPage.decoded`), and takes the usual path from there. So every record
still reaches the same stage with the same verdict; only where it is parsed moved.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.json as pa_json

from .lane_schema import Plan
from .read_together import ReadTogether
from .schema import LARGEST_SECONDS

logger = logging.getLogger(__name__)

Record = dict[str, Any]
_MAX_REST = 64  # pages left to orjson after repeated refusals (a drifting workspace)
# Pages read by one call of Arrow's reader (read_together.py): a reader waits up to 5 ms for this
# many. One thread, 20 search pages of 150 contacts, the product's allocator: 1.83 ms a page read
# alone, 1.71 two at a time, 1.50 four, 1.41 ten (joined pages over 1 MiB are mmapped: about 100
# page faults a page from four on). contacts-heavy --scale 10 (100 ms, 10,000/min): about 3.5
# pages a call, the same wall (docs/benchmarks.md).
GATHER_SECONDS = 0.005
GATHER_PAGES = 4

# a search page's envelope, as Intercom sends it (docs/emulator-contract.md); any other key or
# shape is refused, and orjson decodes the page
_NEXT = pa.struct([("page", pa.int64()), ("starting_after", pa.string())])
_PAGES = pa.struct([
    ("type", pa.string()), ("page", pa.int64()), ("per_page", pa.int64()), ("total_pages", pa.int64()),
    ("next", _NEXT),
])


@dataclass
class ArrowPage:
    """A page's records as parsed by the plan of `plan`, with the bytes they came from, and what the
    stages after the readers ask of them, read once by the reader that parsed it.

    `epochs`: each record's cursor in Unix seconds; None when one is absent or not plain seconds
    (such a record is rejected, or read as a date, on the usual path). `ids`: each record's id;
    None when one is absent or empty (a reject, on the usual path). `positions`: where the records
    sit in the page as served, once some were dropped (None: all).
    """

    content: bytes
    records: pa.StructArray
    plan: Plan
    envelope: dict[str, Any]  # the body without its records (`total_count`, `pages`): what the pager reads
    epochs: list[int] | None
    ids: list[str | int] | None
    positions: tuple[int, ...] | None = None
    _cut: dict[tuple[str, ...], bool] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.records)

    def decoded(self) -> list[Record]:
        """The records as orjson decodes them: for a stage that needs more than ids and cursors."""
        data = orjson.loads(self.content)["data"]  # a list of objects: the reader read it as one
        return data if self.positions is None else [data[i] for i in self.positions]

    def keys(self) -> list[tuple[str, float | None]] | None:
        """Each record's id as text and its cursor; None when one of either is not usable."""
        ids, epochs = self.ids, self.epochs
        if ids is None or epochs is None:
            return None
        return list(zip(map(str, ids), epochs, strict=True))

    def lists_cut(self, fields: tuple[str, ...]) -> bool:
        """Whether a record's embedded list under one of `fields` may hold fewer elements than
        exist (relations.needs_completion); True also when the page cannot tell (decode it)."""
        cut = self._cut.get(fields)
        if cut is None:
            cut = self._cut[fields] = _lists_cut(self.records, fields)
        return cut

    def take(self, indices: Sequence[int]) -> ArrowPage:
        """The records at `indices` (of this page), as a page of their own."""
        if len(indices) == len(self.records):
            return self
        positions = self.positions
        kept = tuple(indices) if positions is None else tuple(positions[i] for i in indices)
        records = self.records.take(pa.array(indices, pa.int64()))
        epochs, ids = self.epochs, self.ids
        return ArrowPage(
            self.content, records, self.plan, self.envelope,
            None if epochs is None else [epochs[i] for i in indices], None if ids is None else [ids[i] for i in indices],
            kept, {k: v for k, v in self._cut.items() if not v},  # a part of an uncut page is uncut
        )


# What the stages after the readers ask of a page is read below without Arrow's compute functions:
# each call of one releases the GIL, and with 27 readers, the lane and dlt's thread all wanting it,
# each release was a context switch or two (about 20 a page; docs/benchmarks.md). A page's 150
# values as Python objects cost less than that.


def _epochs(records: pa.StructArray, cursor_field: str) -> list[int] | None:
    try:
        values = records.field(cursor_field)
    except KeyError:
        return None
    if values.type != pa.int64() or values.null_count:
        return None
    epochs: list[int] = values.to_pylist()
    if epochs and (min(epochs) <= 0 or max(epochs) > LARGEST_SECONDS):
        return None
    return epochs


def _ids(records: pa.StructArray) -> list[str | int] | None:
    try:
        values = records.field("id")
    except KeyError:
        return None
    if values.type not in (pa.string(), pa.int64()) or values.null_count:
        return None
    ids: list[str | int] = values.to_pylist()
    return None if "" in ids else ids


def _lists_cut(records: pa.StructArray, fields: Iterable[str]) -> bool:
    for name in fields:
        try:
            envelope = records.field(name)
        except KeyError:
            continue
        if not pa.types.is_struct(envelope.type) or envelope.null_count:
            return True  # a null envelope: the page is decoded, and the usual path tells
        kinds = {envelope.type.field(i).name: envelope.type.field(i).type for i in range(envelope.type.num_fields)}
        if "has_more" in kinds:
            more = envelope.field("has_more")
            if more.type != pa.bool_() or more.true_count:
                return True
        if "total_count" in kinds:
            total = envelope.field("total_count")
            if total.type != pa.int64():
                return True
            if "data" in kinds and not pa.types.is_list(kinds["data"]):
                return True
            if "data" in kinds:
                data = envelope.field("data")
                if data.null_count:
                    return True
                offsets = data.offsets.to_pylist()
                shown = [end - start for start, end in zip(offsets, offsets[1:], strict=False)]
            else:
                shown = [0] * len(total)
            if any(t is not None and t > s for t, s in zip(total.to_pylist(), shown, strict=True)):
                return True
    return False


# a page read: its records and envelope; None: not a page of records (the usual path says how);
# an Arrow error: the plan refused it
_Read = tuple[pa.StructArray, dict[str, Any]] | pa.ArrowException | None


def _pages_of(table: pa.Table) -> list[_Read]:
    """Each row's records (one row a page) and envelope, without a compute call (see _lists_cut)."""
    data = table.column("data")
    if data.num_chunks != 1:
        return [None] * table.num_rows
    chunk = data.chunk(0)
    offsets = chunk.offsets.to_pylist()
    totals, pages = table.column("total_count").to_pylist(), table.column("pages").to_pylist()
    reads: list[_Read] = []
    for row in range(table.num_rows):
        if chunk.null_count and not chunk[row].is_valid:
            reads.append(None)
            continue
        records = chunk.values.slice(offsets[row], offsets[row + 1] - offsets[row])
        if records.null_count:  # a null element: the usual path skips it, with a warning
            reads.append(None)
            continue
        reads.append((records, {"total_count": totals[row], "pages": pages[row]}))
    return reads


Page = list[Record] | ArrowPage


def records_of(page: Page) -> list[Record]:
    """A page's records as dicts (an Arrow page decoded)."""
    return page.decoded() if isinstance(page, ArrowPage) else page


@dataclass
class PageParser:
    """A stream's search pages as `ArrowPage`s, by the JSON lane's current plan (`plan`, set by the
    lane; None: orjson decodes every page). Called from the readers' threads."""

    cursor_field: str
    lists: tuple[str, ...] | None = None  # embedded lists whose cut a later stage asks about (relations.py)
    plan: Plan | None = None
    parsed: int = 0  # pages parsed here
    refused: int = 0  # pages the reader refused (orjson decoded them)
    _schema_of: tuple[Plan, pa.Schema] | None = None
    _refused: int = 0  # refusals in a row, by `_refused_by`
    _refused_by: Plan | None = None
    _rest: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    gather: float = GATHER_SECONDS  # how long, and for how many pages, a page waits for company
    gather_pages: int = GATHER_PAGES
    _together: ReadTogether[Plan, _Read] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._together = ReadTogether(self._read_pages, gather=self.gather, enough=self.gather_pages)

    @property
    def reads(self) -> int:
        """Reads of the pages queued together (read_together.py); a read one page refused is made again
        page by page, so that only that page is refused."""
        return self._together.calls

    def __call__(self, content: bytes) -> ArrowPage | None:
        plan = self.plan
        if plan is None or self._resting(plan):
            return None
        read = self._together.read(content, plan)
        if isinstance(read, pa.ArrowException):  # a key, type or shape the plan has not seen: orjson decodes it
            logger.debug("a page left to orjson: %s", read)
            self._refusal(plan)
            return None
        if read is None:
            return None  # not a page of records (the usual path says how)
        records, envelope = read
        try:  # what the later stages ask of the page, read here in the reader's thread
            page = ArrowPage(content, records, plan, envelope, _epochs(records, self.cursor_field), _ids(records))
            if self.lists is not None:
                page.lists_cut(self.lists)
        except pa.ArrowException as exc:  # a shape the checks did not foresee: orjson decodes the page
            logger.debug("a page left to orjson: %s", exc)
            return None
        with self._lock:
            self._refused = 0
            self.parsed += 1
        return page

    def _schema(self, plan: Plan) -> pa.Schema:
        """The page's schema: the envelope around the plan's records (built once per plan)."""
        known = self._schema_of
        if known is None or known[0] is not plan:
            records = plan.schema.field("d").type
            known = self._schema_of = (plan, pa.schema([
                ("type", pa.string()), ("data", records), ("total_count", pa.int64()), ("pages", _PAGES),
            ]))
        return known[1]

    def _read_pages(self, contents: Sequence[bytes], plan: Plan) -> list[_Read]:
        """Each page read by the plan: several joined as lines, read by one call of Arrow's reader
        (read_together.py); alone when it holds a line break, or when the plan refuses one of the
        joined pages (so only that one is refused)."""
        lines = [i for i, content in enumerate(contents) if b"\n" not in content and b"\r" not in content]
        joined = self._read_joined(contents, lines, plan) if len(lines) > 1 else {}
        return [joined[i] if i in joined else self._read_alone(content, plan) for i, content in enumerate(contents)]

    def _read_joined(self, contents: Sequence[bytes], rows: list[int], plan: Plan) -> dict[int, _Read]:
        """The pages at `rows`, one a line, read by one call; none when the plan refuses one."""
        try:
            table = self._read_json(b"\n".join(contents[i] for i in rows), plan)
        except pa.ArrowException:
            return {}
        if table.num_rows != len(rows):
            return {}
        return dict(zip(rows, _pages_of(table), strict=True))

    def _read_alone(self, content: bytes, plan: Plan) -> _Read:
        try:
            table = self._read_json(content, plan)
        except pa.ArrowException as exc:
            return exc
        return _pages_of(table)[0] if table.num_rows == 1 else None

    def _read_json(self, content: bytes, plan: Plan) -> pa.Table:
        return pa_json.read_json(
            pa.BufferReader(content),
            read_options=pa_json.ReadOptions(use_threads=False, block_size=max(1 << 20, 2 * len(content))),
            parse_options=pa_json.ParseOptions(explicit_schema=self._schema(plan), unexpected_field_behavior="error"),
        )

    def _resting(self, plan: Plan) -> bool:
        with self._lock:
            if self._refused_by is not plan:  # a new plan (the lane learnt new keys): tried at once
                self._refused, self._rest = 0, 0
            if self._rest:
                self._rest -= 1
                return True
            return False

    def _refusal(self, plan: Plan) -> None:
        """After repeated refusals by one plan, leave pages to orjson a while (1, 2, 4 ... up to 64 pages)."""
        with self._lock:
            self.refused += 1
            self._refused += 1
            self._refused_by = plan
            self._rest = min(_MAX_REST, 2 ** (self._refused - 1)) - 1


# the parser of the stream whose pages this thread reads (readers.read_records sets it; the split
# search's readers run in a copy of its context)
PAGE_PARSER: ContextVar[PageParser | None] = ContextVar("intercom_page_parser", default=None)

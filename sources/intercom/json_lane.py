"""The fast path's fastest lane: pages of records parsed at once by Arrow's JSON reader.

Why (issue 17): turning a decoded contact into rows (columnar.py) and the rows into Arrow tables
cost about 60 us of Python a contact, holding the GIL the HTTP readers and dlt also need. Arrow's
JSON reader parses the same records, typed, in C++ that does not hold it: written out again with
orjson and read back, with the columns made from them, about 25 us (docs/benchmarks.md). The
pages of a split search are parsed once instead, from the bytes as served, by the readers that
fetched them, with the plan the lane hands them (`parser`, arrow_pages.py): `take_parsed`.

Exact by construction, like columnar.py, which stays the judge of every record shape:
* the reader is given an explicit schema of only what the Columnizer has taken so far
  (lane_schema.py): the keys of records it turned into rows, typed as their columns already are.
  Pages with any other key, type or shape (a string where an object was, an integer beyond a
  bigint, a float in an integer column, a key twice) are refused whole and go to the Columnizer;
* a record holding a value the Columnizer decides on (a timestamp not in whole seconds, an
  envelope without its list) goes to the Columnizer too;
* the lane writes only columns dlt already has (`known`: stored, or sent in an earlier batch),
  so which record first brings a column, and so the columns' order, stays the Columnizer's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from .arrow_items import timestamps
from .arrow_pages import ArrowPage, PageParser
from .column_plans import ID, STAMP, NotColumnar
from .columnar import Columnizer
from .lane_schema import Column, Plan, Seen, compile_plan
from .schema import LARGEST_SECONDS

logger = logging.getLogger(__name__)

MIN_RECORDS = 16  # fewer cost more to hand to the reader than the Columnizer spends on them
BATCH_RECORDS = 1_200  # records (pages) read at once: each call costs ~0.5 ms, each compute step ~10 us
_MAX_SKIP = 64  # pages left to the Columnizer after repeated refusals (a drifting workspace)


class NotYetKnown(NotColumnar):
    """A page brings a column dlt does not have yet."""


@dataclass
class LanePage:
    """What the lane made of the records of one page it took (`taken`: their positions)."""

    taken: list[int]
    root: dict[str, pa.Array]
    children: dict[str, tuple[dict[str, pa.Array], pa.Array, pa.Array]]  # table -> (columns, parent row, position)
    newest: int | None  # Unix seconds of the newest cursor value


class JsonLane:
    """Pages of a stream's records as Arrow columns, parsed by Arrow's JSON reader (see module doc)."""

    def __init__(
        self, columnizer: Columnizer, known: Mapping[str, set[str]], cursor: str, parser: PageParser | None = None,
    ) -> None:
        self.columnizer = columnizer
        self.layout = columnizer.layout
        self.known = known  # table -> the columns dlt already has
        self.cursor = cursor
        self.parser = parser  # given the current plan while the lane wants pages (arrow_pages.py)
        self.seen = Seen()
        self.taken = 0  # records taken by the lane
        self._plan: Plan | None = None
        self._refused = 0
        self._skip = 0
        self._stopped = False

    def learn(self, raw: Mapping[str, Any]) -> None:
        """Note the keys and kinds of a record the Columnizer turned into rows."""
        self.seen.learn(raw, self.columnizer.child_fields)

    def wants_pages(self) -> bool:
        """Whether the next pages should be held for `take`: it has seen records, dlt has the table
        (before, the Columnizer's records bring its columns), and it is not resting after refusals."""
        return bool(self.seen.top) and bool(self.known.get(self.layout.root)) and not self._skip and not self._stopped

    def take(self, raws: Sequence[Mapping[str, Any]]) -> LanePage | None:
        """The records (of one or more pages) the lane can take, as columns; None: the Columnizer
        takes them all."""
        if self._skip:
            self._skip -= 1
            self._publish()
            return None
        if len(raws) < MIN_RECORDS or not self.wants_pages():
            return None
        plan = self._current_plan()

        def parsed() -> pa.StructArray:
            table = pa_json.read_json(
                pa.BufferReader(b'{"d":' + orjson.dumps(raws) + b"}"),
                read_options=pa_json.ReadOptions(use_threads=False, block_size=1 << 30),
                parse_options=pa_json.ParseOptions(explicit_schema=plan.schema, unexpected_field_behavior="error"),
            )
            return table.column("d").chunk(0).flatten()

        return self._read(plan, parsed, len(raws))

    def take_parsed(self, pages: Sequence[ArrowPage]) -> LanePage | None:
        """The records of pages the readers parsed with one plan (arrow_pages.py) the lane can
        take, as columns; None: the Columnizer takes them all."""
        self._current_plan()  # a record the Columnizer took since may widen the plan the readers get
        def parsed() -> pa.StructArray:
            return pa.concat_arrays([page.records for page in pages]) if len(pages) > 1 else pages[0].records

        return self._read(pages[0].plan, parsed, sum(len(page) for page in pages))

    def _current_plan(self) -> Plan:
        if self.seen.changed or self._plan is None:
            self._plan, self.seen.changed = compile_plan(self.seen, self.columnizer), False
        return self._plan

    def _read(self, plan: Plan, parsed: Callable[[], pa.StructArray], count: int) -> LanePage | None:
        """`parsed` records as columns (see `_columns`); a refusal rests the lane a while."""
        try:
            page = self._columns(plan, parsed())
        except NotYetKnown as exc:  # the Columnizer's records bring it, and the next batch hands it to dlt
            logger.debug("%s: %d records left to the Columnizer: %s", self.layout.root, count, exc)
            return None
        except (pa.ArrowInvalid, NotColumnar) as exc:  # a key, type or value not seen: the reader refused
            logger.debug("%s: %d records left to the Columnizer: %s", self.layout.root, count, exc)
            self._refused += 1
            self._skip = min(_MAX_SKIP, 2 ** (self._refused - 1)) - 1
            return None
        except pa.ArrowException as exc:  # not one of the refusals above: the Columnizer reads the rest of the run
            logger.warning("%s: Arrow's JSON reader is left out for the rest of this run (%s: %s); the records "
                           "are read one by one instead, to the same rows", self.layout.root, type(exc).__name__, exc)
            self._stopped = True
            return None
        finally:
            self._publish()
        self._refused = 0
        self.taken += len(page.taken)
        return page

    def _publish(self) -> None:
        """The readers parse pages with the current plan while the lane wants pages, else not."""
        if self.parser is not None:
            self.parser.plan = self._plan if self.wants_pages() else None

    def _columns(self, plan: Plan, records: pa.StructArray) -> LanePage:
        """The parsed records as the columns of their table and child tables, but for those with a
        value the Columnizer decides on."""
        top = {c.key: records.field(c.key) for c in plan.top}
        nested = {key: records.field(key) for key in plan.nested}
        custom = records.field("custom_attributes") if plan.custom else None
        envelopes = {child.field: records.field(child.field) for child in plan.children}
        lists = {child.field: _field(envelopes[child.field], child.list_key) for child in plan.children}
        mask = _kept(plan, len(records), top, nested, custom, envelopes, lists)
        taken = pc.indices_nonzero(mask).to_pylist() if mask is not None else list(range(len(records)))
        if not taken:
            raise NotColumnar("no record of the page is the lane's")

        def kept(array: pa.Array) -> pa.Array:
            return array.filter(mask) if mask is not None else array

        root: dict[str, pa.Array] = {}
        for c in plan.top:
            _put(root, c, kept(top[c.key]))
        for key, columns in plan.nested.items():
            parent = kept(nested[key])
            for c in columns:
                _put(root, c, _field(parent, c.key))
        if custom is not None:
            lifted = kept(custom)
            for c in plan.custom:
                _put(root, c, _field(lifted, c.key))
        ids = root.get(self.layout.name("id"))
        if ids is None:
            raise NotColumnar("ids not read as the Columnizer reads them")
        children: dict[str, tuple[dict[str, pa.Array], pa.Array, pa.Array]] = {}
        for child in plan.children:
            envelope = kept(envelopes[child.field])
            for c in child.extras:
                _put(root, c, _field(envelope, c.key))
            data = kept(lists[child.field])
            elements = data.flatten()
            if not len(elements):
                continue
            parents = pc.list_parent_indices(data)
            # an element's position in its list: its index among all, less its list's first one's
            offsets = pc.subtract(data.offsets.cast(pa.int64()), data.offsets[0].as_py())
            positions = pc.subtract(pa.array(range(len(elements)), pa.int64()), offsets.take(parents))
            rows: dict[str, pa.Array] = {self.columnizer.shape.parent_key: ids.take(parents)}
            for c in child.items:
                _put(rows, c, _field(elements, c.key))
            children[child.table] = (rows, parents, positions)
        self._check_known(self.layout.root, root)
        for table, (rows, _, _) in children.items():
            self._check_known(table, rows)
        cursor = root.get(self.cursor)
        newest = pc.max(cursor).value if cursor is not None and cursor.null_count < len(cursor) else None
        return LanePage(taken, root, children, None if newest is None else int(newest // 1_000_000))

    def _check_known(self, table: str, columns: dict[str, pa.Array]) -> None:
        """Only columns dlt has (a new one is added where the Columnizer's record brings it); the
        columns without a value are dropped."""
        known = self.known.get(table, set())
        for name in [n for n, a in columns.items() if a.null_count == len(a)]:
            del columns[name]
        for name in columns:
            if name not in known:
                raise NotYetKnown(f"{table}.{name}: a column dlt does not have yet")


def _kept(
    plan: Plan, count: int, top: dict[str, pa.Array], nested: dict[str, pa.StructArray], custom: pa.StructArray | None,
    envelopes: dict[str, pa.StructArray], lists: dict[str, pa.ListArray],
) -> pa.Array | None:
    """The records with no value the Columnizer decides on, as a mask (None: all): a timestamp not
    in whole seconds, an envelope without its list. Checked on each whole column first (rare)."""
    refused: list[pa.Array] = []  # masks of records
    refused_parents: list[pa.Array] = []  # positions of records
    stamps: list[tuple[pa.Array, pa.ListArray | None]] = [(top[c.key], None) for c in plan.top if c.kind is STAMP]
    stamps += [(_field(nested[k], c.key), None) for k, columns in plan.nested.items() for c in columns if c.kind is STAMP]
    if custom is not None:
        stamps += [(_field(custom, c.key), None) for c in plan.custom if c.kind is STAMP]
    for child in plan.children:
        envelope, data = envelopes[child.field], lists[child.field]
        if data.null_count > envelope.null_count:
            refused.append(pc.and_(envelope.is_valid(), data.is_null()))
        if any(c.kind is STAMP for c in child.items):
            elements = data.flatten()
            stamps += [(_field(elements, c.key), data) for c in child.items if c.kind is STAMP]
    for values, data in stamps:
        low, high = pc.min_max(values).values()
        if low.is_valid and (low.as_py() < 0 or high.as_py() > LARGEST_SECONDS):
            bad = pc.or_(pc.less(values, 0), pc.greater(values, LARGEST_SECONDS)).fill_null(False)
            if data is None:
                refused.append(bad)
            else:
                refused_parents.append(pc.list_parent_indices(data).filter(bad))
    return _keep(count, refused, refused_parents)


def _put(columns: dict[str, pa.Array], c: Column, values: pa.Array) -> None:
    """A read value as its column holds it: ids as text, timestamps from seconds (0: none)."""
    if c.kind is ID:
        values = values.cast(pa.string()) if values.type != pa.string() else values
    elif c.kind is STAMP:
        if values.null_count < len(values) and pc.min(values).as_py() == 0:
            values = pc.if_else(pc.equal(values, 0), pa.scalar(None, pa.int64()), values)
        values = timestamps(values)
    columns[c.column] = values


def _field(struct: pa.StructArray, name: str) -> pa.Array:
    """A struct's field, null where the struct itself is."""
    return pc.struct_field(struct, name) if struct.null_count else struct.field(name)


def _keep(count: int, refused: list[pa.Array], refused_parents: list[pa.Array]) -> pa.Array | None:
    """The records no check refused, as a mask; None: all of them."""
    refuse = None
    for mask in refused:
        if mask.true_count:
            refuse = mask.fill_null(False) if refuse is None else pc.or_(refuse, mask.fill_null(False))
    positions = [p for p in refused_parents if len(p)]
    if positions:
        by_element = pc.is_in(pa.array(range(count), pa.int64()), value_set=pa.concat_arrays(positions).cast(pa.int64()))
        refuse = by_element if refuse is None else pc.or_(refuse, by_element)
    return None if refuse is None else pc.invert(refuse)

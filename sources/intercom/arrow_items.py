"""The fast path's dlt side: batches of columnar rows as Arrow tables, with dlt's `_dlt_*` linkage.

dlt writes an Arrow table as it is (no per-row normalize), so these tables carry what its
relational normalizer would have added: `_dlt_load_id` and a unique `_dlt_id` on the parent rows;
`_dlt_root_id`, `_dlt_parent_id`, `_dlt_list_idx` and a `_dlt_id` on child rows (counted here, `_RowIds`,
where dlt hashes the parent's id with the position: unique either way, and nothing joins on
a child's own `_dlt_id`).
Child tables are table variants of the stream's resource that name their parent (`child_tables`).

Two things dlt 1.31 does not do for a resource that writes its own child tables, done here:
* its extract looks up the resource of every table it wrote, and a child table has none
  (`ResourceOfChildTable`);
* its incremental step filters every item on the cursor, which child tables do not have: the
  stream filters the records itself and moves the cursor with `Incremental.advance`.
The fast path runs only on the dlt versions it was tested with (`supported`).
"""

from __future__ import annotations

import array
import base64
import itertools
import os
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import dlt
import pyarrow as pa
from dlt.common.schema import Schema
from dlt.common.schema.typing import TColumnSchema, TTableSchema
from dlt.common.schema.utils import new_table
from dlt.extract import DltResource
from dlt.extract.incremental import Incremental
from dlt.extract.items import TableNameMeta

from .column_plans import DATA_TYPE, Columns, Layout, Row, column_types
from .columnar import RecordRows

if TYPE_CHECKING:
    from .json_lane import LanePage

TESTED_DLT = ("1.31.",)  # the dlt releases whose extract this path was tested against
_IDS_AT_ONCE = 8_192
_MAX_ROWS_OF_A_RECORD = 512  # ids drawn again below this many: a record rarely has more child rows
# parent rows per Arrow table. dlt computes and checks a table's schema for every Arrow item (about
# 4 ms for the contacts table, 1 ms for a child table), 0.5 CPU-s of a 200,000-contact sync at 2,500
# rows; more rows cost memory while a batch is built. The first batch is small: the JSON lane writes
# only columns dlt has, so until the first batch is handed on the records are read one by one, and
# the readers' pages meanwhile are decoded and read again (at 2,500: 10,000 of 200,000 contacts
# that way; at 600: 3,600, and 0.6 us a contact less in the reading thread).
BATCH_RECORDS = 10_000
FIRST_BATCH_RECORDS = 600

_ARROW: dict[str, pa.DataType] = {
    "text": pa.string(), "bigint": pa.int64(), "double": pa.float64(), "bool": pa.bool_(),
    "timestamp": pa.int64(),  # Unix seconds, cast below
}
TIMESTAMP = pa.timestamp("us", tz="UTC")
_SECONDS = pa.timestamp("s", tz="UTC")
# the `_dlt_*` columns as dlt's relational normalizer makes them
_ROOT_LINKAGE: dict[str, TColumnSchema] = {
    "_dlt_load_id": {"name": "_dlt_load_id", "data_type": "text", "nullable": False},
    "_dlt_id": {"name": "_dlt_id", "data_type": "text", "nullable": False, "unique": True, "row_key": True},
}
_CHILD_LINKAGE: dict[str, TColumnSchema] = {
    "_dlt_root_id": {"name": "_dlt_root_id", "data_type": "text", "nullable": False, "root_key": True},
    "_dlt_parent_id": {"name": "_dlt_parent_id", "data_type": "text", "nullable": False, "parent_key": True},
    "_dlt_list_idx": {"name": "_dlt_list_idx", "data_type": "bigint", "nullable": False},
    "_dlt_id": {"name": "_dlt_id", "data_type": "text", "nullable": False, "unique": True, "row_key": True},
}


def supported() -> bool:
    return dlt.__version__.startswith(TESTED_DLT)


def child_tables(resource: DltResource, root: str, tables: tuple[str, ...]) -> MainThreadStep:
    """Give the bound `resource` a variant per child table, nested in `root` (emptied of what a
    variant inherits from the stream: its columns and keys; then given dlt's `_dlt_*` columns), and
    the step that does in dlt's main thread what must not race with its incremental step."""
    for table in tables:
        resource.apply_hints(
            table_name=table, parent_table_name=root, columns={}, primary_key="", merge_key="",
            create_table_variant=True,
        )
        resource.apply_hints(table_name=table, columns=list(_CHILD_LINKAGE.values()), create_table_variant=True)
    step = MainThreadStep(root, resource.name, frozenset(tables))
    resource.add_map(step)  # dlt keeps its incremental step last: this one runs just before it
    return step


class MainThreadStep:
    """A map step of the stream's resource: runs in dlt's main thread for every item, before dlt's
    incremental step.

    * It moves the cursor to the newest record handed on (`Incremental.advance`, forward only), which
      the reading thread only records (`move_cursor`): dlt's incremental step reads and writes the
      cursor state unlocked, so `advance` from another thread raced with it (seen once in a CI run
      of the suite: `'>' not supported between 'DateTime' and 'NoneType'`).
    * The child table an item is for answers its resource from then on (`ResourceOfChildTable`),
      created here when it is new, as dlt would create it.
    """

    def __init__(self, root: str, resource: str, tables: frozenset[str]) -> None:
        self.root, self.resource, self.tables = root, resource, tables
        self._move: tuple[Incremental[Any], datetime] | None = None

    def move_cursor(self, cursor: Incremental[Any], newest: datetime) -> None:
        """Called by the reading thread before it yields the items up to `newest`."""
        self._move = (cursor, newest)

    def __call__(self, item: Any, meta: Any = None) -> Any:
        move = self._move
        if move is not None:
            cursor, newest = move
            last = cursor.last_value
            cursor.advance(newest if last is None or newest > last else last)
        if isinstance(meta, TableNameMeta) and meta.table_name in self.tables:  # child tables: with_table_name
            claim_child_table(meta.table_name, self.root, self.resource)
        return item


class _RowIds:
    """`_dlt_id`s: 12 bytes, base64, as dlt's, but 9 random bytes shared by up to 2**24 ids and a
    3-byte count after them, not 12 random bytes each.

    Why: DuckDB compresses text by dictionary and FSST, and neither finds anything in random ids:
    storing them was a quarter of the load, and three id columns a third of the file. Ids that
    share a prefix and count up cost 0.39 against 0.66 CPU-s a million pairs, in 11 MB against
    34 (docs/benchmarks.md). Unique as dlt's: two runs collide only by drawing the same 72 bits.
    The prefix and the count sit on base64's 3-byte boundaries, so each id is the prefix's 12
    characters and the count's 4, and every byte is placed by slicing, not by a Python loop.
    """

    _COUNT_BYTES = 3
    _PREFIX_BYTES = 12 - _COUNT_BYTES

    def __init__(self, per_prefix: int = 1 << 24) -> None:
        self._per_prefix = min(per_prefix, 1 << 24)  # the count's 3 bytes hold no more
        self.restart()

    def restart(self) -> None:
        """A new prefix on next use (also in a forked child: it must not count on from its parent's)."""
        self._lock = threading.Lock()
        self._prefix = b""
        self._next = self._per_prefix

    def encoded(self, count: int) -> bytes:
        """`count` new ids, 16 base64 characters each, end to end."""
        with self._lock:
            if self._next + count > self._per_prefix:
                self._prefix, self._next = os.urandom(self._PREFIX_BYTES), 0
            first, prefix = self._next, self._prefix
            self._next += count
        counts = array.array("I", range(first, first + count))  # 4 bytes each, in the machine's order
        if sys.byteorder == "little":
            counts.byteswap()
        big_endian = counts.tobytes()
        raw = bytearray(prefix + bytes(self._COUNT_BYTES)) * count
        for i in range(self._COUNT_BYTES):  # the count's low 3 bytes after each prefix
            raw[self._PREFIX_BYTES + i :: 12] = big_endian[1 + i :: 4]
        return base64.b64encode(raw)


_ROW_IDS = _RowIds()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ROW_IDS.restart)


def _new_ids(count: int) -> list[str]:
    """`count` new `_dlt_id`s as Python strings."""
    text = _ROW_IDS.encoded(count).decode("ascii")
    return [text[i : i + 16] for i in range(0, 16 * count, 16)]


def _new_id_array(count: int) -> pa.StringArray:
    """`_new_ids` as one Arrow array, cut from the encoded bytes without a Python string each
    (0.04 against 0.11 us an id; a page's parent and child rows take hundreds)."""
    ids = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), count, [None, pa.py_buffer(_ROW_IDS.encoded(count))])
    return ids.cast(pa.string())


class ResourceOfChildTable(dict):  # type: ignore[type-arg]
    """A child table's schema that answers `["resource"]` with its root's resource, and keeps
    only what a child table normalized by dlt holds.

    dlt 1.31's extract aggregates its metrics by `schema.get_table(name)["resource"]` over every
    table written during the extract, and a child table holds no `resource` (dlt refuses one on a
    child table, and `.get("resource")`, which its merges use, still finds none here). The
    variant's `variant_name` and inherited `write_disposition` are not taken: the stored schema
    stays the one rows normalized one by one make (the disposition is the parent's).
    """

    _NOT_TAKEN = frozenset({"variant_name", "write_disposition"})

    def __init__(self, table: TTableSchema, resource: str) -> None:
        super().__init__({k: v for k, v in table.items() if k not in self._NOT_TAKEN})
        self._resource = resource

    def __missing__(self, key: str) -> Any:
        if key == "resource":
            return self._resource
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self._NOT_TAKEN:
            super().__setitem__(key, value)


def claim_child_table(name: str, root: str, resource: str) -> None:
    """The child table `name` answers its resource from now on (created as dlt would create it)."""
    schema_tables = dlt.current.source_schema().tables
    table = schema_tables.get(name)
    if not isinstance(table, ResourceOfChildTable):
        schema_tables[name] = ResourceOfChildTable(table or new_table(name, parent_table_name=root), resource)


class ArrowBatch:
    """Records of the fast path gathered into one Arrow table per table (parent and children).

    The rows hold the records' own columns; the `_dlt_*` linkage is kept beside them as columns
    (one list per column, not a key per row) and joins the tables where dlt's one-by-one normalize
    would have put it: after the first row's own columns. Records the JSON lane took arrive as
    columns already (`add_page`) and follow the rows in each table."""

    def __init__(self, layout: Layout, load_id: str, hinted: Sequence[TColumnSchema], sent: dict[str, set[str]]) -> None:
        self.layout = layout
        self.load_id = load_id
        self.hinted = {c["name"]: c for c in hinted if c.get("data_type") in _ARROW}  # in the stream's hint order
        self.sent = sent  # table -> the columns dlt has: stored, or in a table handed on (updated here)
        self.records = 0
        self._rows: dict[str, list[Row]] = {layout.root: []}
        self._pieces: dict[str, list[_Piece]] = {}  # pages the JSON lane took (json_lane.py), by table
        self._row_ids: list[str] = []  # the parent rows' `_dlt_id`s
        self._links: dict[str, _ChildLinks] = {}  # each child table's linkage, row by row
        self._linkage_hinted = False
        self._ids: list[str] = []  # `_dlt_id`s drawn in bulk, not one a row
        self._handed_on = False  # a batch was handed on (`items`)

    @property
    def full(self) -> bool:
        """Whether the batch holds enough records to be handed on (see BATCH_RECORDS)."""
        return self.records >= (BATCH_RECORDS if self._handed_on else min(FIRST_BATCH_RECORDS, BATCH_RECORDS))

    def add(self, record: RecordRows) -> None:
        ids = self._ids
        if len(ids) < _MAX_ROWS_OF_A_RECORD:
            ids.extend(_new_ids(_IDS_AT_ONCE))
        row_id = ids.pop()
        self._rows[self.layout.root].append(record.row)
        self._row_ids.append(row_id)
        for table, rows in record.children:
            out = self._rows.get(table)
            if out is None:
                out = self._rows[table] = []
                self._links[table] = _ChildLinks()
            count = len(rows)
            if not count:
                continue
            if count > len(ids):
                ids.extend(_new_ids(count))
            self._links[table].add(row_id, ids[-count:])
            del ids[-count:]
            out.extend(rows)
        self.records += 1

    def add_page(self, page: LanePage) -> None:
        """The records of a page the JSON lane took, with their `_dlt_*` linkage."""
        count = len(page.taken)
        row_ids = _new_id_array(count)
        root = self.layout.root
        self._pieces.setdefault(root, []).append(
            _Piece(page.root, {"_dlt_load_id": pa.repeat(self.load_id, count), "_dlt_id": row_ids}, count),
        )
        for table, (columns, parents, positions) in page.children.items():
            if table not in self._rows:
                self._rows[table], self._links[table] = [], _ChildLinks()
            parent_ids = row_ids.take(parents)
            linkage = {
                "_dlt_root_id": parent_ids, "_dlt_parent_id": parent_ids, "_dlt_list_idx": positions,
                "_dlt_id": _new_id_array(len(parents)),
            }
            self._pieces.setdefault(table, []).append(_Piece(columns, linkage, len(parents)))
        self.records += count

    def items(self, hints: Sequence[TColumnSchema] = ()) -> Iterator[Any]:
        """The parent's table, then each child table (its variant); the batch is emptied.

        dlt orders a table's columns as the Arrow table does, then the hinted ones it lacks; the
        tables here list them as rows normalized one by one would have met them (the parent: its
        hinted columns first), so the stored schema is the same either way. `hints` go with the
        parent's table, and with the first one the properties of its `_dlt_*` columns.
        """
        rows, self._rows, self.records, self._handed_on = self._rows, {self.layout.root: []}, 0, True
        row_ids, links, self._row_ids, self._links = self._row_ids, self._links, [], {}
        pieces, self._pieces = self._pieces, {}
        root = self.layout.root
        for table, table_rows in rows.items():
            if not table_rows and not pieces.get(table):
                continue
            if table != root:
                linkage = links[table].columns()
                arrow = self._table(table, table_rows, pieces.get(table, []), {}, _CHILD_LINKAGE, linkage)
                self.sent.setdefault(table, set()).update(arrow.column_names)
                yield dlt.mark.with_table_name(arrow, table)
                continue
            linkage = {"_dlt_load_id": pa.repeat(self.load_id, len(row_ids)), "_dlt_id": pa.array(row_ids, pa.string())}
            arrow = self._table(table, table_rows, pieces.get(table, []), self.hinted, _ROOT_LINKAGE, linkage)
            self.sent.setdefault(table, set()).update(arrow.column_names)
            if not self._linkage_hinted:
                hints, self._linkage_hinted = [*hints, *_ROOT_LINKAGE.values()], True
            yield dlt.mark.with_hints(arrow, dlt.mark.make_hints(columns=list(hints))) if hints else arrow

    def _table(
        self, table: str, rows: list[Row], pieces: list[_Piece], hinted: Mapping[str, TColumnSchema],
        linkage_columns: Mapping[str, TColumnSchema], linkage: Mapping[str, pa.Array],
    ) -> pa.Table:
        """`rows` and their `linkage`, then the lane's `pieces`, as an Arrow table: the `hinted`
        columns first (nulls where absent), then the others in the order the rows bring them, the
        linkage after the first row's, then the pieces' (columns dlt has already: their place is
        dlt's); timestamps from Unix seconds to UTC microseconds."""
        types = {name: DATA_TYPE.get(kind) for name, kind in self.layout.types.get(table, {}).items()}
        order: dict[str, None] = dict.fromkeys(hinted)
        if rows:
            order.update(dict.fromkeys(rows[0]))
        order.update(dict.fromkeys(linkage_columns))
        order.update(dict.fromkeys(itertools.chain.from_iterable(rows)))
        for piece in pieces:
            order.update(dict.fromkeys(piece.columns))
        own, fields, stamps = [], [], []
        for name in order:
            column = linkage_columns.get(name) or hinted.get(name) or {}
            data_type = types.get(name) or column.get("data_type", "text")
            field = pa.field(name, _ARROW[data_type], nullable=column.get("nullable", True))
            if name not in linkage:
                own.append(field)
            if data_type == "timestamp":
                stamps.append(name)
                field = pa.field(name, TIMESTAMP)  # nullable, as this path always wrote timestamps
            fields.append(field)
        chunks: dict[str, list[pa.Array]] = {f.name: [] for f in fields}
        if rows:
            arrays = self._rows_arrays(rows, own, stamps, linkage)
            for f in fields:
                chunks[f.name].extend(_chunks(arrays[f.name]))
        for piece in pieces:
            for f in fields:
                array = piece.columns.get(f.name)
                if array is None:
                    array = piece.linkage.get(f.name)
                chunks[f.name].append(array if array is not None else pa.nulls(piece.rows, f.type))
        return pa.Table.from_arrays([pa.chunked_array(chunks[f.name], f.type) for f in fields], schema=pa.schema(fields))

    @staticmethod
    def _rows_arrays(
        rows: list[Row], own: list[pa.Field], stamps: list[str], linkage: Mapping[str, pa.Array],
    ) -> dict[str, pa.Array | pa.ChunkedArray]:
        own_table = pa.Table.from_pylist(rows, schema=pa.schema(own))
        arrays: dict[str, pa.Array | pa.ChunkedArray] = dict(zip(own_table.column_names, own_table.columns, strict=True))
        arrays.update(linkage)
        for name in stamps:
            arrays[name] = timestamps(arrays[name])
        return arrays


def timestamps(seconds: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Unix seconds (int64) as the UTC microsecond timestamps dlt's normalizer makes of them."""
    return seconds.cast(_SECONDS).cast(TIMESTAMP)


@dataclass
class _Piece:
    """One page the JSON lane took, for one table: its columns, its `_dlt_*` linkage, its row count."""

    columns: Mapping[str, pa.Array]
    linkage: Mapping[str, pa.Array]
    rows: int


def _chunks(array: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return array.chunks if isinstance(array, pa.ChunkedArray) else [array]


class _ChildLinks:
    """One child table's `_dlt_*` columns, row by row: the parent's `_dlt_id` (also the root's: the
    children are one level down), the row's position in its parent's list, and its own id."""

    def __init__(self) -> None:
        self.parents: list[str] = []
        self.positions: list[int] = []
        self.ids: list[str] = []

    def add(self, parent_id: str, ids: list[str]) -> None:
        count = len(ids)
        self.parents.extend(itertools.repeat(parent_id, count))
        self.positions.extend(range(count))
        self.ids.extend(ids)

    def columns(self) -> dict[str, pa.Array]:
        parents = pa.array(self.parents, pa.string())
        return {
            "_dlt_root_id": parents, "_dlt_parent_id": parents,
            "_dlt_list_idx": pa.array(self.positions, pa.int64()), "_dlt_id": pa.array(self.ids, pa.string()),
        }


def stored_types(schema: Schema, tables: tuple[str, ...], hints: dict[str, TColumnSchema]) -> dict[str, Columns]:
    """{table: {column: type}} that the stored schema and the stream's hints already fix."""
    out: dict[str, dict[str, str]] = {}
    for table in tables:
        columns = out.setdefault(table, {})
        stored = schema.tables.get(table)
        for name, column in (stored or {}).get("columns", {}).items():
            if column.get("data_type"):
                columns[name] = column["data_type"]
    for name, column in hints.items():
        if column.get("data_type"):
            out[tables[0]].setdefault(name, column["data_type"])
    return {table: column_types(data_types) for table, data_types in out.items()}

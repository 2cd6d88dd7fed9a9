"""What the JSON lane (json_lane.py) tells Arrow's JSON reader to expect, learned from the Columnizer.

The schema is built only from records the Columnizer (columnar.py) took: each key it turned into a
column, typed as that column already is; a key whose column dlt does not type yet, or the usual
way owns, is read as null, so any value there makes the reader refuse the page. A key the
Columnizer never took is not declared at all: a page with it is refused too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from .column_plans import CHILD, CUSTOM, ID, NEVER, PY_TYPE, STAMP, Columns, NotColumnar
from .columnar import Columnizer
from .schema import ATTRIBUTE_TYPES

ARROW_OF: dict[object, pa.DataType] = {
    str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_(), STAMP: pa.int64(),
}
Kinds = dict[type, int]  # the JSON kinds a key was seen with, and how often


@dataclass
class Seen:
    """The keys of the records the Columnizer took, by where they sit in a record."""

    top: dict[str, Kinds] = field(default_factory=dict)
    nested: dict[str, dict[str, Kinds]] = field(default_factory=dict)  # object key -> its keys
    custom: dict[str, Kinds] = field(default_factory=dict)
    envelope: dict[str, dict[str, Kinds]] = field(default_factory=dict)  # embedded list -> envelope keys
    items: dict[str, dict[str, Kinds]] = field(default_factory=dict)  # embedded list -> element keys
    changed: bool = False  # a key or kind noted since the last plan

    def learn(self, raw: Mapping[str, Any], children: Mapping[str, tuple[str, ...]]) -> None:
        """Note the keys and kinds of a record the Columnizer turned into rows (`children`: its
        embedded lists and the keys their envelopes may hold them under)."""
        for key, value in raw.items():
            kind = type(value)
            self._note(self.top, key, kind)
            if kind is not dict:
                continue
            if key == "custom_attributes":
                for inner, inner_value in value.items():
                    self._note(self.custom, inner, type(inner_value))
            elif key in children:
                envelope = self.envelope.setdefault(key, {})
                items = self.items.setdefault(key, {})
                list_keys = (*children[key], "data")
                for inner, inner_value in value.items():
                    self._note(envelope, inner, type(inner_value))
                    if inner in list_keys and type(inner_value) is list:
                        for item in inner_value:
                            if type(item) is dict:
                                for item_key, item_value in item.items():
                                    self._note(items, item_key, type(item_value))
            else:
                nested = self.nested.setdefault(key, {})
                for inner, inner_value in value.items():
                    self._note(nested, inner, type(inner_value))

    def _note(self, kinds: dict[str, Kinds], key: str, kind: type) -> None:
        counts = kinds.get(key)
        if counts is None:
            counts = kinds[key] = {}
        if kind not in counts:
            self.changed = True
            counts[kind] = 0
        counts[kind] += 1


@dataclass
class Column:
    """One value of a record that becomes a column: where the reader finds it, and how it is kept."""

    key: str
    column: str
    kind: object  # str, int, float, bool, STAMP; or `ID` (text, whatever the JSON holds)


@dataclass
class Child:
    """One embedded list: its envelope's counts kept on the parent row, its elements' columns."""

    field: str
    table: str
    list_key: str  # the envelope's key of the list (`data`; `tags` in a company's `tags`)
    extras: list[Column]
    items: list[Column]


@dataclass
class Plan:
    """The explicit schema given to the reader, and what each of its fields becomes."""

    schema: pa.Schema
    top: list[Column]
    nested: dict[str, list[Column]]
    custom: list[Column]
    children: list[Child]


def compile_plan(seen: Seen, columnizer: Columnizer) -> Plan:
    """The reader's schema from what the Columnizer took, each field typed as its column is."""
    layout = columnizer.layout
    root = layout.columns(layout.root)
    fields: list[pa.Field] = []
    top: list[Column] = []
    nested: dict[str, list[Column]] = {}
    custom: list[Column] = []
    children: list[Child] = []
    for key, kinds in seen.top.items():
        try:
            column, how, stamp = columnizer.key_plan(key)
        except NotColumnar:
            continue  # never declared: a page with it is refused
        kind = _most(kinds)
        if how == CUSTOM:
            custom, struct = _custom(seen, columnizer, root)
            fields.append(pa.field(key, struct))
        elif how == CHILD:
            child, struct = _child(seen, columnizer, key)
            children.append(child)
            fields.append(pa.field(key, struct))
        elif kind is dict:
            nested[key], struct = _nested(seen, columnizer, key, root)
            fields.append(pa.field(key, struct))
        elif kind is list:
            fields.append(pa.field(key, pa.list_(pa.null())))  # the Columnizer takes empty lists only
        elif how == ID:  # text, read as the JSON has it (an integer id cast to text)
            read_as = ARROW_OF[kind] if kind in (str, int) and _declared(root.get(column), str) else pa.null()
            if read_as != pa.null():
                top.append(Column(key, column, ID))
            fields.append(pa.field(key, read_as))
        else:
            _declare(fields, top, key, column, _declared(root.get(column), STAMP if stamp else kind))
    return Plan(pa.schema([pa.field("d", pa.list_(pa.struct(fields)))]), top, nested, custom, children)


def _nested(seen: Seen, columnizer: Columnizer, key: str, root: Columns) -> tuple[list[Column], pa.StructType]:
    """A nested object's keys, as the Columnizer flattens them (`a__b`)."""
    columns: list[Column] = []
    fields: list[pa.Field] = []
    for inner, kinds in seen.nested.get(key, {}).items():
        try:
            column, stamp = columnizer.nested_plan(key, inner)
        except NotColumnar:
            continue
        _declare(fields, columns, inner, column, _declared(root.get(column), STAMP if stamp else _most(kinds)))
    return columns, pa.struct(fields)


def _custom(seen: Seen, columnizer: Columnizer, root: Columns) -> tuple[list[Column], pa.StructType]:
    """Catalogued attributes, read as their catalogued type when their column has it (what the
    Columnizer's plans take); any other attribute is not declared."""
    catalogue = columnizer.custom
    columns: list[Column] = []
    fields: list[pa.Field] = []
    for name in seen.custom:
        column = catalogue.columns.get(name)
        if column is None or columnizer.layout.normalize(column) != column:
            continue
        want = PY_TYPE.get(ATTRIBUTE_TYPES.get(catalogue[name], "text"))
        _declare(fields, columns, name, column, want if want in ARROW_OF and root.get(column, want) is want else None)
    return columns, pa.struct(fields)


def _child(seen: Seen, columnizer: Columnizer, key: str) -> tuple[Child, pa.StructType]:
    """An embedded list's envelope: its counts (kept on the parent row), its other plain keys (not
    kept), and its list of elements, each key of an element as its child table's column."""
    layout, table = columnizer.layout, columnizer.child_tables[key]
    root, columns = layout.columns(layout.root), layout.columns(table)
    extras: list[Column] = []
    items: list[Column] = []
    fields: list[pa.Field] = []
    item_fields: list[pa.Field] = []
    extra_columns = dict(columnizer.extra_columns(key))
    envelope = seen.envelope.get(key, {})
    # the list the Columnizer reads: under the first of the shape's keys, then `data`, that holds one
    list_key = next((k for k in (*columnizer.child_fields[key], "data") if _most(envelope.get(k, {})) is list), "data")
    for inner, kinds in envelope.items():
        kind = _most(kinds)
        if inner in extra_columns:
            _declare(fields, extras, inner, extra_columns[inner], _declared(root.get(extra_columns[inner]), kind))
        elif inner != list_key and (kind in ARROW_OF or kind is type(None)):  # `type`, `url`: not kept
            fields.append(pa.field(inner, ARROW_OF.get(kind, pa.null())))
    for inner, kinds in seen.items.get(key, {}).items():
        kind = _most(kinds)
        if kind in (dict, list):
            continue  # flattened or refused by the Columnizer: never declared
        try:
            column, stamp = columnizer.child_plan(table, inner)
        except NotColumnar:
            continue
        _declare(item_fields, items, inner, column, _declared(columns.get(column), STAMP if stamp else kind))
    fields.append(pa.field(list_key, pa.list_(pa.struct(item_fields))))
    return Child(key, table, list_key, extras, items), pa.struct(fields)


def _declare(fields: list[pa.Field], columns: list[Column], key: str, column: str, declared: object | None) -> None:
    """`key` read as `declared` into `column`; as null when not declared (any value refuses the page)."""
    if declared is None:
        fields.append(pa.field(key, pa.null()))
        return
    columns.append(Column(key, column, declared))
    fields.append(pa.field(key, ARROW_OF[declared]))


def _most(kinds: Kinds) -> type:
    """The kind a key has most often besides null (null when it never had another)."""
    others = {k: n for k, n in kinds.items() if k is not type(None)}
    return max(others, key=others.__getitem__) if others else type(None)


def _declared(column: object, kind: object) -> object | None:
    """The kind a field is read as: its column's type, when values of `kind` go there unchanged
    (an integer into a double column: converted, as the Columnizer does); None: not declared."""
    if column is None or column is NEVER or kind is type(None):
        return None  # a column dlt does not have typed yet, or the usual way's: values refused
    if column is kind or (column is float and kind is int):
        return column
    return None

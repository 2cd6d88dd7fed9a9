"""What the fast path (columnar.py) checks a value against, and the plans it works out once.

A column's type is the Python type its values have here (`str`, `bool`, `int`, `float`; `_STAMP`
for timestamps, kept as int Unix seconds until Arrow types them; `_NEVER` for a column the fast
path does not write, such as `json`), fixed by the stored schema, the hints, or the first value.
A plan says, for one key order and set of value types, which values go to which columns and what
is left to check per record (timestamps, bigint range, ids to text).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dlt.common.schema.detections import is_iso_timestamp

from .schema import BIGINT_BOUND, LARGEST_SECONDS

STAMP = object()  # the "type" of a timestamp column: its values are int Unix seconds, typed in Arrow
NEVER = object()  # the type of a column the fast path never writes (json, decimal, ...)
PY_TYPE: dict[str, object] = {"text": str, "bool": bool, "bigint": int, "double": float, "timestamp": STAMP}
DATA_TYPE: dict[object, str] = {py: dlt_type for dlt_type, py in PY_TYPE.items()}
SCALAR, ID, CHILD, CUSTOM = range(4)  # how a top-level key is taken

Row = dict[str, Any]
Columns = dict[str, object]  # column -> the Python type its values have (or STAMP, NEVER)


class NotColumnar(Exception):
    """This record goes the usual way (dict shaping and dlt's normalizer)."""


def column_types(data_types: Mapping[str, str]) -> Columns:
    """{column: dlt data type} as the fast path checks values against them."""
    return {name: PY_TYPE.get(data_type, NEVER) for name, data_type in data_types.items()}


def learn(columns: Columns, column: str, kind: object, value: object) -> object:
    """The type a new column takes from its first value, as dlt infers it. A text dlt's
    `iso_timestamp` detection would type as a timestamp leaves the column to the usual way for
    the rest of the run (dlt then types it from this value, as it would without the fast path)."""
    if kind is str and is_iso_timestamp(str, value):
        columns[column] = NEVER
        raise NotColumnar(f"{column}: a text dlt detects as a timestamp")
    columns[column] = kind
    return kind


def put(row: Row, columns: Columns, column: str, value: object) -> None:
    """`row[column] = value` when the value has its column's type (learned from the first one);
    an int in a double column is taken as dlt coerces it, anything else is NotColumnar."""
    kind = type(value)
    if kind is int:
        _in_bigint(column, value)  # type: ignore[arg-type]
    want = columns.get(column)
    if want is not kind:
        if want is None and kind in DATA_TYPE:
            learn(columns, column, kind, value)
        elif want is float and kind is int:
            value = float(value)  # type: ignore[arg-type]
        else:
            raise NotColumnar(f"{column}: a {kind.__name__}")
    row[column] = value


def put_stamp(row: Row, columns: Columns, column: str, value: object) -> None:
    """An Intercom timestamp held as whole seconds, as schema.to_datetime reads it (0: no time);
    any other form (float, text, milliseconds) is NotColumnar."""
    want = columns.get(column)
    if want is not STAMP:
        if want is not None:
            raise NotColumnar(f"{column}: a timestamp in another column")
        columns[column] = STAMP
    if type(value) is not int or not 0 <= value <= LARGEST_SECONDS:  # type: ignore[operator]
        raise NotColumnar(f"{column}: timestamp {value!r} is not whole seconds")
    if value:
        row[column] = value
    else:
        row.pop(column, None)


@dataclass
class Layout:
    """What the fast path knows of one stream's tables: each column's type (from the stored schema,
    the hints, and the records taken so far) and dlt's name for each key."""

    root: str
    types: dict[str, Columns]  # table -> column -> type
    normalize: Callable[[str], str]  # a key as dlt's normalizer names it (the destination's naming convention)
    join: Callable[..., str]  # a path of names (`a__b`, shortened when too long)

    def columns(self, table: str) -> Columns:
        return self.types.setdefault(table, {})

    def name(self, key: str) -> str:
        """dlt's column name of a top-level key; a key it would rename is not ours to take."""
        if not key or key.isspace() or key.startswith("_dlt") or self.normalize(key) != key:
            raise NotColumnar(f"key {key!r} is renamed by the naming convention or is dlt's own")
        return key

    def child_name(self, key: str) -> str:
        """dlt's column name of a child row's key, flattened by schema.py (`a__b`) before dlt sees it."""
        if not key or key.isspace() or key.startswith("_dlt"):
            raise NotColumnar(f"key {key!r} is named by dlt itself")
        return self.normalize(key)

    def path(self, *keys: str) -> str:
        """dlt's column (or table) name of a nested path."""
        if any(not key or key.isspace() for key in keys):
            raise NotColumnar("an empty key")
        return self.join(*(self.normalize(k) for k in keys))


MAX_PLANS = 10_000  # record shapes remembered (keys present, value types): ~1,500 for 40,000 emulator contacts


@dataclass(frozen=True)
class RecordPlan:
    """What a record with one key order and value types becomes, worked out once (`_compile`)."""

    values: ValuesPlan  # its own plain values
    lists: tuple[int, ...]  # value positions that must hold empty lists
    custom: int | None  # the position of custom_attributes (a dict)
    envelopes: tuple[tuple[int, str], ...]  # embedded lists, in the shape's order
    nested: tuple[tuple[int, str], ...]  # nested objects, in the order dlt flattens them


@dataclass(frozen=True)
class ValuesPlan:
    """Plain values of one key order and value types into their columns (a record's own, its
    custom attributes, a child element): what is checked per record, worked out once."""

    take: Callable[[tuple[Any, ...]], tuple[Any, ...]]  # the values, in key order
    names: tuple[str, ...]  # their columns
    stamps: tuple[str, ...] = ()  # timestamp columns: whole seconds checked per record (0: no time)
    ints: tuple[str, ...] = ()  # bigint columns: range checked per record
    nones: tuple[str, ...] = ()  # columns a null value empties
    ids: tuple[str, ...] = ()  # columns given an int id: stored as text
    floats: tuple[str, ...] = ()  # double columns given an int: coerced as dlt does

    def put(self, row: Row, values: tuple[Any, ...]) -> None:
        for column in self.nones:
            row.pop(column, None)
        row.update(zip(self.names, self.take(values), strict=True))
        for column in self.ids:
            row[column] = str(_in_bigint(column, row[column]))
        for column in self.stamps:
            stamp = row[column]
            if not 0 < stamp <= LARGEST_SECONDS:
                if stamp:
                    raise NotColumnar(f"{column}: timestamp {stamp!r} is not whole seconds")
                del row[column]
        for column in self.ints:
            _in_bigint(column, row[column])
        for column in self.floats:
            row[column] = float(_in_bigint(column, row[column]))


def _in_bigint(column: str, value: int) -> int:
    """`value`; NotColumnar beyond a bigint, in any column: the usual way keeps its record aside
    (schema.BeyondBigint), and both ways must agree."""
    if not -BIGINT_BOUND <= value < BIGINT_BOUND:
        raise NotColumnar(f"{column}: beyond bigint")
    return value


def taker(indexes: list[int]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    if len(indexes) > 1:
        return operator.itemgetter(*indexes)  # type: ignore[return-value]
    if indexes:
        only = indexes[0]
        return lambda values: (values[only],)
    return lambda values: ()

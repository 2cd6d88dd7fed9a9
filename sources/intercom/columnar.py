"""The fast path of contacts and companies: each record walked once into the flat rows dlt would make.

Why (issue 17): dlt's per-row normalize (flatten, coerce, infer) was about half of a contacts
sync's CPU and our dict shaping a fifth. Here each decoded record becomes, in one pass, a row of
its table and rows of its child tables (one per embedded list), with dlt's column names, its
`_dlt_*` linkage and the types the columns already have; arrow_items.py turns a batch of them into
Arrow tables that dlt writes as they are.

Exact by construction: a record is taken only when every value fits what `schema.shape_record`
followed by dlt's normalizer would make of it. A value of another type than its column's, a float
or text timestamp, a key dlt's naming would rename, a list or a JSON column where none is expected:
the whole record goes the usual way, which decides coercions and variant columns as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .column_plans import (
    CHILD,
    CUSTOM,
    DATA_TYPE,
    ID,
    MAX_PLANS,
    NEVER,
    PY_TYPE,
    SCALAR,
    STAMP,
    Columns,
    Layout,
    NotColumnar,
    RecordPlan,
    Row,
    ValuesPlan,
    learn,
    put,
    put_stamp,
    taker,
)
from .schema import (
    ATTRIBUTE_TYPES,
    CustomTypes,
    RecordShape,
    coerce_custom,
    custom_column_name,
    envelope_items,
    is_timestamp_key,
)


@dataclass
class RecordRows:
    """One record as rows: its own (without `_dlt_*` columns) and its children's, by child table."""

    row: Row
    children: list[tuple[str, list[Row]]]


class Columnizer:
    """`schema.shape_record` and dlt's flattening, in one pass, for the records whose values fit.

    What a record of one key order and value types becomes is worked out once (`_compile`, and for
    its custom attributes and child elements `_compile_custom`, `_compile_item`), so a usual
    record costs a few dict lookups, its timestamps' and integers' range checks and the copies.
    """

    def __init__(self, shape: RecordShape, custom: CustomTypes, layout: Layout) -> None:
        self.shape = shape
        self.custom = custom
        self.layout = layout
        self.child_fields = {name: keys for name, keys in shape.children}
        self.child_tables = {name: layout.path(layout.root, name) for name, _ in shape.children}
        self.child_order = {name: i for i, (name, _) in enumerate(shape.children)}
        self.root_columns = layout.columns(layout.root)
        self._keys: dict[str, tuple[str, int, bool]] = {}
        self._nested_keys: dict[tuple[str, str], tuple[str, bool]] = {}
        self._child_keys: dict[tuple[str, str, str], tuple[str, bool]] = {}
        self._customs: dict[str, tuple[str, str | None]] = {}
        self._extras: dict[str, tuple[tuple[str, str], ...]] = {}
        self._items: dict[tuple[str, tuple[str, ...], tuple[type, ...]], ValuesPlan | None] = {}
        self._custom_plans: dict[tuple[tuple[str, ...], tuple[type, ...]], ValuesPlan | None] = {}
        self._records: dict[tuple[tuple[str, ...], tuple[type, ...]], RecordPlan | str] = {}

    def rows(self, raw: Mapping[str, Any]) -> RecordRows:
        """The rows of one record; NotColumnar when any value does not fit."""
        values = tuple(raw.values())
        signature = (tuple(raw), tuple(map(type, values)))
        plan = self._records.get(signature) or self._record_plan(signature, values)
        if type(plan) is str:
            raise NotColumnar(plan)
        assert isinstance(plan, RecordPlan)
        row: Row = {}
        plan.values.put(row, values)
        for index in plan.lists:
            if values[index]:
                raise NotColumnar("a list outside the embedded lists")
        parent_id = row.get("id")
        if plan.custom is not None:
            self._custom(row, raw, values[plan.custom])
        children: list[tuple[str, list[Row]]] = []
        for index, key in plan.envelopes:
            items, extras = _envelope(values[index], self.child_fields[key])
            if items:
                children.append(self._children(key, items, parent_id))
            for extra, column in self._extras.get(key) or self._extra_columns(key):
                value = extras.get(extra)
                if value is not None:
                    put(row, self.root_columns, column, value)
        for index, key in plan.nested:
            self._nested(row, key, values[index])
        return RecordRows(row, children)

    def _record_plan(self, signature: tuple[tuple[str, ...], tuple[type, ...]], values: tuple[Any, ...]) -> RecordPlan | str:
        """The plan of one key order and value types, remembered (a refusal too: the reason)."""
        if len(self._records) >= MAX_PLANS:
            self._records.clear()
        try:
            plan: RecordPlan | str = self._compile(*signature, values)
        except NotColumnar as exc:
            plan = str(exc)
        self._records[signature] = plan
        return plan

    def _compile(self, keys: tuple[str, ...], kinds: tuple[type, ...], values: tuple[Any, ...]) -> RecordPlan:
        """What `schema.shape_record` then dlt make of a record with these keys and value types
        (`values`: the first such record's, which give a new column its type)."""
        columns = self.root_columns
        indexes: list[int] = []
        names: list[str] = []
        ids, stamps, ints, floats, lists = [], [], [], [], []
        custom: int | None = None
        envelopes: list[tuple[int, str]] = []
        nested: list[tuple[int, str]] = []
        for index, (key, kind) in enumerate(zip(keys, kinds, strict=True)):
            if kind is type(None):
                continue
            column, how, stamp = self._keys.get(key) or self._key_plan(key)
            if how == CUSTOM:
                if kind is dict:  # anything else is dropped, as lift_custom_attributes does
                    custom = index
                continue
            if how == CHILD:
                envelopes.append((index, key))
                continue
            if how == SCALAR and kind is dict:
                nested.append((index, key))
                continue
            if how == SCALAR and kind is list:
                lists.append(index)
                continue
            if how == ID:
                if kind not in (str, int):
                    raise NotColumnar(f"{key}: a {kind.__name__} id")
                if kind is int:
                    ids.append(column)
                kind = str
            elif stamp:
                if kind is not int:
                    raise NotColumnar(f"{key}: timestamp not whole seconds")
                kind = STAMP  # type: ignore[assignment]
            want = columns.get(column)
            if want is None and kind in DATA_TYPE:
                want = learn(columns, column, kind, values[index])
            if want is float and kind is int:
                floats.append(column)
            elif want is not kind:
                raise NotColumnar(f"{column}: a {getattr(kind, '__name__', 'timestamp')} value in another column")
            elif kind is int:
                ints.append(column)
            if how == SCALAR and stamp:
                stamps.append(column)
            indexes.append(index)
            names.append(column)
        envelopes.sort(key=lambda envelope: self.child_order[envelope[1]])
        own = ValuesPlan(taker(indexes), tuple(names), tuple(stamps), tuple(ints), (), tuple(ids), tuple(floats))
        return RecordPlan(
            own, tuple(lists), custom, tuple(envelopes),
            tuple(reversed(nested)),  # dlt flattens objects after the row's own keys, from a stack: last first
        )

    def key_plan(self, key: str) -> tuple[str, int, bool]:
        """(column, how, is a timestamp) of a top-level key (json_lane.py reads by it)."""
        return self._keys.get(key) or self._key_plan(key)

    def nested_plan(self, parent: str, key: str) -> tuple[str, bool]:
        """(column, is a timestamp) of a key of a nested object."""
        return self._nested_keys.get((parent, key)) or (self.layout.path(parent, key), is_timestamp_key(key))

    def child_plan(self, table: str, key: str) -> tuple[str, bool]:
        """(column, is a timestamp) of a key of an embedded list's element."""
        return self._child_plan(table, self.layout.columns(table), "", key)

    def extra_columns(self, key: str) -> tuple[tuple[str, str], ...]:
        """The envelope counts of an embedded list kept on the parent row: (key, column)."""
        return self._extras.get(key) or self._extra_columns(key)

    def _key_plan(self, key: str) -> tuple[str, int, bool]:
        """(column, how, is a timestamp) of a top-level key; NotColumnar (not remembered) when dlt
        would keep its value whole in a `json` column or name it otherwise."""
        if key == "custom_attributes":  # lifted into custom_* columns (schema.lift_custom_attributes)
            plan = ("", CUSTOM, False)
        else:
            column = key if key in self.child_fields else self.layout.name(key)
            if self.root_columns.get(column) is NEVER:
                raise NotColumnar(f"{key}: a column the fast path does not write (json)")
            how = CHILD if key in self.child_fields else ID if key in self.shape.text_ids else SCALAR
            plan = (column, how, how == SCALAR and is_timestamp_key(key))
        self._keys[key] = plan
        return plan

    def _nested(self, row: Row, parent: str, value: Mapping[str, Any]) -> None:
        """A nested object flattened into `a__b` columns, as dlt does at the source's nesting level
        (`max_table_nesting=1`: the first level is flattened, anything deeper kept whole)."""
        columns, plans = self.root_columns, self._nested_keys
        for key, inner in value.items():
            if inner is None:
                continue
            plan = plans.get((parent, key))
            if plan is None:
                column = self.layout.path(parent, key)
                if columns.get(column) is NEVER:
                    raise NotColumnar(f"{column}: a column the fast path does not write (json)")
                plan = plans[(parent, key)] = (column, is_timestamp_key(key))
            if type(inner) in (dict, list):  # below the nesting level: dlt keeps it whole as JSON
                raise NotColumnar(f"{parent}.{key}: nested below the first level")
            if plan[1]:
                put_stamp(row, columns, plan[0], inner)
            else:
                put(row, columns, plan[0], inner)

    def leave_to_usual(self, row: Mapping[str, Any]) -> None:
        """The columns a record shaped the usual way (`row`, from `schema.shape_record`) brings first
        stay the usual way's for the rest of the run: dlt types them from that record, in record
        order, as it would without the fast path (an Arrow table would otherwise fix them first)."""
        root, layout = self.root_columns, self.layout
        for key, value in row.items():
            if value is None:
                continue
            if type(value) is dict:
                for inner_key, inner in value.items():
                    if inner is not None:
                        _leave(root, layout.path, key, inner_key)
            elif type(value) is list and key in self.child_tables:
                columns = layout.columns(self.child_tables[key])
                for item in value:
                    for item_key, inner in (item.items() if type(item) is dict else ()):
                        if inner is not None:
                            _leave(columns, layout.child_name, item_key)
            elif type(value) is not list:
                _leave(root, layout.normalize, key)

    def _extra_columns(self, key: str) -> tuple[tuple[str, str], ...]:
        """The envelope counts kept as parent columns (`tags_total_count`, `tags_has_more`)."""
        extras = tuple((extra, self.layout.name(f"{key}_{extra}")) for extra in ("total_count", "has_more"))
        self._extras[key] = extras
        return extras

    def _custom(self, row: Row, raw: Mapping[str, Any], custom: dict[Any, Any]) -> None:
        """`schema.lift_custom_attributes`: custom attributes as typed `custom_*` columns."""
        values = tuple(custom.values())
        signature = (tuple(custom), tuple(map(type, values)))
        plan = self._custom_plans.get(signature, False)
        if plan is False:
            plan = self._custom_plans[signature] = self._compile_custom(*signature)
        if plan is not None:
            plan.put(row, values)
            return
        self._custom_each(row, raw, custom)

    def _compile_custom(self, keys: tuple[str, ...], kinds: tuple[type, ...]) -> ValuesPlan | None:
        """The plan of custom attributes that are all catalogued and of their column's type; None:
        each is worked out one by one (`_custom_each`)."""
        catalogue, columns = self.custom, self.root_columns
        names, indexes, nones, stamps, ints = [], [], [], [], []
        for index, (key, kind) in enumerate(zip(keys, kinds, strict=True)):
            column = catalogue.columns.get(key) if type(key) is str else None
            if column is None or self.layout.normalize(column) != column:
                return None
            if kind is type(None):
                nones.append(column)
                continue
            want = PY_TYPE.get(ATTRIBUTE_TYPES.get(catalogue[key], "text"))
            stamp = want is STAMP
            if (kind is not int if stamp else kind is not want) or columns.get(column, want) is not want:
                return None
            (stamps if stamp else ints if kind is int else []).append(column)
            names.append(column)
            indexes.append(index)
        return ValuesPlan(taker(indexes), tuple(names), tuple(stamps), tuple(ints), tuple(nones))

    def _custom_each(self, row: Row, raw: Mapping[str, Any], custom: dict[Any, Any]) -> None:
        columns, catalogue = self.root_columns, self.custom
        lifted: set[str] = set()
        for key, value in custom.items():
            name = str(key)
            plan = self._customs.get(name)
            if plan is None:
                column = catalogue.columns.get(name)
                if column is None:  # not catalogued: its column must be free (never an overwrite)
                    column = custom_column_name(name)
                    if column in catalogue.taken or column in lifted or raw.get(column) is not None:
                        raise NotColumnar(f"custom attribute {name!r} shares a column")
                column = self.layout.name(column)
                plan = (column, catalogue.get(name))  # the Intercom data type, None when not catalogued
                if name in catalogue.columns:
                    self._customs[name] = plan
            lifted.add(plan[0])
            if value is None:
                row.pop(plan[0], None)
            elif plan[1] == "date":
                put_stamp(row, columns, plan[0], value)
            else:
                put(row, columns, plan[0], coerce_custom(value, plan[1]))

    def _children(self, key: str, items: list[dict[str, Any]], parent_id: object) -> tuple[str, list[Row]]:
        """The rows of one embedded list: `{parent_key: id, **flat(item)}`, names as dlt makes them."""
        table = self.child_tables[key]
        columns = self.layout.columns(table)
        plans = self._child_keys
        first: Row = {}
        if parent_id is not None:
            put(first, columns, self._child_plan(table, columns, "", self.shape.parent_key)[0], parent_id)
        rows = []
        compiled = self._items
        for item in items:
            values = tuple(item.values())
            signature = (table, tuple(item), tuple(map(type, values)))
            plan = compiled.get(signature, False)
            if plan is False:
                plan = compiled[signature] = self._compile_item(table, columns, signature[1], signature[2], values)
            row = first.copy()
            if plan is not None:
                plan.put(row, values)
                rows.append(row)
                continue
            for item_key, value in item.items():
                plan = plans.get((table, "", item_key)) or self._child_plan(table, columns, "", item_key)
                kind = type(value)
                if kind is str and not plan[1] and columns.get(plan[0]) is str:
                    row[plan[0]] = value  # the common case, checked inline
                elif kind is dict:
                    self._flat_child(row, table, columns, f"{item_key}__", value)
                elif kind is list:  # a child row is at the nesting level: dlt keeps the list as JSON
                    raise NotColumnar(f"{table}.{item_key}: a list")
                elif value is None:
                    row.pop(plan[0], None)
                elif plan[1]:
                    put_stamp(row, columns, plan[0], value)
                else:
                    put(row, columns, plan[0], value)
            rows.append(row)
        return table, rows

    def _compile_item(
        self, table: str, columns: Columns, keys: tuple[str, ...], kinds: tuple[type, ...], values: tuple[Any, ...],
    ) -> ValuesPlan | None:
        """The plan of a child element whose values are all plain and of their column's type; None:
        worked out one by one (objects, lists, nulls, a value to coerce)."""
        names, indexes, stamps, ints = [], [], [], []
        for index, (key, kind) in enumerate(zip(keys, kinds, strict=True)):
            if kind not in (str, int, bool, float):
                return None
            column, stamp = self._child_plan(table, columns, "", key)
            want = STAMP if stamp else kind
            if stamp and kind is not int:
                return None
            have = columns.get(column)
            if have is None:
                try:
                    have = learn(columns, column, want, values[index])
                except NotColumnar:
                    return None
            if have is not want:
                return None
            (stamps if stamp else ints if kind is int else []).append(column)
            names.append(column)
            indexes.append(index)
        return ValuesPlan(taker(indexes), tuple(names), tuple(stamps), tuple(ints))

    def _child_plan(self, table: str, columns: Columns, prefix: str, key: str) -> tuple[str, bool]:
        plan = self._child_keys.get((table, prefix, key))
        if plan is None:
            column = self.layout.child_name(prefix + key)
            if columns.get(column) is NEVER:
                raise NotColumnar(f"{table}.{column}: a column the fast path does not write (json)")
            plan = self._child_keys[(table, prefix, key)] = (column, is_timestamp_key(key))
        return plan

    def _flat_child(self, row: Row, table: str, columns: Columns, prefix: str, item: Mapping[str, Any]) -> None:
        for key, value in item.items():
            kind = type(value)
            if kind is dict:
                self._flat_child(row, table, columns, f"{prefix}{key}__", value)
            elif kind is list:  # a child row is at the nesting level: dlt keeps the list as JSON
                raise NotColumnar(f"{table}.{key}: a list")
            else:
                column, stamp = self._child_plan(table, columns, prefix, key)
                if value is None:
                    row.pop(column, None)
                elif stamp:
                    put_stamp(row, columns, column, value)
                else:
                    put(row, columns, column, value)


def _leave(columns: Columns, name: Callable[..., str], *keys: str) -> None:
    """The column `name(*keys)` stays the usual way's unless its type is known already (a key the
    fast path cannot name is never taken by it anyway)."""
    with contextlib.suppress(NotColumnar):
        columns.setdefault(name(*keys), NEVER)


def _envelope(value: object, keys: tuple[str, ...]) -> tuple[list[dict[str, Any]], Mapping[str, Any]]:
    """`schema.envelope_items` without its copies for the usual envelope (`{data: [...], ...}`)."""
    if type(value) is dict:
        for key in (*keys, "data"):
            items = value.get(key)
            if type(items) is list:
                if key in ("total_count", "has_more"):
                    break
                return [item for item in items if type(item) is dict], value
    return envelope_items(value, *keys)

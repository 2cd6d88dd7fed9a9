"""Intercom's search query DSL (POST /contacts|conversations|tickets/search) as a predicate compiler.

Why its own module: the date semantics here are the trap that loses data, so they must be exact
and testable without HTTP.

* A query is a single filter ``{field, operator, value}`` or a group ``{operator: AND|OR,
  value: [...]}``. Groups nest at most 2 levels (a group inside a group inside a group is an
  error) and hold at most 15 items each. Violations raise `SearchError` (HTTP 400,
  code ``parameter_invalid``: the spec documents no dedicated code).
* Operators: ``= != IN NIN < <= > >= ~ !~ ^ $`` (the 2.15 SingleFilterSearchRequest enum).
  ``~``/``!~`` are case-insensitive contains, ``^``/``$`` starts/ends with.
* Fields are dotted paths (``custom_attributes.plan_tier``, ``source.author.email``); a path
  crossing a list matches if any element matches (positive operators) or if none does
  (``!=``, ``NIN``, ``!~``). A few documented aliases map to embedded lists (``tag_id``,
  ``tag_ids``, ``contact_ids``, ``teammate_ids``).
* Date fields (standard ``*_at`` timestamps, ``waiting_since``, ``snoozed_until``) compared by
  CALENDAR DAY in the workspace time zone when `day_granular` is on (always for contacts,
  switchable for conversations): ``>`` V from the start of the day after V's day, ``<`` before
  V's day, ``=`` V's whole day; other operators on dates are an error. With day granularity off,
  dates compare to the second and every numeric operator is allowed.
* Sorting: ``sort: {field, order: ascending|descending}``; ties (and the default) go by id.
"""

from __future__ import annotations

import base64
import datetime as dt
import operator
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import orjson

MAX_NESTING = 2
MAX_GROUP_ITEMS = 15
OPERATORS = {"=", "!=", "IN", "NIN", "<", "<=", ">", ">=", "~", "!~", "^", "$"}
DAY_DATE_OPERATORS = {"=", "<", ">"}
NEGATIVE_OPERATORS = {"!=", "NIN", "!~"}
DATE_FIELDS_EXTRA = {"waiting_since", "snoozed_until"}

ALIASES: dict[str, dict[str, str]] = {
    "contacts": {"tag_id": "tags.data.id", "company_id": "companies.data.id"},
    "conversations": {
        "tag_ids": "tags.tags.id",
        "contact_ids": "contacts.contacts.id",
        "teammate_ids": "teammates.admins.id",
    },
    "tickets": {"tag_ids": "tags.tags.id", "contact_ids": "contacts.contacts.id"},
}

Record = dict[str, Any]
Predicate = Callable[[Record], bool]


class SearchError(ValueError):
    """A query Intercom would reject with HTTP 400."""

    def __init__(self, message: str, code: str = "parameter_invalid") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def is_date_field(field: str) -> bool:
    """Standard timestamps are named ``*_at`` (plus two documented exceptions)."""
    leaf = field.rsplit(".", 1)[-1]
    return leaf.endswith("_at") or leaf in DATE_FIELDS_EXTRA


def resolve(record: Any, path: str) -> list[Any]:
    """All values at a dotted path; lists along the way fan out. Missing -> []."""
    current: list[Any] = [record]
    for part in path.split("."):
        nxt: list[Any] = []
        for item in current:
            if isinstance(item, dict):
                if part in item:
                    value = item[part]
                    if isinstance(value, list):
                        nxt.extend(value)
                    else:
                        nxt.append(value)
            elif isinstance(item, list):
                for sub in item:
                    if isinstance(sub, dict) and part in sub:
                        nxt.append(sub[part])
        current = nxt
        if not current:
            return []
    return current


@lru_cache(maxsize=4096)
def day_bounds(ts: int, tz: str) -> tuple[int, int]:
    """[start, end) unix seconds of the calendar day containing `ts` in zone `tz` (DST-safe)."""
    zone = ZoneInfo(tz)
    day = dt.datetime.fromtimestamp(ts, zone).date()
    start = dt.datetime(day.year, day.month, day.day, tzinfo=zone)
    nxt = day + dt.timedelta(days=1)
    end = dt.datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone)
    return int(start.timestamp()), int(end.timestamp())


def _as_int(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise SearchError(f"{field} expects a unix timestamp, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise SearchError(f"{field} expects a unix timestamp, got {value!r}")


def _coerce_scalar(value: Any) -> Any:
    """Normalise record/filter scalars so '42' = 42 and 'true' = True, as Intercom is lenient."""
    if isinstance(value, str):
        low = value.lower()
        if low in ("true", "false"):
            return low == "true"
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return value
    return value


def _eq(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return _coerce_scalar(a) == _coerce_scalar(b)


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def _cmp(a: Any, b: Any, op: str) -> bool:
    if a is None or b is None:
        return False
    try:
        return _ORDER.get(op, operator.ge)(_coerce_scalar(a), _coerce_scalar(b))
    except TypeError:
        return False


def _cmp_str(a: str, b: str, op: str) -> bool:
    return _ORDER.get(op, operator.ge)(a, b)


def _single(flt: dict[str, Any], model: str, timezone: str, day_granular: bool) -> Predicate:
    field = flt.get("field")
    op = flt.get("operator")
    if not isinstance(field, str) or not field:
        raise SearchError("filter is missing a field")
    if op not in OPERATORS:
        raise SearchError(f"operator {op!r} is not supported")
    if "value" not in flt:
        raise SearchError(f"filter on {field} is missing a value")
    value = flt["value"]
    path = ALIASES.get(model, {}).get(field, field)
    if field == "tag_id" and model == "contacts" and op not in ("=", "!="):
        raise SearchError("tag_id supports only = and !=")

    if is_date_field(field):
        if day_granular:
            if op not in DAY_DATE_OPERATORS:
                raise SearchError(f"operator {op} is not supported on date field {field}")
            v = _as_int(value, field)
            start, end = day_bounds(v, timezone)

            def day_test(x: Any) -> bool:
                if x is None or isinstance(x, bool):
                    return False
                try:
                    x = int(x)
                except (TypeError, ValueError):
                    return False
                if op == "=":
                    return start <= x < end
                if op == ">":
                    return x >= end
                return x < start

            return lambda r: any(day_test(x) for x in resolve(r, path))
        if op in ("IN", "NIN"):
            if not isinstance(value, list):
                raise SearchError(f"{op} expects a list value")
            vals = [_as_int(v, field) for v in value]
        elif op in ("~", "!~", "^", "$"):
            raise SearchError(f"operator {op} is not supported on date field {field}")
        else:
            value = _as_int(value, field)

    if op in ("IN", "NIN"):
        if not isinstance(value, list):
            raise SearchError(f"{op} expects a list value")
        vals = list(value)

        def test(x: Any) -> bool:
            return any(_eq(x, v) for v in vals)

    elif op in ("=", "!="):

        def test(x: Any) -> bool:
            return _eq(x, value)

    elif op in ("<", "<=", ">", ">=") and field == "id":
        # Ids compare as strings: tap-intercom pages conversations with `id > ""` (then `id > <last id>`)
        # sorted by id, and Intercom answers it with records.

        def test(x: Any) -> bool:
            return x is not None and _cmp_str(str(x), str(value), op)

    elif op in ("<", "<=", ">", ">="):

        def test(x: Any) -> bool:
            return _cmp(x, value, op)

    else:
        if not isinstance(value, str):
            raise SearchError(f"{op} expects a string value")
        needle = value.lower()

        def test(x: Any) -> bool:
            if not isinstance(x, str):
                return False
            low = x.lower()
            if op in ("~", "!~"):
                return needle in low
            if op == "^":
                return low.startswith(needle)
            return low.endswith(needle)

    if op in NEGATIVE_OPERATORS:

        def negative(r: Record) -> bool:
            found = resolve(r, path)
            if not found:
                # a missing value is "not equal" to anything except an explicit null
                return not (op == "!=" and value is None)
            return not any(test(x) for x in found)

        return negative

    def positive(r: Record) -> bool:
        found = resolve(r, path)
        if not found:
            return value is None and op == "="
        return any(test(x) for x in found)

    return positive


def _compile(node: Any, model: str, timezone: str, day_granular: bool, depth: int) -> Predicate:
    if not isinstance(node, dict):
        raise SearchError("query must be an object")
    if "field" in node:
        return _single(node, model, timezone, day_granular)
    op = node.get("operator")
    items = node.get("value")
    if op not in ("AND", "OR") or not isinstance(items, list):
        raise SearchError("a group needs operator AND|OR and a list value")
    if depth > MAX_NESTING:
        raise SearchError(f"a query may nest at most {MAX_NESTING} levels of filters")
    if len(items) > MAX_GROUP_ITEMS:
        raise SearchError(f"a group may hold at most {MAX_GROUP_ITEMS} filters, got {len(items)}")
    if not items:
        raise SearchError("a group needs at least one filter")
    preds = [_compile(item, model, timezone, day_granular, depth + 1) for item in items]
    if op == "AND":
        return lambda r: all(p(r) for p in preds)
    return lambda r: any(p(r) for p in preds)


def query_fields(query: Any) -> set[str]:
    """Every field name a (valid) query filters on, through groups."""
    if not isinstance(query, dict):
        return set()
    if "field" in query:
        return {str(query["field"])}
    out: set[str] = set()
    for item in query.get("value") or []:
        out |= query_fields(item)
    return out


def compile_query(query: Any, *, model: str, timezone: str, day_granular: bool) -> Predicate:
    """Validate a search query and return a predicate over API-shaped records."""
    if query is None:
        raise SearchError("query is required")
    return _compile(query, model, timezone, day_granular, depth=1)


# ---------------------------------------------------------------- sorting and cursors


def sort_value(record: Record, field: str) -> tuple[int, Any]:
    """A totally ordered key for any scalar: None < numbers < strings."""
    found = resolve(record, field)
    v = found[0] if found else None
    if v is None:
        return (0, 0)
    if isinstance(v, bool):
        return (1, int(v))
    if isinstance(v, (int, float)):
        return (1, v)
    if isinstance(v, str):
        return (2, v)
    return (3, orjson.dumps(v).decode())


def parse_sort(sort: Any, default_field: str | None) -> tuple[str | None, bool]:
    """(field, descending) from a `sort` object; unknown orders are a 400 like Intercom's."""
    if sort is None:
        return default_field, False
    if not isinstance(sort, dict) or not isinstance(sort.get("field"), str):
        raise SearchError("sort needs a field")
    order = sort.get("order", "ascending")
    if order not in ("ascending", "descending", "asc", "desc"):
        raise SearchError(f"sort order {order!r} must be ascending or descending")
    return sort["field"], order in ("descending", "desc")


def record_key(record: Record, field: str | None) -> tuple[Any, ...]:
    """Sort key: the sort field's value, then the id (ids of one model share a shape)."""
    rid = str(record.get("id", ""))
    id_key = (len(rid), rid)  # numeric-string ids order numerically
    if field is None:
        return ((0, 0), id_key)
    return (sort_value(record, field), id_key)


def encode_cursor(page: int, key: tuple[Any, ...]) -> str:
    """Opaque, forward-only cursor: the next page number and the last key served."""
    raw = orjson.dumps([page, key])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, tuple[Any, ...]]:
    """Inverse of `encode_cursor`; garbage is a 400."""
    try:
        pad = "=" * (-len(cursor) % 4)
        page, key = orjson.loads(base64.urlsafe_b64decode(cursor + pad))
        return int(page), _tuplify(key)
    except Exception as exc:  # noqa: BLE001 - any decoding problem means an invalid cursor
        raise SearchError("starting_after is not a valid cursor") from exc


def _tuplify(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    return value


def filter_records(records: Iterable[Record], predicate: Predicate) -> list[Record]:
    """Apply a compiled predicate."""
    return [r for r in records if predicate(r)]

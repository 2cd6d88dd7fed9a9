"""Record shaping and column hints: what each Intercom object looks like as rows.

Shaping functions are pure (dict in, dict out, no I/O, no dlt) so a later switch to Arrow tables
can reuse them. They:
* turn every Intercom timestamp (`*_at`, `waiting_since`, `snoozed_until`, date custom
  attributes; ints or numeric strings; 0 / "" / None -> None) into an aware UTC `datetime`;
* turn envelope lists (`{type: list, data: [...]}`, `{type: tag.list, tags: [...]}`, ...) into
  plain lists whose elements carry the parent id, which dlt loads as child tables
  (`contacts__tags` with `contact_id`, `companies__segments` with `company_id`, ...);
* lift `custom_attributes` into `custom_<snake_name>` columns typed from GET /data_attributes.

`admin_assignee_id` / `team_assignee_id` are kept as integers (bigint), as Intercom sends them;
every other id is text.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from dlt.common.schema.typing import TColumnSchema

TIMESTAMP_KEYS = frozenset({"waiting_since", "snoozed_until"})
ATTRIBUTE_TYPES: dict[str, str] = {
    "string": "text",
    "integer": "bigint",
    "float": "double",
    "boolean": "bool",
    "date": "timestamp",
}
_SNAKE = re.compile(r"[^0-9a-zA-Z]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def is_timestamp_key(key: str) -> bool:
    return key.endswith("_at") or key in TIMESTAMP_KEYS


_TIMESTAMP_KEY_CACHE: dict[str, bool] = {}  # the same few hundred keys repeat on every record
_SCALAR_TYPES = frozenset({str, int, float, bool})
BIGINT_BOUND = 2**63  # a SQL bigint holds -2**63 .. 2**63 - 1


class BeyondBigint(ValueError):
    """An integer outside a SQL bigint: the record is kept aside (`rejects.py`).

    Why: JSON numbers have no bound and orjson reads up to 2**64 - 1 as an int, but no bigint
    column holds it, and dlt fails the whole load on it (DuckDB's normalize: "Python int too large
    to convert to C long"; Postgres: "bigint out of range"), losing every sibling record.
    """

    def __init__(self, key: object, value: float) -> None:
        super().__init__(f"{key!r} is {value!r}, beyond a 64-bit integer: no warehouse column holds it")


def check_bigint(key: object, value: int) -> int:
    """`value` when a bigint holds it; else BeyondBigint."""
    if not -BIGINT_BOUND <= value < BIGINT_BOUND:
        raise BeyondBigint(key, value)
    return value


def to_datetime(value: Any) -> datetime | None:
    """Intercom timestamp (int, float or numeric string of Unix seconds) -> aware UTC datetime."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)):
        if value == 0:
            return None
        if value > LARGEST_SECONDS:  # milliseconds slipped in
            value = value / 1000.0
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):  # no instant a calendar can hold: not a timestamp
            return None
    return None


LARGEST_SECONDS = 10**11  # above: milliseconds (to_datetime divides them)


def whole_seconds(value: Any) -> int | None:
    """The value itself when it is an Intercom timestamp in plain Unix seconds (the usual form,
    read here without building a datetime); None for any other form."""
    return value if type(value) is int and 0 < value <= LARGEST_SECONDS else None


def to_seconds(value: Any) -> float | None:
    """Unix seconds of an Intercom timestamp, a fraction kept (range tests); None when absent."""
    seconds = whole_seconds(value)
    if seconds is not None:
        return seconds
    dt = to_datetime(value)
    return dt.timestamp() if dt is not None else None


def to_epoch(value: Any) -> int | None:
    """Unix seconds of an Intercom timestamp (for state maps); None when absent."""
    seconds = to_seconds(value)
    return int(seconds) if seconds is not None else None


def convert_timestamps(obj: Any) -> Any:
    """Recursively convert every timestamp-named key in dicts (and dicts inside lists).

    Written for speed (it sees every value the API returns): exact type checks first, the
    key test cached, scalars under other keys copied as they are.
    """
    if isinstance(obj, dict):
        return _convert_dict(obj)
    if isinstance(obj, list):
        return [convert_timestamps(v) for v in obj]
    if type(obj) is int:
        return check_bigint("a list element", obj)
    return obj


def record_row(raw: Mapping[str, Any], keep_nulls: bool = False) -> dict[str, Any]:
    """A new row from one API record: timestamps converted, top-level None values left out.

    Why leave them out: dlt drops None values from every row anyway, but first checks each against
    the schema; for a column that never has a value (dozens per contact: the android_* fields...)
    that check ran again on every row, 17% of normalize (1.92 -> 1.60 s for 42,354 rows). Nested
    dicts keep theirs: a JSON column's document stays as the API sent it. `keep_nulls` (history
    mode) keeps them all: dlt's scd2 hashes the row as yielded, None values included, to tell a
    changed record from an unchanged one, so leaving them out would make every record re-read
    after an upgrade look changed.
    """
    return _convert_dict(raw, drop_none=not keep_nulls)


def _convert_dict(obj: Mapping[str, Any], drop_none: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cache = _TIMESTAMP_KEY_CACHE
    for key, value in obj.items():
        kind = type(value)
        if kind is dict:
            out[key] = _convert_dict(value)
        elif kind is list:
            out[key] = [_convert_dict(v) if type(v) is dict else convert_timestamps(v) for v in value]
        elif value is None:
            if not drop_none:
                out[key] = None
        elif kind not in _SCALAR_TYPES and isinstance(value, (dict, list)):
            out[key] = convert_timestamps(value)
        else:
            is_timestamp = cache.get(key)
            if is_timestamp is None:
                is_timestamp = cache[key] = is_timestamp_key(key)
            if is_timestamp:
                out[key] = to_datetime(value)
            else:
                out[key] = check_bigint(key, value) if kind is int else value
    return out


def snake_case(name: str) -> str:
    return _SNAKE.sub("_", _CAMEL.sub("_", name)).strip("_").lower() or "unnamed"


def custom_column_name(attribute_name: str) -> str:
    return f"custom_{snake_case(attribute_name)}"


def _disambiguated(column: str, attribute_name: str) -> str:
    """The column of a name whose plain column another attribute owns: stable, from the name alone."""
    return f"{column}_{hashlib.sha1(attribute_name.encode()).hexdigest()[:6]}"


def custom_columns(names: Iterable[str]) -> dict[str, str]:
    """{attribute name: column} for one model's custom attributes, no two names in one column.

    Real names hold spaces, colons and case ("Copilot used", "copilot_used", "Fin AI Agent:
    Preview"), so two names can snake-case to the same column and one value would overwrite the
    other. The first name in sorted order keeps the plain column; the others get a suffix made from
    their own name, so a column never moves when another attribute is created later unless that one
    sorts first.
    """
    owner: dict[str, str] = {}
    for name in sorted(set(names)):
        owner.setdefault(custom_column_name(name), name)
    columns = {}
    for name in names:
        plain = custom_column_name(name)
        columns[name] = plain if owner[plain] == name else _disambiguated(plain, name)
    return columns


class CustomTypes(dict[str, str]):
    """{attribute name: Intercom data_type} of one model's custom attributes, and their columns."""

    def __init__(self, types: Mapping[str, str]) -> None:
        super().__init__(types)
        self.columns = custom_columns(self)
        self.taken = frozenset(self.columns.values())


def custom_attribute_types(attributes: Iterable[Mapping[str, Any]]) -> CustomTypes:
    """{attribute name: Intercom data_type} for the custom attributes of one model."""
    types: dict[str, str] = {}
    for attr in attributes:
        if not isinstance(attr, Mapping):
            continue
        name = attr.get("name")
        full_name = attr.get("full_name") or ""
        is_custom = attr.get("custom") is True or str(full_name).startswith("custom_attributes.")
        if isinstance(name, str) and is_custom:
            types[name] = str(attr.get("data_type") or "string")
    return CustomTypes(types)


def _custom_types(types: Mapping[str, str]) -> CustomTypes:
    return types if isinstance(types, CustomTypes) else CustomTypes(types)


def custom_attribute_columns(types: Mapping[str, str]) -> dict[str, TColumnSchema]:
    """dlt column hints for `custom_*` columns."""
    custom = _custom_types(types)
    return {
        custom.columns[name]: {"name": custom.columns[name], "data_type": ATTRIBUTE_TYPES.get(dt, "text"), "nullable": True}  # type: ignore[typeddict-item]
        for name, dt in custom.items()
    }


def coerce_custom(value: Any, data_type: str | None) -> Any:
    """Best-effort typing; a value that does not fit is kept as-is (dlt makes a variant column)."""
    if value is None:
        return None
    if data_type == "date":
        return to_datetime(value) if not isinstance(value, bool) else value
    if data_type == "boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if data_type == "integer" and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return value
    if data_type == "integer" and type(value) is float and value.is_integer():
        return int(value)  # as dlt coerces it; orjson reads an integer beyond 2**64 - 1 as a float
    if data_type == "float" and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def lift_custom_attributes(row: dict[str, Any], types: Mapping[str, str]) -> None:
    """Move `custom_attributes` into typed `custom_<name>` columns (in place).

    A name missing from GET /data_attributes gets its plain column unless a catalogued name or an
    earlier name of this record owns it (then a suffix from its own name): never an overwrite.
    """
    custom = row.pop("custom_attributes", None)
    if not isinstance(custom, dict):
        return
    catalogue = _custom_types(types)
    for key, value in custom.items():
        name = str(key)
        column = catalogue.columns.get(name)
        if column is None:
            column = custom_column_name(name)
            if column in catalogue.taken or column in row:
                column = _disambiguated(column, name)
        value = coerce_custom(value, catalogue.get(name))
        row[column] = check_bigint(name, value) if type(value) is int else value


def _flat(element: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts of a child element into `a__b` keys (lists stay, dlt stores JSON)."""
    out: dict[str, Any] = {}
    for k, v in element.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "__"))
        else:
            out[key] = v
    return out


def envelope_items(value: Any, *keys: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(elements, envelope extras) of an Intercom list envelope, or of a bare list."""
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)], {}
    if not isinstance(value, dict):
        return [], {}
    for key in (*keys, "data"):
        items = value.get(key)
        if isinstance(items, list):
            extras = {k: v for k, v in value.items() if k not in (key, "type", "url")}
            return [v for v in items if isinstance(v, dict)], extras
    # the list under a key we did not expect (e.g. `admins` where the spec says `teammates`)
    lists = [key for key, items in value.items() if isinstance(items, list)]
    if len(lists) == 1:
        extras = {k: v for k, v in value.items() if k not in (lists[0], "type", "url")}
        return [v for v in value[lists[0]] if isinstance(v, dict)], extras
    return [], {}


def _children(row: dict[str, Any], field: str, parent_key: str, parent_id: Any, *keys: str) -> None:
    """Replace an envelope by child rows that carry the parent id; keep counts as parent columns."""
    if field not in row:
        return
    items, extras = envelope_items(row.pop(field), *keys)
    row[field] = [{parent_key: parent_id, **_flat(item)} for item in items]
    for key in ("total_count", "has_more"):
        if key in extras:
            row[f"{field}_{key}"] = extras[key]


def _ids_to_text(row: dict[str, Any], *fields: str) -> None:
    for f in fields:
        if row.get(f) is not None and not isinstance(row[f], str):
            row[f] = str(row[f])


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def assignee_id(value: Any) -> int | None:
    """An assignee id as an integer; unassigned is None whether it came as null or, at 2.16, as 0."""
    number = _int_or_none(value)
    return number if number else None


@dataclasses.dataclass(frozen=True)
class Shaping:
    """What shaping one record may use besides the record: the stream's custom attribute types,
    the record's detail (GET /conversations/{id}, /tickets/{id}) and history mode's None values."""

    types: Mapping[str, str] = dataclasses.field(default_factory=dict)
    detail: Mapping[str, Any] | None = None
    keep_nulls: bool = False


@dataclasses.dataclass(frozen=True)
class RecordShape:
    """How a record with custom attributes and embedded lists becomes rows: the ids kept as text, and
    each embedded list (field, envelope keys) as a child table whose rows carry `parent_key`.

    One description, two executors: `shape_record` (a dict for dlt's normalizer) and the fast path
    of columnar.py (typed columns for Arrow), which must agree row for row.
    """

    parent_key: str
    text_ids: tuple[str, ...]
    children: tuple[tuple[str, tuple[str, ...]], ...]


CONTACT_SHAPE = RecordShape(
    "contact_id", ("id", "owner_id"), (("tags", ()), ("companies", ()), ("notes", ()), ("social_profiles", ())),
)
COMPANY_SHAPE = RecordShape("company_id", ("id",), (("tags", ("tags",)), ("segments", ("segments",))))


def shape_record(
    raw: Mapping[str, Any], shape: RecordShape, custom_types: Mapping[str, str], keep_nulls: bool = False,
) -> dict[str, Any]:
    row = record_row(raw, keep_nulls)
    _ids_to_text(row, *shape.text_ids)
    parent_id = row.get("id")
    lift_custom_attributes(row, custom_types)
    for field, keys in shape.children:
        _children(row, field, shape.parent_key, parent_id, *keys)
    return row


def shape_contact(raw: Mapping[str, Any], custom_types: Mapping[str, str], keep_nulls: bool = False) -> dict[str, Any]:
    return shape_record(raw, CONTACT_SHAPE, custom_types, keep_nulls)


def shape_company(raw: Mapping[str, Any], custom_types: Mapping[str, str], keep_nulls: bool = False) -> dict[str, Any]:
    return shape_record(raw, COMPANY_SHAPE, custom_types, keep_nulls)


def shape_conversation(
    raw: Mapping[str, Any], custom_types: Mapping[str, str], detail: Mapping[str, Any] | None = None,
    keep_nulls: bool = False,
) -> dict[str, Any]:
    """Conversation row; with `detail` (GET /conversations/{id}) it records parts truncation."""
    row = record_row(raw, keep_nulls)
    _ids_to_text(row, "id")
    cid = row.get("id")
    row["admin_assignee_id"] = assignee_id(row.get("admin_assignee_id"))
    row["team_assignee_id"] = assignee_id(row.get("team_assignee_id"))
    lift_custom_attributes(row, custom_types)
    _children(row, "tags", "conversation_id", cid, "tags")
    _children(row, "contacts", "conversation_id", cid, "contacts")
    _children(row, "teammates", "conversation_id", cid, "teammates", "admins")
    _children(row, "linked_objects", "conversation_id", cid)
    row.pop("conversation_parts", None)
    stats = row.get("statistics") if isinstance(row.get("statistics"), dict) else {}
    total = _int_or_none(stats.get("count_conversation_parts"))
    returned: int | None = None
    if detail is not None:
        envelope = detail.get("conversation_parts")
        parts, extras = envelope_items(envelope, "conversation_parts")
        returned = len(parts)
        detail_total = _int_or_none(extras.get("total_count"))
        if detail_total is not None:
            total = max(detail_total, total or 0)
        if total is None:
            total = returned
    row["parts_total_count"] = total
    row["parts_returned_count"] = returned
    row["parts_truncated"] = None if returned is None or total is None else returned < total
    return row


def conversation_part_items(detail: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The parts GET /conversations/{id} returned, as the API sent them."""
    parts, _ = envelope_items(detail.get("conversation_parts"), "conversation_parts")
    return parts


def shape_part(part: Mapping[str, Any], conversation_id: str) -> dict[str, Any]:
    """One conversation part, carrying `conversation_id`."""
    row = record_row(part)
    _ids_to_text(row, "id")
    row["conversation_id"] = str(conversation_id)
    return row


def shape_parts(detail: Mapping[str, Any], conversation_id: str) -> list[dict[str, Any]]:
    """Every part returned by GET /conversations/{id}, each carrying `conversation_id`."""
    return [shape_part(part, conversation_id) for part in conversation_part_items(detail)]


def shape_activity_log(raw: Mapping[str, Any]) -> dict[str, Any]:
    row = record_row(raw)
    _ids_to_text(row, "id")
    return row


def shape_simple(raw: Mapping[str, Any]) -> dict[str, Any]:
    """admins, tags, teams, segments."""
    row = record_row(raw)
    _ids_to_text(row, "id")
    return row


def shape_data_attribute(raw: Mapping[str, Any], model: str) -> dict[str, Any]:
    row = record_row(raw)
    _ids_to_text(row, "id")
    row["model"] = row.get("model") or model
    return row


# ---------------------------------------------------------------------------- column hints
def _cols(**types: str) -> dict[str, TColumnSchema]:
    return {name: {"name": name, "data_type": dt, "nullable": True} for name, dt in types.items()}  # type: ignore[typeddict-item,misc]


def _ts(*names: str) -> dict[str, TColumnSchema]:
    return _cols(**dict.fromkeys(names, "timestamp"))


_ID = {"id": {"name": "id", "data_type": "text", "nullable": False}}

CONTACT_COLUMNS: dict[str, TColumnSchema] = {
    **_ID,  # type: ignore[dict-item]
    **_cols(owner_id="text", has_hard_bounced="bool", marked_email_as_spam="bool", unsubscribed_from_emails="bool"),
    **_ts(
        "created_at", "updated_at", "signed_up_at", "last_seen_at", "last_replied_at", "last_contacted_at",
        "last_email_opened_at", "last_email_clicked_at", "android_last_seen_at", "ios_last_seen_at",
    ),
}
COMPANY_COLUMNS: dict[str, TColumnSchema] = {
    **_ID,  # type: ignore[dict-item]
    **_ts("created_at", "updated_at", "remote_created_at", "last_request_at"),
    **_cols(user_count="bigint", session_count="bigint", monthly_spend="double"),
}
CONVERSATION_COLUMNS: dict[str, TColumnSchema] = {
    **_ID,  # type: ignore[dict-item]
    **_ts(
        "created_at", "updated_at", "waiting_since", "snoozed_until",
        "statistics__first_contact_reply_at", "statistics__first_assignment_at",
        "statistics__first_admin_reply_at", "statistics__first_close_at", "statistics__last_assignment_at",
        "statistics__last_assignment_admin_reply_at", "statistics__last_contact_reply_at",
        "statistics__last_admin_reply_at", "statistics__last_close_at",
        "conversation_rating__created_at", "first_contact_reply__created_at",
    ),
    **_cols(
        open="bool", read="bool", admin_assignee_id="bigint", team_assignee_id="bigint",
        parts_total_count="bigint", parts_returned_count="bigint", parts_truncated="bool",
        statistics__count_conversation_parts="bigint",
    ),
}
CONVERSATION_PART_COLUMNS: dict[str, TColumnSchema] = {
    **_ID,  # type: ignore[dict-item]
    **_cols(conversation_id="text", attachments="json", tags="json", redacted="bool"),
    **_ts("created_at", "updated_at", "notified_at"),
}
ADMIN_COLUMNS: dict[str, TColumnSchema] = {**_ID, **_cols(team_ids="json", away_mode_enabled="bool", away_mode_reassign="bool", has_inbox_seat="bool")}  # type: ignore[dict-item]
TEAM_COLUMNS: dict[str, TColumnSchema] = {**_ID, **_cols(admin_ids="json")}  # type: ignore[dict-item]
TAG_COLUMNS: dict[str, TColumnSchema] = {**_ID}  # type: ignore[dict-item]
SEGMENT_COLUMNS: dict[str, TColumnSchema] = {**_ID, **_ts("created_at", "updated_at"), **_cols(count="bigint")}  # type: ignore[dict-item]
ACTIVITY_LOG_COLUMNS: dict[str, TColumnSchema] = {**_ID, **_ts("created_at"), **_cols(metadata="json")}  # type: ignore[dict-item]
# built-in attributes have no id (only custom ones do): keyed on (model, full_name)
DATA_ATTRIBUTE_COLUMNS: dict[str, TColumnSchema] = {
    "model": {"name": "model", "data_type": "text", "nullable": False},
    "full_name": {"name": "full_name", "data_type": "text", "nullable": False},
    **_ts("created_at", "updated_at"),
    **_cols(id="text", options="json", custom="bool", archived="bool", api_writable="bool"),
}

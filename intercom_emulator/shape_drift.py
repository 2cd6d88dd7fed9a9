"""Seeded shape drift on served records: the shapes real Intercom sends that its spec does not promise.

Why: one wrong assumption about a shape used to cost a whole run. Real responses drop optional
fields, send `null` for whole objects, a string where an object was expected (and the other way
round), and list envelopes under another key (`{"type": "list", "data": [...]}` vs
`{"type": "tag.list", "tags": [...]}`). A client must store such records as they come. A record
without its `id` cannot be stored at all, and must be kept aside, never fail the run.

Two knobs of `FaultConfig` drive it, applied per record of a list, search, scroll or activity-log
page (never to a single-record answer such as GET /conversations/{id}, whose parts stay intact):
* `shape_drift_rate`: the record gets one to three valid drifts (`VALID_DRIFTS`); never touched:
  `id`, `type`, `created_at`, `updated_at` and relation envelopes (a drift must not remove a row);
* `missing_id_rate` / `missing_cursor_rate`: the record is served without its `id` / its cursor
  (`updated_at`, `created_at` for activity logs). The original id stays in `x_emulator_original_id`
  (an unknown field, which a client keeps) so a test can map what a client kept aside back to it.

Which records drift, and how, is a pure function of (fault seed, stream, id, cursor): the same
record unchanged drifts the same way on every page and every run while the knob is on, whatever
the order concurrent requests arrive in, so the `ServedInvalid` log is exact ground truth.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ORIGINAL_ID_FIELD = "x_emulator_original_id"
PROTECTED = frozenset({"id", "type", "created_at", "updated_at", ORIGINAL_ID_FIELD})
# which stream a page belongs to, from its path (activity logs carry no `type` to tell)
_STREAM_BY_PATH = {
    "/contacts": "contacts",
    "/contacts/search": "contacts",
    "/companies": "companies",
    "/companies/list": "companies",
    "/companies/scroll": "companies",
    "/conversations": "conversations",
    "/conversations/search": "conversations",
    "/tickets/search": "tickets",
    "/admins/activity_logs": "activity_logs",
}

Record = dict[str, Any]


def stream_of(path: str) -> str:
    """The stream a list page at `path` serves (the path itself for one not listed)."""
    return _STREAM_BY_PATH.get(path.rstrip("/"), path)


def cursor_field(stream: str) -> str:
    return "created_at" if stream == "activity_logs" else "updated_at"


def is_envelope(value: Any) -> bool:
    """A relation list envelope: an object typed `list` / `<thing>.list`, or holding a list of objects."""
    if not isinstance(value, dict):
        return False
    kind = value.get("type")
    if isinstance(kind, str) and (kind == "list" or kind.endswith(".list")):
        return True
    return any(isinstance(v, list) and v and all(isinstance(x, dict) for x in v) for v in value.values())


def _singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    return name[:-1] if name.endswith("s") else name


# ------------------------------------------------------------------------ the valid drifts
def _optional_fields(record: Record) -> list[str]:
    return [k for k, v in record.items() if k not in PROTECTED and not is_envelope(v)]


def drop_field(record: Record, rng: random.Random) -> str | None:
    """An optional field left out (absent, not null)."""
    keys = _optional_fields(record)
    if not keys:
        return None
    key = rng.choice(keys)
    del record[key]
    return key


def null_object(record: Record, rng: random.Random) -> str | None:
    """A whole object sent as `null` (`source`, `statistics`, `location`, `plan`, ...)."""
    keys = [k for k in _optional_fields(record) if isinstance(record[k], dict)]
    if not keys:
        return None
    key = rng.choice(keys)
    record[key] = None
    return key


def _as_text(value: Record) -> str:
    for key in ("name", "value", "type", "id"):
        if isinstance(value.get(key), (str, int)) and not isinstance(value.get(key), bool):
            return str(value[key])
    return "unknown"


def swap_string_object(record: Record, rng: random.Random) -> str | None:
    """An object sent as a string (`"plan": "Pro"`) or a string as an object (`{"type", "value"}`)."""
    keys = [k for k in _optional_fields(record) if isinstance(record[k], (str, dict))]
    if not keys:
        return None
    key = rng.choice(keys)
    value = record[key]
    record[key] = _as_text(value) if isinstance(value, dict) else {"type": key, "value": value}
    return key


def alternative_list_key(record: Record, rng: random.Random) -> str | None:
    """An envelope's list under the other key Intercom uses: `data` <-> the field's own name."""
    keys = [k for k, v in record.items() if k not in PROTECTED and is_envelope(v) and _list_key(v)]
    if not keys:
        return None
    field_name = rng.choice(keys)
    envelope = dict(record[field_name])
    list_key = _list_key(envelope)
    assert list_key is not None
    items = envelope.pop(list_key)
    if list_key == "data":
        envelope["type"] = f"{_singular(field_name)}.list"
        envelope[field_name] = items
    else:
        envelope["type"] = "list"
        envelope["data"] = items
    record[field_name] = envelope
    return field_name


def _list_key(envelope: Record) -> str | None:
    lists = [k for k, v in envelope.items() if isinstance(v, list)]
    if "data" in lists:
        return "data"
    return lists[0] if len(lists) == 1 else None


VALID_DRIFTS: dict[str, Callable[[Record, random.Random], str | None]] = {
    "dropped": drop_field,
    "nulled": null_object,
    "swapped": swap_string_object,
    "list_key": alternative_list_key,
}


# ------------------------------------------------------------------------ the invalid ones
def without_field(record: Record, key: str) -> None:
    """The record served without `key`; its id kept in `x_emulator_original_id` for tests."""
    record[ORIGINAL_ID_FIELD] = record.get("id")
    record.pop(key, None)


# ------------------------------------------------------------------------ seeded choice, log
def unit(seed: int, salt: str, stream: str, record: Record) -> float:
    """A number in [0, 1) fixed by (seed, salt, stream, id, cursor): the same record, the same draw."""
    key = f"{seed}|{salt}|{stream}|{record.get('id')}|{record.get(cursor_field(stream))}"
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class Invalid:
    """One record served in a shape no client can store: what was left out, of which record."""

    kind: str  # "missing_id" | "missing_cursor"
    stream: str
    original_id: str


@dataclass
class ServedInvalid:
    """What shape drift served: the invalid records (ground truth for tests) and counts of the rest."""

    invalid: set[Invalid] = field(default_factory=set)
    valid: Counter[tuple[str, str]] = field(default_factory=Counter)  # (stream, drift) -> records
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_invalid(self, item: Invalid) -> None:
        with self._lock:
            self.invalid.add(item)

    def add_valid(self, stream: str, drift: str) -> None:
        with self._lock:
            self.valid[(stream, drift)] += 1

    def ids(self, stream: str, kind: str | None = None) -> set[str]:
        """Original ids of `stream`'s records served invalid (of one `kind`, or any)."""
        with self._lock:
            return {i.original_id for i in self.invalid if i.stream == stream and kind in (None, i.kind)}

    def clear(self) -> None:
        with self._lock:
            self.invalid.clear()
            self.valid.clear()


@dataclass(frozen=True)
class ShapeRates:
    """The shape-drift knobs in force for one request."""

    drift: float = 0.0
    missing_id: float = 0.0
    missing_cursor: float = 0.0

    def __bool__(self) -> bool:
        return bool(self.drift or self.missing_id or self.missing_cursor)


def apply_shape_drift(
    record: Record, stream: str, rates: ShapeRates, seed: int, log: ServedInvalid
) -> Record | None:
    """The record as served under `rates`: a drifted copy, or None when it is served unchanged."""
    if not rates or record.get("id") is None:
        return None
    missing_id = unit(seed, "missing_id", stream, record) < rates.missing_id
    missing_cursor = not missing_id and unit(seed, "missing_cursor", stream, record) < rates.missing_cursor
    drift = unit(seed, "drift", stream, record) < rates.drift
    if not (missing_id or missing_cursor or drift):
        return None
    original_id = str(record["id"])
    rng = random.Random(f"{seed}|shape|{stream}|{original_id}|{record.get(cursor_field(stream))}")
    out = _copy(record)
    if drift:
        for name in rng.sample(sorted(VALID_DRIFTS), rng.randint(1, 3)):
            if VALID_DRIFTS[name](out, rng) is not None:
                log.add_valid(stream, name)
    if missing_id:
        without_field(out, "id")
        log.add_invalid(Invalid("missing_id", stream, original_id))
    elif missing_cursor:
        without_field(out, cursor_field(stream))
        log.add_invalid(Invalid("missing_cursor", stream, original_id))
    return out


def _copy(value: Any) -> Any:
    """A deep copy of JSON data (the store's caches must stay clean)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value

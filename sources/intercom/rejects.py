"""Records that cannot be stored as rows are kept aside in `_intercom_rejects`, never failing a run.

Why: real Intercom differs from its OpenAPI text (built-in data attributes have no `id`, objects
arrive as strings, whole objects as null). One record without its key used to fail the whole
load (`NormalizeJobFailed: Column 'id' is declared non-nullable`), losing every sibling record.
Now each stream screens its records before any work keyed on them (detail fetches, cursors, the
recent map) and shapes them one by one; a record that lacks its key or cursor, or whose shaping
raises, becomes one row of the rejects table and the rest of the page loads as usual.

The rows travel in-band: each resource yields them under the table name `_intercom_rejects`,
whose hints are a dlt table variant of that resource (`with_rejects_table`), so they commit in
the same load package as the stream's rows. A reject row holds the stream, the reason, the record
as JSON (the access token redacted should it ever appear), its id and parent id when it has them,
and when it was seen; dlt adds `_dlt_load_id`. `pipelines/rejects.py` settles the table after
each load: one row per rejected record (first and last seen), and rows whose record has landed
since are removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TypeVar

import dlt
from dlt.common.schema.typing import TColumnSchema
from dlt.common.typing import TDataItem
from dlt.extract import DltResource
from dlt.extract.items import DataItemWithMeta, TableNameMeta

from . import schema

logger = logging.getLogger(__name__)

REJECTS_TABLE = "_intercom_rejects"
_REASON_MAX = 500  # an exception message can be long; the reason stays one readable line

COLUMNS: dict[str, TColumnSchema] = {
    "stream": {"name": "stream", "data_type": "text", "nullable": False},
    "reject_key": {"name": "reject_key", "data_type": "text", "nullable": False},
    "record_id": {"name": "record_id", "data_type": "text", "nullable": True},
    "parent_id": {"name": "parent_id", "data_type": "text", "nullable": True},
    "reason": {"name": "reason", "data_type": "text", "nullable": False},
    "record": {"name": "record", "data_type": "json", "nullable": True},
    "first_seen": {"name": "first_seen", "data_type": "timestamp", "nullable": False},
    "last_seen": {"name": "last_seen", "data_type": "timestamp", "nullable": False},
}

Row = TypeVar("Row")


def with_rejects_table(resource: DltResource) -> DltResource:
    """Give `resource` a `_intercom_rejects` table variant: append-only, exactly `COLUMNS`.

    Applied to the bound resource (dlt drops variants when a resource is called). The first call
    empties what the variant inherits from the stream (its columns, key and disposition).
    """
    resource.apply_hints(
        table_name=REJECTS_TABLE, columns={}, primary_key="", merge_key="", write_disposition="append",
        create_table_variant=True,
    )
    resource.apply_hints(table_name=REJECTS_TABLE, columns=COLUMNS, create_table_variant=True)
    return resource


def is_rejects_item(meta: object) -> bool:
    """True for the rejects a parent resource yields (a transformer must not treat them as parents)."""
    return isinstance(meta, TableNameMeta) and meta.table_name == REJECTS_TABLE


def key_problem(raw: object, key: str) -> str | None:
    """Why `raw` cannot be a row keyed on `key`, or None when it can."""
    if not isinstance(raw, Mapping):
        return f"the record is a {type(raw).__name__}, not an object"
    value = raw.get(key)
    if value is None or value == "":
        return f"no '{key}'" if key not in raw else f"'{key}' is {json.dumps(value)}"
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return f"'{key}' is a {type(value).__name__}, not a string or integer"
    return None


def cursor_problem(raw: Mapping[str, object], cursor_field: str) -> str | None:
    """Why `raw`'s cursor cannot place it in time, or None (a record without one is never loaded)."""
    if schema.to_epoch(raw.get(cursor_field)) is not None:
        return None
    if cursor_field not in raw:
        return f"no '{cursor_field}'"
    return f"'{cursor_field}' is not a timestamp: {json.dumps(raw.get(cursor_field), default=str)[:80]}"


@dataclass
class Rejects:
    """The rejects of one stream, gathered while it reads and yielded between its pages."""

    stream: str
    secrets: Sequence[str] = ()
    rows: list[dict[str, object]] = field(default_factory=list)

    def add(self, reason: str, record: object, parent_id: str | None = None) -> None:
        now = datetime.now(tz=timezone.utc)
        document = self._document(record)
        record_id = _scalar_text(record.get("id")) if isinstance(record, Mapping) else None
        if record_id is not None:
            reject_key = f"id:{record_id}"
        else:
            digest = hashlib.sha1(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()[:20]
            reject_key = f"sha1:{digest}"
        self.rows.append({
            "stream": self.stream, "reject_key": reject_key, "record_id": record_id, "parent_id": parent_id,
            "reason": reason[:_REASON_MAX], "record": document, "first_seen": now, "last_seen": now,
        })
        logger.warning("%s: a record was kept aside in %s (%s)", self.stream, REJECTS_TABLE, reason[:_REASON_MAX])

    def screened(
        self, records: Iterable[object], key: str = "id", cursor_field: str | None = None,
        parent_id: str | None = None,
    ) -> list[dict[str, object]]:
        """The records that have their key (and cursor); the others become rejects."""
        kept: list[dict[str, object]] = []
        for raw in records:
            problem = key_problem(raw, key)
            if problem is None and cursor_field is not None:
                problem = cursor_problem(raw, cursor_field)  # type: ignore[arg-type]
            if problem is None:
                kept.append(raw)  # type: ignore[arg-type]
            else:
                self.add(problem, raw, parent_id)
        return kept

    def shaped(
        self, records: Iterable[Mapping[str, object]], shape: Callable[[Mapping[str, object]], Row],
        parent_id: str | None = None,
    ) -> list[Row]:
        """`shape` applied to each record; a record whose shaping raises becomes a reject."""
        rows: list[Row] = []
        for raw in records:
            try:
                rows.append(shape(raw))
            except Exception as exc:  # noqa: BLE001 - any shape Intercom sends must not stop the run
                self.unshapeable(exc, raw, parent_id)
        return rows

    def unshapeable(self, exc: Exception, record: object, parent_id: str | None = None) -> None:
        """Keep aside a record whose shaping raised `exc`."""
        self.add(f"cannot be shaped: {type(exc).__name__}: {exc}", record, parent_id)

    def drain(self) -> DataItemWithMeta | None:
        """The rejects gathered since the last drain, as an item for `_intercom_rejects`."""
        if not self.rows:
            return None
        rows, self.rows = self.rows, []
        return dlt.mark.with_table_name(rows, REJECTS_TABLE)

    def _document(self, record: object) -> object:
        """The record as a JSON value, with every secret this run knows replaced by `***`."""
        text = json.dumps(record, default=str)
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return json.loads(text)


def _scalar_text(value: object) -> str | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    return str(value) if isinstance(value, (str, int)) else None


def rows_and_rejects(rows: TDataItem, rejects: Rejects) -> list[TDataItem]:
    """What a stream yields after a page: its rows (when any), then the page's rejects."""
    out: list[TDataItem] = [rows] if rows else []
    item = rejects.drain()
    if item is not None:
        out.append(item)
    return out

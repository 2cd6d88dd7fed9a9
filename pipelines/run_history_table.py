"""The `_intercom_runs` table: its columns, and one row written or many read through the
destination's own SQL client (DuckDB and Postgres; other SQL destinations get JSON as text).

Why SQL and not a dlt load: a second `pipeline.run` would first retry the packages a failed run
left behind (the very failure being recorded), add a load to `_dlt_loads`, and the table would
belong to the source's schema, so `--full-refresh` would drop the history with the data. One
INSERT is atomic: a run killed while it is written leaves no half row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from dlt.destinations.sql_client import SqlClientBase

RUNS_TABLE = "_intercom_runs"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # text | bigint | double | timestamp | json
    doc: str


# The README's table of columns is `readme_table()` (a test keeps the two in step).
COLUMNS: tuple[Column, ...] = (
    Column("run_id", "text", "unique id of the run: UTC start time and a random suffix"),
    Column("pipeline_name", "text", "dlt pipeline name (keys the saved cursors)"),
    Column("workspace_id", "text", "Intercom workspace app id_code from /me (null when the run did not ask)"),
    Column("workspace_name", "text", "Intercom workspace name from /me (null when the run did not ask)"),
    Column("command", "text", "what ran: run, backfill, demo, with the flags that change what it does"),
    Column("started_at", "timestamp", "when the run started (UTC)"),
    Column("ended_at", "timestamp", "when the run ended (UTC)"),
    Column("duration_seconds", "double", "ended_at - started_at in seconds"),
    Column("status", "text", "succeeded (exit 0), failed (any other exit, --strict's 6 included) or interrupted (Ctrl-C)"),
    Column("exit_code", "bigint", "the process exit code (README: Exit codes)"),
    Column("failure", "text", "the one error line the run printed; null when it succeeded"),
    Column("rows_total", "bigint", "rows loaded, all tables"),
    Column("rows_by_table", "json", "rows loaded per table, e.g. {\"contacts\": 40}"),
    Column("requests_total", "bigint", "HTTP requests sent to Intercom (retries included)"),
    Column("requests_by_endpoint", "json", "requests per endpoint template, e.g. {\"POST /contacts/search\": 2}"),
    Column("retries", "bigint", "requests repeated after a transient failure (5xx, timeout, 429)"),
    Column("rate_limited", "bigint", "answers 429 (rate limited)"),
    Column("rate_limit_wait_seconds", "double", "seconds spent waiting for the rate limit, summed over workers"),
    Column("rate_limit", "bigint", "the X-RateLimit-Limit Intercom reported (calls per 10-second window)"),
    Column(
        "quota_share",
        "double",
        "requests / (rate_limit x the 10-second windows the run spanned): 1.0 is the whole quota",
    ),
    Column("cursors", "json", "per stream, the saved cursor after the run (ISO 8601 UTC)"),
    Column("cursor_lag_seconds", "json", "per stream, started_at minus the cursor: how stale the table can be"),
    Column("rejected_records", "bigint", "records this run kept aside in _intercom_rejects (0 when it failed before counting)"),
    Column("deletes_marked", "bigint", "records marked deleted by --reconcile-deletes"),
    Column("deletes_by_model", "json", "deletes marked per model and reason, e.g. {\"contacts\": {\"deleted\": 2}}"),
)
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)

_TYPES: dict[str, dict[str, str]] = {
    "duckdb": {"text": "VARCHAR", "bigint": "BIGINT", "double": "DOUBLE", "timestamp": "TIMESTAMPTZ", "json": "JSON"},
    "postgres": {
        "text": "text",
        "bigint": "bigint",
        "double": "double precision",
        "timestamp": "timestamptz",
        "json": "jsonb",
    },
}
_GENERIC = {"text": "text", "bigint": "bigint", "double": "double precision", "timestamp": "timestamp", "json": "text"}


def readme_table() -> str:
    """The README's table of columns (tests/pipelines/test_run_history.py keeps the two equal)."""
    names = {"text": "text", "bigint": "bigint", "double": "double", "timestamp": "timestamptz", "json": "json"}
    lines = ["| column | type | what it holds |", "|---|---|---|"]
    lines += [f"| `{c.name}` | {names[c.kind]} | {c.doc} |" for c in COLUMNS]
    return "\n".join(lines)


def _sql_type(dialect: str, kind: str) -> str:
    return _TYPES.get(dialect, _GENERIC)[kind]


def dialect_of(sql_client: SqlClientBase[Any]) -> str:
    """duckdb, postgres, or "sql" for another destination (from dlt's module of the client)."""
    module = type(sql_client).__module__
    return next((known for known in ("duckdb", "postgres") if f".{known}." in module), "sql")


def _ensure_table(sql_client: SqlClientBase[Any], dialect: str) -> str:
    """Create the dataset and table when missing and add columns a newer version defines."""
    if not sql_client.has_dataset():
        sql_client.create_dataset()
    table = sql_client.make_qualified_table_name(RUNS_TABLE)
    columns = ", ".join(f"{c.name} {_sql_type(dialect, c.kind)}" for c in COLUMNS)
    sql_client.execute_sql(f"CREATE TABLE IF NOT EXISTS {table} ({columns}, PRIMARY KEY (run_id))")
    present = set(existing_columns(sql_client))
    for col in COLUMNS:
        if col.name not in present:
            sql_client.execute_sql(f"ALTER TABLE {table} ADD COLUMN {col.name} {_sql_type(dialect, col.kind)}")
    return table


def existing_columns(sql_client: SqlClientBase[Any], table: str = RUNS_TABLE) -> list[str]:
    """Column names of a table in the dataset (empty when it does not exist)."""
    rows = sql_client.execute_sql(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
        sql_client.dataset_name,
        table,
    )
    return [str(r[0]) for r in rows or []]


def _db_value(kind: str, value: object) -> object:
    if value is None:
        return None
    if kind == "json":
        return json.dumps(value, sort_keys=True)
    return value


def insert_row(sql_client: SqlClientBase[Any], row: Mapping[str, object]) -> None:
    """Append one run (keys: `COLUMN_NAMES`) in a single statement."""
    table = _ensure_table(sql_client, dialect_of(sql_client))
    values = [_db_value(c.kind, row.get(c.name)) for c in COLUMNS]
    placeholders = ", ".join(["%s"] * len(COLUMNS))
    sql_client.execute_sql(f"INSERT INTO {table} ({', '.join(COLUMN_NAMES)}) VALUES ({placeholders})", *values)


def _py_value(kind: str, value: object) -> object:
    if value is None:
        return None
    if kind == "json":
        return json.loads(value) if isinstance(value, (str, bytes)) else value
    if kind == "timestamp" and isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if kind == "bigint":
        return int(value)  # type: ignore[call-overload]
    if kind == "double":
        return float(value)  # type: ignore[arg-type]
    return value


def read_rows(sql_client: SqlClientBase[Any], since: datetime | None = None) -> list[dict[str, object]]:
    """Every run (oldest first), or those started at/after `since`; [] when there is no history."""
    present = existing_columns(sql_client)
    if not present:
        return []
    cols = [c for c in COLUMNS if c.name in present]
    table = sql_client.make_qualified_table_name(RUNS_TABLE)
    sql = f"SELECT {', '.join(c.name for c in cols)} FROM {table}"
    args: Sequence[object] = ()
    if since is not None:
        sql += " WHERE started_at >= %s"
        args = (since,)
    rows = sql_client.execute_sql(sql + " ORDER BY started_at, run_id", *args) or []
    return [{c.name: _py_value(c.kind, v) for c, v in zip(cols, r, strict=True)} for r in rows]

"""Column types land typed, and DuckDB and Postgres end with the same tables, columns and types."""

from __future__ import annotations

from pathlib import Path

import dlt
import psycopg2
import pytest

from intercom_emulator.testing import EmulatorServer
from tests.connector.conftest import Sync

DUCK = {"VARCHAR": "text", "TIMESTAMP WITH TIME ZONE": "timestamptz", "BIGINT": "bigint", "BOOLEAN": "bool",
        "DOUBLE": "double", "JSON": "json"}
PG = {"character varying": "text", "text": "text", "timestamp with time zone": "timestamptz", "bigint": "bigint",
      "boolean": "bool", "double precision": "double", "jsonb": "json"}
STREAMS = ["contacts", "companies", "conversations", "conversation_parts", "admins", "activity_logs", "data_attributes"]


def _duck_columns(sync: Sync) -> dict[tuple[str, str], str]:
    rows = sync.query(
        "select table_name, column_name, data_type from information_schema.columns "
        f"where table_schema = '{sync.dataset}'"
    )
    return {(t, c): DUCK.get(d, d) for t, c, d in rows if not t.startswith("_dlt")}


def test_duckdb_types(sync: Sync) -> None:
    sync.run(streams=STREAMS)
    cols = _duck_columns(sync)
    for col in [("contacts", "updated_at"), ("contacts", "created_at"), ("companies", "updated_at"),
                ("conversations", "statistics__first_contact_reply_at"), ("conversations", "waiting_since"),
                ("conversation_parts", "created_at"), ("activity_logs", "created_at")]:
        assert cols[col] == "timestamptz", col
    assert cols[("conversations", "open")] == "bool"
    assert cols[("conversations", "admin_assignee_id")] == "bigint"
    assert cols[("conversations", "parts_truncated")] == "bool"
    assert cols[("activity_logs", "metadata")] == "json"
    assert cols[("conversations", "id")] == "text" and cols[("conversation_parts", "conversation_id")] == "text"
    assert cols[("contacts__tags", "contact_id")] == "text"
    assert not [c for c, t in cols.items() if c[1].endswith("_at") and t != "timestamptz"]
    # custom attributes become typed custom_* columns from /data_attributes
    ws = sync.emu.workspace
    expected = {"string": "text", "integer": "bigint", "float": "double", "boolean": "bool", "date": "timestamptz"}
    for attr in ws.data_attributes("contact"):
        if attr.get("custom"):
            name = "custom_" + "".join(ch if ch.isalnum() else "_" for ch in attr["name"]).lower().strip("_")
            if ("contacts", name) in cols:
                assert cols[("contacts", name)] == expected[attr["data_type"]], name


@pytest.mark.postgres
def test_postgres_matches_duckdb(emu: EmulatorServer, tmp_path: Path, postgres_dataset: str,
                                 postgres_credentials: str) -> None:
    duck = Sync(emu, tmp_path / "duck")
    duck.run(streams=STREAMS)
    pg = Sync(emu, tmp_path / "pg", destination=dlt.destinations.postgres(postgres_credentials), dataset=postgres_dataset)
    pg.run(streams=STREAMS)
    with psycopg2.connect(postgres_credentials) as conn, conn.cursor() as cur:
        cur.execute("select table_name, column_name, data_type from information_schema.columns where table_schema=%s",
                    (postgres_dataset,))
        pg_cols = {(t, c): PG.get(d, d) for t, c, d in cur.fetchall() if not t.startswith("_dlt")}
        cur.execute(f'select count(*) from "{postgres_dataset}".conversation_parts')
        (pg_parts,) = cur.fetchone()
    assert pg_cols == _duck_columns(duck)
    assert pg_cols[("contacts", "updated_at")] == "timestamptz"
    assert pg_parts == len(emu.workspace.ground_truth("conversation_parts"))

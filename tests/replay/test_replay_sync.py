"""`intercom-sync run` (every stream, DuckDB) against records in the shapes real Intercom sends.

The emulator shares the connector's assumptions; these records do not (see `captures.py`). A
first sync of them must exit 0 and land every record exactly, with timestamps typed and custom
attributes typed from GET /data_attributes, on each version the records exist for.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines.cli import main
from tests.replay.records import CUSTOM_TYPES, Workspace
from tests.replay.server import TOKEN, ReplayServer

DATASET = "intercom_data"
TIMESTAMPTZ = "TIMESTAMP WITH TIME ZONE"
DUCKDB_TYPE = {"string": "VARCHAR", "integer": "BIGINT", "float": "DOUBLE", "boolean": "BOOLEAN", "date": TIMESTAMPTZ}
CUSTOM_COLUMNS = {  # the column each custom attribute lands in (schema.custom_column_name)
    "Plan tier": "custom_plan_tier", "Seats: purchased": "custom_seats_purchased", "Trial ends": "custom_trial_ends",
    "Churn risk": "custom_churn_risk", "Beta user": "custom_beta_user", "creation_source": "custom_creation_source",
    "ARR (USD)": "custom_arr_usd", "Renewal: date": "custom_renewal_date", "Copilot used": "custom_copilot_used",
    "Fin AI Agent: Preview": "custom_fin_ai_agent_preview", "Language": "custom_language",
}
MODEL_TABLE = {"contact": "contacts", "company": "companies", "conversation": "conversations"}


def expected_rows(ws: Workspace) -> dict[str, set[tuple[str, ...]]]:
    """What each table must hold after a first sync: ids, or (parent id, id) for child tables."""
    def ids(records: list[dict]) -> set[tuple[str, ...]]:
        return {(str(r["id"]),) for r in records}

    return {
        "contacts": ids(ws.contacts),
        "companies": ids(ws.companies),
        "conversations": ids(ws.conversations),
        "admins": ids(ws.admins),
        "teams": ids(ws.teams),
        "tags": ids(ws.tags),
        "segments": ids(ws.segments),
        "activity_logs": ids(ws.activity_logs),
        "tickets": ids(ws.tickets),
        "data_attributes": {(model, a["full_name"]) for model, attrs in ws.data_attributes.items() for a in attrs},
        "conversation_parts": {(c["id"], p["id"]) for c in ws.conversations
                               for p in c["conversation_parts"]["conversation_parts"]},
        "ticket_parts": {(t["id"], p["id"]) for t in ws.tickets for p in t["ticket_parts"]["ticket_parts"]},
        "contacts__tags": {(cid, tid) for cid, tags in ws.contact_tags.items() for tid in tags},
        "contacts__companies": {(c["id"], ref["id"]) for c in ws.contacts for ref in c["companies"]["data"]},
        "companies__segments": {(cid, sid) for cid, segs in ws.company_segments.items() for sid in segs},
        "companies__tags": {(c["id"], t["id"]) for c in ws.companies for t in c["tags"]["tags"]},
        "conversations__contacts": {(c["id"], r["id"]) for c in ws.conversations for r in c["contacts"]["contacts"]},
        "conversations__teammates": {(c["id"], r["id"]) for c in ws.conversations for r in c["teammates"]["admins"]},
        "conversations__tags": {(c["id"], t["id"]) for c in ws.conversations for t in c["tags"]["tags"]},
        "teams__admins": {(t["id"], str(a)) for t in ws.teams for a in t["admin_ids"]},
        "tickets__contacts": {(t["id"], r["id"]) for t in ws.tickets for r in t["contacts"]["contacts"]},
    }


KEY_COLUMNS = {
    "data_attributes": "model, full_name",
    "conversation_parts": "conversation_id, id",
    "ticket_parts": "ticket_id, id",
    "contacts__tags": "contact_id, id",
    "contacts__companies": "contact_id, id",
    "companies__segments": "company_id, id",
    "companies__tags": "company_id, id",
    "conversations__contacts": "conversation_id, id",
    "conversations__teammates": "conversation_id, id",
    "conversations__tags": "conversation_id, id",
    "teams__admins": "team_id, admin_id",
    "tickets__contacts": "ticket_id, id",
}


def _sync(server: ReplayServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str]) -> tuple[int, str, Path]:
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", TOKEN)
    duckdb_file = tmp_path / "replay.duckdb"
    rc = main([
        "run", "--base-url", server.base_url, "--intercom-version", server.workspace.version,
        "--duckdb-path", str(duckdb_file), "--pipelines-dir", str(tmp_path / "dlt_pipelines"), "--no-progress",
    ])
    out = capsys.readouterr()
    return rc, out.out + out.err, duckdb_file


def test_every_replayed_record_lands_typed(replay: ReplayServer, tmp_path, monkeypatch, capsys) -> None:
    ws = replay.workspace
    rc, output, duckdb_file = _sync(replay, tmp_path, monkeypatch, capsys)
    assert rc == 0, output
    assert replay.versions_seen == {ws.version}
    assert TOKEN not in output

    con = duckdb.connect(str(duckdb_file), read_only=True)
    try:
        for table, expected in expected_rows(ws).items():
            keys = KEY_COLUMNS.get(table, "id")
            rows = [tuple(str(v) for v in row) for row in con.execute(f"select {keys} from {DATASET}.{table}").fetchall()]
            assert len(rows) == len(set(rows)), f"{table}: duplicate rows"
            assert set(rows) == expected, f"{table}: landed {sorted(set(rows) ^ expected)} differently"
        rejects = [t for (t,) in con.execute(
            "select table_name from information_schema.tables where table_schema = ? and table_name like '%reject%'",
            [DATASET]).fetchall()]
        for table in rejects:
            assert con.execute(f"select count(*) from {DATASET}.{table}").fetchone() == (0,), table

        types = {(t, c): dt for t, c, dt in con.execute(
            "select table_name, column_name, data_type from information_schema.columns where table_schema = ?",
            [DATASET]).fetchall()}
        timestamp_columns = {k: dt for k, dt in types.items()
                             if k[1].endswith("_at") or k[1] in ("waiting_since", "snoozed_until")}
        assert {k: dt for k, dt in timestamp_columns.items() if dt != TIMESTAMPTZ} == {}
        for must in (("contacts", "signed_up_at"), ("contacts", "last_seen_at"), ("companies", "remote_created_at"),
                     ("conversations", "waiting_since"), ("conversations", "statistics__last_close_at"),
                     ("conversations", "first_contact_reply__created_at"), ("conversation_parts", "notified_at"),
                     ("tickets", "updated_at"), ("ticket_parts", "created_at"), ("activity_logs", "created_at"),
                     ("segments", "updated_at"), ("data_attributes", "created_at")):
            assert timestamp_columns.get(must) == TIMESTAMPTZ, must

        for model, attributes in CUSTOM_TYPES.items():
            for name, data_type in attributes.items():
                column = (MODEL_TABLE[model], CUSTOM_COLUMNS[name])
                assert types.get(column) == DUCKDB_TYPE[data_type], (column, types.get(column))
        # values sent as a whole number and as Unix seconds land as the declared double and timestamp
        churn, trial = con.execute(
            f"select custom_churn_risk, epoch(custom_trial_ends) from {DATASET}.contacts where id = ?",
            [ws.contacts[0]["id"]]).fetchone()
        assert churn == 3.0 and trial == ws.contacts[0]["custom_attributes"]["Trial ends"]
    finally:
        con.close()

    # the oddities were exercised: the 11th tag through the relation list, every company's
    # segments, each conversation's and ticket's detail, and a scroll that ended on an empty page
    assert replay.requests["GET /contacts/{id}/tags"] == 1
    assert replay.requests["GET /companies/{id}/segments"] == len(ws.companies)
    assert replay.requests["GET /conversations/{id}"] == len(ws.conversations)
    assert replay.requests["GET /tickets/{id}"] == len(ws.tickets)
    assert replay.requests["GET /companies/scroll"] == -(-len(ws.companies) // replay.page_size) + 1
    assert replay.requests["POST /contacts/search"] >= -(-len(ws.contacts) // replay.page_size)


def test_every_replayed_record_names_its_capture(replay: ReplayServer) -> None:
    """No record without evidence: each one notes the public capture whose shape it follows."""
    ws = replay.workspace
    served = {("me", ws.me["id"])}
    for kind in ("admins", "teams", "tags", "segments", "activity_logs", "companies", "contacts", "conversations",
                 "tickets"):
        served |= {(kind, str(r["id"])) for r in getattr(ws, kind)}
    served |= {("data_attributes", f"{m}:{a['full_name']}") for m, attrs in ws.data_attributes.items() for a in attrs}
    assert served == set(ws.follows)

"""`intercom-sync run` (every stream, DuckDB) against records in the shapes real Intercom sends.

The emulator shares the connector's assumptions; these records do not (see `captures.py`). A
first sync of them must exit 0 and land every record exactly, with timestamps typed and custom
attributes typed from GET /data_attributes, on each version the records exist for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from intercom_elt.pipelines.cli import main
from tests.replay.records import ADMIN_IDS, CUSTOM_TYPES, TEAM_IDS, Workspace
from tests.replay.server import TOKEN, ReplayServer
from tests.replay.workspace import CONVERSATION_IDS, TICKET_IDS

DATASET = "intercom_data"
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


@dataclass
class Loaded:
    """A destination after a sync: SQL in DuckDB's `?` style, types as information_schema names them."""

    rows: Callable[[str, Sequence[object]], list[tuple]]
    dataset: str
    type_names: dict[str, str]  # Intercom data_type / "timestamp" -> the destination's type name


DUCKDB_TYPES = {"string": "VARCHAR", "integer": "BIGINT", "float": "DOUBLE", "boolean": "BOOLEAN",
                "date": "TIMESTAMP WITH TIME ZONE", "timestamp": "TIMESTAMP WITH TIME ZONE"}
POSTGRES_TYPES = {"string": "character varying", "integer": "bigint", "float": "double precision",
                  "boolean": "boolean", "date": "timestamp with time zone", "timestamp": "timestamp with time zone"}


def _sync(server: ReplayServer, capsys: pytest.CaptureFixture[str], target: list[str]) -> tuple[int, str]:
    """`intercom-sync run` with every stream, as a user runs it (token from the environment)."""
    rc = main(["run", "--base-url", server.base_url, "--intercom-version", server.workspace.version,
               "--no-progress", *target])
    out = capsys.readouterr()
    assert TOKEN not in out.out + out.err
    return rc, out.out + out.err


def assert_landed_typed(ws: Workspace, loaded: Loaded) -> None:
    """Every served record exactly once, timestamps as timestamptz, custom attributes as declared."""
    ds = loaded.dataset
    for table, expected in expected_rows(ws).items():
        keys = KEY_COLUMNS.get(table, "id")
        rows = [tuple(str(v) for v in row) for row in loaded.rows(f'select {keys} from "{ds}"."{table}"', ())]
        assert len(rows) == len(set(rows)), f"{table}: duplicate rows"
        assert set(rows) == expected, f"{table}: landed {sorted(set(rows) ^ expected)} differently"
    for (table,) in loaded.rows(
        "select table_name from information_schema.tables where table_schema = ? and table_name like '%reject%'",
        (ds,),
    ):
        assert loaded.rows(f'select count(*) from "{ds}"."{table}"', ()) == [(0,)], table

    types = {(t, c): dt for t, c, dt in loaded.rows(
        "select table_name, column_name, data_type from information_schema.columns where table_schema = ?", (ds,))}
    timestamptz = loaded.type_names["timestamp"]
    timestamp_columns = {k: dt for k, dt in types.items()
                         if k[1].endswith("_at") or k[1] in ("waiting_since", "snoozed_until")}
    assert {k: dt for k, dt in timestamp_columns.items() if dt != timestamptz} == {}
    for must in (("contacts", "signed_up_at"), ("contacts", "last_seen_at"), ("companies", "remote_created_at"),
                 ("conversations", "waiting_since"), ("conversations", "statistics__last_close_at"),
                 ("conversations", "first_contact_reply__created_at"), ("conversation_parts", "notified_at"),
                 ("tickets", "updated_at"), ("ticket_parts", "created_at"), ("activity_logs", "created_at"),
                 ("segments", "updated_at"), ("data_attributes", "created_at")):
        assert timestamp_columns.get(must) == timestamptz, must

    for model, attributes in CUSTOM_TYPES.items():
        for name, data_type in attributes.items():
            if name in CUSTOM_COLUMNS:
                column = (MODEL_TABLE[model], CUSTOM_COLUMNS[name])
                assert types.get(column) == loaded.type_names[data_type], (column, types.get(column))
    # unassigned is NULL whether the version sent null, 0 (2.16) or "0" (tickets before 2.16)
    conversations = {r[0]: r[1:] for r in loaded.rows(
        f'select id, admin_assignee_id, team_assignee_id from "{ds}".conversations', ())}
    assert conversations == {CONVERSATION_IDS[0]: (None, int(TEAM_IDS[0])), CONVERSATION_IDS[1]: (int(ADMIN_IDS[0]), None),
                             CONVERSATION_IDS[2]: (None, None)}
    tickets = {r[0]: r[1:] for r in loaded.rows(f'select id, admin_assignee_id, team_assignee_id from "{ds}".tickets', ())}
    assert tickets == {TICKET_IDS[0]: (None, None), TICKET_IDS[1]: (ADMIN_IDS[2], None)}
    # "Plan tier" and "plan_tier" snake-case alike: two columns, neither value overwritten
    plan_columns = sorted(c for t, c in types if t == "contacts" and c.startswith("custom_plan_tier"))
    assert len(plan_columns) == 2 and "custom_plan_tier" in plan_columns, plan_columns
    [values] = loaded.rows(f'select {", ".join(plan_columns)} from "{ds}".contacts where id = ?', (ws.contacts[0]["id"],))
    assert sorted(values) == ["legacy", "pro"]
    # values sent as a whole number and as Unix seconds land as the declared double and timestamp
    [(churn, trial)] = loaded.rows(
        f"select custom_churn_risk, date_part('epoch', custom_trial_ends) from \"{ds}\".contacts where id = ?",
        (ws.contacts[0]["id"],))
    assert churn == 3.0 and int(trial) == ws.contacts[0]["custom_attributes"]["Trial ends"]


def assert_oddities_exercised(server: ReplayServer) -> None:
    """The 11th tag came through the relation list, every company's segments and every detail
    were read, the scroll ended on an empty page, and only the records' version was asked for."""
    ws = server.workspace
    assert server.versions_seen == {ws.version}
    assert server.requests["GET /contacts/{id}/tags"] == 1
    assert server.requests["GET /companies/{id}/segments"] == len(ws.companies)
    assert server.requests["GET /conversations/{id}"] == len(ws.conversations)
    assert server.requests["GET /tickets/{id}"] == len(ws.tickets)
    assert server.requests["GET /companies/scroll"] == -(-len(ws.companies) // server.page_size) + 1
    assert server.requests["POST /contacts/search"] >= -(-len(ws.contacts) // server.page_size)


def test_every_replayed_record_lands_typed_in_duckdb(
    replay: ReplayServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", TOKEN)
    duckdb_file = tmp_path / "replay.duckdb"
    rc, output = _sync(replay, capsys, ["--duckdb-path", str(duckdb_file),
                                        "--pipelines-dir", str(tmp_path / "dlt_pipelines")])
    assert rc == 0, output
    con = duckdb.connect(str(duckdb_file), read_only=True)
    try:
        assert_landed_typed(replay.workspace, Loaded(lambda sql, params: con.execute(sql, list(params)).fetchall(),
                                                     DATASET, DUCKDB_TYPES))
    finally:
        con.close()
    assert_oddities_exercised(replay)


@pytest.mark.postgres
def test_every_replayed_record_lands_typed_in_postgres(
    replay: ReplayServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    postgres_credentials: str, postgres_dataset: str,
) -> None:
    import psycopg2

    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_credentials)
    rc, output = _sync(replay, capsys, ["--destination", "postgres", "--dataset", postgres_dataset,
                                        "--pipelines-dir", str(tmp_path / "dlt_pipelines")])
    assert rc == 0, output
    conn = psycopg2.connect(postgres_credentials)

    def rows(sql: str, params: Sequence[object]) -> list[tuple]:
        with conn.cursor() as cur:
            cur.execute(sql.replace("%", "%%").replace("?", "%s"), tuple(params))
            return [tuple(r) for r in cur.fetchall()]

    try:
        assert_landed_typed(replay.workspace, Loaded(rows, postgres_dataset, POSTGRES_TYPES))
    finally:
        conn.close()
    assert_oddities_exercised(replay)


def test_every_replayed_record_names_its_capture(replay: ReplayServer) -> None:
    """No record without evidence: each one notes the public capture whose shape it follows."""
    ws = replay.workspace
    served = {("me", ws.me["id"])}
    for kind in ("admins", "teams", "tags", "segments", "activity_logs", "companies", "contacts", "conversations",
                 "tickets"):
        served |= {(kind, str(r["id"])) for r in getattr(ws, kind)}
    served |= {("data_attributes", f"{m}:{a['full_name']}") for m, attrs in ws.data_attributes.items() for a in attrs}
    assert served == set(ws.follows)

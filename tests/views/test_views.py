"""Analyst views: exact metrics of a hand-built scenario, the Fivetran-compatible layer's columns and
types, DuckDB == Postgres, tolerance of missing/optional columns, the CLI and the README queries."""

from __future__ import annotations

import datetime as dt
import re
import statistics
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from intercom_elt.pipelines import views
from intercom_elt.pipelines.cli import main
from tests.views.conftest import ADMIN_1, ADMIN_2, LONG_PARTS, TEAM, Scenario, Warehouse, sync

README = Path(__file__).resolve().parents[2] / "README.md"

# Fivetran's documented columns (connector schema / dbt_intercom_source src_intercom.yml and
# get_*_columns macros / dbt_intercom staging models) with the type family they have there.
BOOKKEEPING = {"_fivetran_synced": "ts", "_fivetran_deleted": "bool"}
HISTORY = {**BOOKKEEPING, "_fivetran_active": "bool", "_fivetran_start": "ts", "_fivetran_end": "ts"}
FIVETRAN_COLUMNS: dict[str, dict[str, str]] = {
    "admin": {"id": "text", "name": "text", "email": "text", "job_title": "text", **BOOKKEEPING},
    "team": {"id": "int", "name": "text", **BOOKKEEPING},
    "team_admin": {"team_id": "int", "admin_id": "text", **BOOKKEEPING},
    "tag": {"id": "int", "name": "text", **BOOKKEEPING},
    "company_history": {
        "id": "text", "company_id": "text", "name": "text", "website": "text", "industry": "text",
        "created_at": "ts", "updated_at": "ts", "user_count": "int", "session_count": "int",
        "monthly_spend": "number", "plan_id": "int", "plan_name": "text", **HISTORY,
    },
    "contact_history": {
        "id": "text", "admin_id": "text", "created_at": "ts", "updated_at": "ts", "signed_up_at": "ts",
        "name": "text", "role": "text", "email": "text", "last_replied_at": "ts", "last_contacted_at": "ts",
        "last_email_clicked_at": "ts", "last_email_opened_at": "ts", "unsubscribed_from_emails": "bool",
        **HISTORY,
    },
    "conversation_history": {
        "id": "int", "created_at": "ts", "updated_at": "ts", "assignee_id": "text", "assignee_type": "text",
        "conversation_rating_value": "int", "conversation_rating_remark": "text",
        "first_contact_reply_created_at": "ts", "first_contact_reply_type": "text", "read": "bool",
        "source_author_id": "text", "source_author_type": "text", "source_body": "text",
        "source_delivered_as": "text", "source_type": "text", "source_subject": "text", "state": "text",
        "waiting_since": "ts", "snoozed_until": "ts", "sla_name": "text", "sla_status": "text",
        "statistics_first_admin_reply_at": "ts", "statistics_time_to_admin_reply": "int",
        "statistics_count_reopens": "int", "statistics_last_close_at": "ts", **HISTORY,
    },
    "conversation_part_history": {
        "id": "int", "part_type": "text", "body": "text", "conversation_id": "int", "author_id": "text",
        "author_type": "text", "created_at": "ts", "updated_at": "ts", "notified_at": "ts",
        "assigned_to_id": "int", "assigned_to_type": "text", "conversation_updated_at": "ts", **HISTORY,
    },
    "contact_company_history": {"company_id": "text", "contact_id": "text", "contact_updated_at": "ts", **HISTORY},
    "contact_tag_history": {"contact_id": "text", "tag_id": "int", "contact_updated_at": "ts", **HISTORY},
    "company_tag_history": {"company_id": "text", "tag_id": "int", "company_updated_at": "ts", **HISTORY},
    "conversation_tag_history": {
        "conversation_id": "int", "tag_id": "int", "conversation_updated_at": "ts", **HISTORY,
    },
    "conversation_contact_history": {
        "conversation_id": "int", "contact_id": "text", "conversation_updated_at": "ts", **HISTORY,
    },
}  # fmt: skip
TYPE_FAMILIES = {
    "text": {"varchar", "character varying", "text"},
    "int": {"bigint"},
    "ts": {"timestamp with time zone"},
    "bool": {"boolean"},
    "number": {"double", "double precision", "numeric"},
}


def _ts(t0: int, offset: int) -> float:
    return float(t0 + offset)


def _norm(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, (Decimal, float)):
        return round(float(value), 6)
    return value


def _metrics(wh: Warehouse, conversation_id: str) -> dict[str, Any]:
    rows = wh.dicts(f"select * from {{ds}}.conversation_metrics where conversation_id = '{conversation_id}'")
    assert len(rows) == 1
    return {k: _norm(v) for k, v in rows[0].items()}


# ----------------------------------------------------------------------------- scenario


def test_scenario_conversation_metrics_are_exact(wh: Warehouse, scenario: Scenario) -> None:
    m = _metrics(wh, scenario.conversation_id)
    t0 = scenario.t0
    expected = {
        "conversation_created_at": _ts(t0, 0),
        "conversation_state": "closed",
        "admin_assignee_id": ADMIN_2,
        "team_assignee_id": TEAM,
        "source_author_type": "user",
        "first_contact_author_id": scenario.contact_id,
        "last_contact_author_id": scenario.contact_id,
        "first_contact_reply_at": _ts(t0, 3000),  # parts only: the opening message is not a reply
        "last_contact_reply_at": _ts(t0, 4800),
        "first_assignment_at": _ts(t0, 120),
        "last_assignment_at": _ts(t0, 3300),
        "first_admin_response_at": _ts(t0, 905),  # the note at 600 does not count
        "last_admin_response_at": _ts(t0, 5400),
        "first_admin_response_by_id": ADMIN_1,
        "first_reopen_at": _ts(t0, 2400),
        "last_reopen_at": _ts(t0, 2400),
        "first_close_at": _ts(t0, 4200),  # the bot's close
        "first_close_by_type": "bot",
        "last_close_at": _ts(t0, 6000),
        "last_close_by_id": ADMIN_2,
        "last_close_by_type": "admin",
        "first_admin_close_at": _ts(t0, 6000),  # bots are not admins
        "last_admin_close_at": _ts(t0, 6000),
        "first_close_by_admin_id": ADMIN_2,
        "last_close_by_admin_id": ADMIN_2,
        "first_team_id": TEAM,
        "last_team_id": TEAM,
        "count_total_parts": 13,
        "count_contact_replies": 2,
        "count_admin_responses": 3,  # two comments + the assignment with a body
        "count_bot_replies": 1,
        "count_notes": 1,
        "count_assignments": 3,
        "count_reopens": 1,
        "count_closes": 2,
        "conversation_rating": 4,
        "conversation_rating_remark": "Great help",
        "conversation_rated_at": _ts(t0, 6060),
        "rated_teammate_id": ADMIN_2,
        "time_to_first_assignment_minutes": 2.0,
        "time_to_last_assignment_minutes": 55.0,
        "time_to_first_response_minutes": 15.08,  # 905 s
        "time_to_first_close_minutes": 50.0,  # first contact reply (3000) -> first admin close (6000)
        "time_to_last_close_minutes": 50.0,
        "time_to_first_close_any_minutes": 20.0,  # -> the bot's close at 4200
        "time_to_last_close_any_minutes": 50.0,
        "parts_total_count": 13,
        "parts_returned_count": 13,
        "parts_truncated": False,
    }
    assert {k: m[k] for k in expected} == expected


def test_truncated_conversation_is_flagged(wh: Warehouse, scenario: Scenario) -> None:
    m = _metrics(wh, scenario.long_conversation_id)
    assert m["parts_truncated"] is True
    assert (m["parts_total_count"], m["parts_returned_count"], m["count_total_parts"]) == (
        LONG_PARTS,
        500,
        500,
    )


def test_scenario_in_fivetran_conversation_history(wh: Warehouse, scenario: Scenario) -> None:
    rows = wh.dicts(f"select * from {{ft}}.conversation_history where id = {scenario.conversation_id}")
    assert len(rows) == 1
    row = rows[0]
    assert (row["assignee_id"], row["assignee_type"], row["team_assignee_id"]) == (
        ADMIN_2,
        "admin",
        int(TEAM),
    )
    assert (row["conversation_rating_value"], row["conversation_rating_remark"]) == (4, "Great help")
    assert (row["source_author_type"], row["source_author_id"]) == ("user", scenario.contact_id)
    assert row["state"] == "closed" and row["statistics_count_reopens"] == 1
    assert row["_fivetran_active"] is True and row["_fivetran_deleted"] is False
    assert row["_fivetran_end"].year == 9999
    assert row["_fivetran_start"] == row["updated_at"]
    assert row["_fivetran_synced"] is not None
    parts = wh.dicts(
        "select part_type, author_type, author_id, assigned_to_type, assigned_to_id from {ft}.conversation_part_history "
        f"where conversation_id = {scenario.conversation_id} order by created_at"
    )
    assert [p["part_type"] for p in parts][:3] == ["assignment", "assignment", "note"]
    assert (parts[0]["assigned_to_type"], parts[0]["assigned_to_id"]) == ("team", int(TEAM))
    assert parts[4]["author_type"] == "bot"


# ----------------------------------------------------------------------------- fivetran layer


def test_every_fivetran_view_exists_with_documented_columns(wh: Warehouse) -> None:
    assert wh.views_line and "13 Fivetran-compatible" in wh.views_line, wh.views_line
    for view, documented in FIVETRAN_COLUMNS.items():
        cols = wh.columns(wh.fivetran, view)
        assert cols, f"{wh.fivetran}.{view} missing"
        for name, family in documented.items():
            assert name in cols, f"{view}.{name} missing"
            assert cols[name] in TYPE_FAMILIES[family], f"{view}.{name} is {cols[name]}, want {family}"
        assert wh.rows(f"select count(*) from {{ft}}.{view}")[0][0] > 0, view


def test_custom_attributes_are_passed_through(wh: Warehouse) -> None:
    for view, table in (
        ("contact_history", "contacts"),
        ("company_history", "companies"),
        ("conversation_history", "conversations"),
    ):
        base = {c for c in wh.columns(wh.dataset, table) if c.startswith("custom_")}
        assert base, table
        assert base <= set(wh.columns(wh.fivetran, view)), view


def test_fivetran_package_joins_type_check(wh: Warehouse) -> None:
    """The joins dbt_intercom makes between these tables run (same types on both sides) and match."""
    checks = {
        "parts->conversation": "select count(*) from {ft}.conversation_part_history p "
        "join {ft}.conversation_history c on c.id = p.conversation_id",
        "conversation->admin": "select count(*) from {ft}.conversation_history c "
        "join {ft}.admin a on a.id = c.assignee_id where c.assignee_type = 'admin'",
        "team_admin->team,admin": "select count(*) from {ft}.team_admin ta join {ft}.team t on t.id = ta.team_id "
        "join {ft}.admin a on a.id = ta.admin_id",
        "contact_tag->tag": "select count(*) from {ft}.contact_tag_history x join {ft}.tag t on t.id = x.tag_id",
        "conversation_tag->tag": "select count(*) from {ft}.conversation_tag_history x join {ft}.tag t on t.id = x.tag_id",
        "company_tag->company": "select count(*) from {ft}.company_tag_history x "
        "join {ft}.company_history c on c.id = x.company_id",
        "contact_company->contact": "select count(*) from {ft}.contact_company_history x "
        "join {ft}.contact_history c on c.id = x.contact_id",
        "conversation_contact->contact": "select count(*) from {ft}.conversation_contact_history x "
        "join {ft}.contact_history c on c.id = x.contact_id "
        "join {ft}.conversation_history v on v.id = x.conversation_id",
        "active filter": "select count(*) from {ft}.conversation_history where _fivetran_active",
    }
    for name, sql in checks.items():
        assert wh.rows(sql)[0][0] > 0, name
    n_parts = wh.rows("select count(*) from {ds}.conversation_parts")[0][0]
    assert wh.rows(checks["parts->conversation"])[0][0] == n_parts


# ----------------------------------------------------------------------------- admin / company metrics


def _half_up(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _median(values: list[float]) -> float | None:
    return _half_up(statistics.median(Decimal(str(v)) for v in values)) if values else None


def test_admin_metrics_agree_with_conversation_metrics(wh: Warehouse) -> None:
    convs = [{k: _norm(v) for k, v in r.items()} for r in wh.dicts("select * from {ds}.conversation_metrics")]
    rows = wh.dicts("select * from {ds}.admin_metrics")
    admins = {r[0] for r in wh.rows("select id from {ds}.admins")}
    assert {r["admin_id"] for r in rows} == admins
    memberships = {(str(a), str(t)) for t, a in wh.rows("select team_id, admin_id from {ft}.team_admin")}
    for row in rows:
        if row["team_id"] is not None:
            assert (row["admin_id"], row["team_id"]) in memberships
        mine = [c for c in convs if c["admin_assignee_id"] == row["admin_id"]]
        assert row["total_conversations"] == len(mine)
        assert row["total_conversations_closed"] == sum(c["conversation_state"] == "closed" for c in mine)
        firsts = [
            c["time_to_first_response_minutes"]
            for c in mine
            if c["time_to_first_response_minutes"] is not None
        ]
        assert _norm(row["median_time_to_first_response_time_minutes"]) == _median(firsts)
        ratings = [c["conversation_rating"] for c in mine if c["conversation_rating"] is not None]
        want = _half_up(Decimal(sum(ratings)) / len(ratings)) if ratings else None
        assert _norm(row["average_conversation_rating"]) == want
        assert row["total_conversations_closed_by_admin"] == sum(
            c["last_close_by_admin_id"] == row["admin_id"] for c in convs
        )
    assert any(r["total_conversations"] for r in rows)


def test_company_metrics_agree_with_conversation_metrics(wh: Warehouse) -> None:
    convs = {
        r["conversation_id"]: {k: _norm(v) for k, v in r.items()}
        for r in wh.dicts("select * from {ds}.conversation_metrics")
    }
    links = wh.rows(
        "select distinct k.conversation_id, cc.id from {ds}.conversations__contacts k "
        "join {ds}.contacts__companies cc on cc.contact_id = k.id"
    )
    by_company: dict[str, set[str]] = {}
    for conv, company in links:
        by_company.setdefault(company, set()).add(conv)
    rows = wh.dicts("select * from {ds}.company_metrics")
    assert len(rows) == wh.rows("select count(*) from {ds}.companies")[0][0]
    for row in rows:
        mine = [convs[c] for c in by_company.get(row["company_id"], ()) if c in convs]
        assert row["total_conversations"] == len(mine), row["company_id"]
        closes = [
            c["time_to_last_close_minutes"] for c in mine if c["time_to_last_close_minutes"] is not None
        ]
        assert _norm(row["median_time_to_last_close_minutes"]) == _median(closes)
        reopens = [c["count_reopens"] for c in mine]
        assert _norm(row["median_conversations_reopened"]) == _median(reopens)
    assert any(r["total_conversations"] for r in rows)


# ----------------------------------------------------------------------------- duckdb == postgres


def _all_rows(wh: Warehouse, schema: str, view: str) -> list[dict[str, Any]]:
    cols = [c for c in wh.columns(schema, view) if c not in ("_fivetran_synced", "_fivetran_start")]
    sql = f'select {", ".join(chr(34) + c + chr(34) for c in cols)} from "{schema}"."{view}"'
    rows = [dict(zip(cols, (_norm(v) for v in r), strict=True)) for r in wh.rows(sql)]
    return sorted(rows, key=lambda r: repr(tuple(r.values())))


def _assert_same(a: list[dict[str, Any]], b: list[dict[str, Any]], what: str) -> None:
    assert len(a) == len(b), what
    for ra, rb in zip(a, b, strict=True):
        diff = {k: (ra[k], rb.get(k)) for k in ra if ra[k] != rb.get(k)}
        assert not diff, f"{what}: {diff}"


@pytest.mark.postgres
def test_duckdb_and_postgres_give_identical_views(duck: Warehouse, pg: Warehouse) -> None:
    for view in views.METRIC_VIEWS:
        assert duck.columns(duck.dataset, view).keys() == pg.columns(pg.dataset, view).keys(), view
        _assert_same(_all_rows(duck, duck.dataset, view), _all_rows(pg, pg.dataset, view), view)
    for view in views.FIVETRAN_VIEWS:
        assert duck.columns(duck.fivetran, view).keys() == pg.columns(pg.fivetran, view).keys(), view
        _assert_same(_all_rows(duck, duck.fivetran, view), _all_rows(pg, pg.fivetran, view), view)


# ----------------------------------------------------------------------------- README


def readme_queries() -> list[str]:
    text = README.read_text()
    section = text.split("## Analyst views", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.S)


def test_readme_analyst_queries_run(wh: Warehouse) -> None:
    queries = readme_queries()
    assert len(queries) >= 3
    for sql in queries:
        sql = sql.replace("intercom_data_fivetran.", "{ft}.").replace("intercom_data.", "{ds}.")
        cols, rows = wh.query(sql)
        assert cols and rows, sql


# ----------------------------------------------------------------------------- CLI


def test_views_command_recreates_views(
    duck: Warehouse, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        [
            "views",
            "--duckdb-path",
            str(duck.duckdb_path),
            "--dataset",
            duck.dataset,
            "--pipelines-dir",
            str(tmp_path / "p"),
            "--pipeline-name",
            "views_cli",
        ]
    )
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "Views: 13 Fivetran-compatible in 'intercom_data_fivetran', 3 metric views" in out.out


def test_views_command_rejects_bad_schema(
    duck: Warehouse, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        ["views", "--duckdb-path", str(duck.duckdb_path), "--pipelines-dir", str(tmp_path / "p"),
         "--fivetran-schema", "bad-name"]
    )  # fmt: skip
    out = capsys.readouterr()
    assert rc == 2
    assert out.err.startswith("error: invalid schema name 'bad-name'")


def test_run_with_no_views_creates_none(scenario: Scenario, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", scenario.emu.token)
    db = tmp_path / "w.duckdb"
    argv = ["run", "--base-url", scenario.emu.base_url, "--duckdb-path", str(db), "--pipelines-dir",
            str(tmp_path / "p"), "--no-progress", "--no-views", "--streams", "admins,teams"]  # fmt: skip
    rc = main(argv)
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "Views:" not in out.out
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert (
            con.execute(
                "select count(*) from information_schema.tables where table_type = 'VIEW'"
            ).fetchone()[0]
            == 0
        )
    finally:
        con.close()
    rc = main(argv[:-3] + ["--streams", "admins,teams"])  # default: views after the run
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "Views: 3 Fivetran-compatible in 'intercom_data_fivetran', 0 metric views" in out.out
    assert "skipped" in out.out


# ----------------------------------------------------------------------------- optional columns


def _mini_dataset(con: duckdb.DuckDBPyConnection, ds: str) -> None:
    con.execute(f"create schema {ds}")
    con.execute(
        f"create table {ds}.conversations (id varchar, created_at timestamptz, state varchar, "
        "_dlt_load_id varchar, _dlt_id varchar)"
    )
    con.execute(
        f"create table {ds}.conversation_parts (id varchar, conversation_id varchar, part_type varchar, "
        "created_at timestamptz)"
    )
    con.execute(
        f"create table {ds}.contacts (id varchar, updated_at timestamptz, custom_tier varchar, is_deleted boolean, "
        "_dlt_valid_from timestamptz, _dlt_valid_to timestamptz, _dlt_load_id varchar, _dlt_id varchar)"
    )
    con.execute(f"create table {ds}.teams (id varchar, name varchar)")
    con.execute(f"create table {ds}.tags (id varchar, name varchar, _deleted_at timestamptz)")
    con.execute(
        f"insert into {ds}.conversations values ('1', '2024-01-01 00:00:00+00', 'closed', 'l1', 'd1');"
        f"insert into {ds}.conversation_parts values ('10', '1', 'close', '2024-01-01 00:30:00+00');"
        f"insert into {ds}.contacts values ('c1', '2024-01-01 00:00:00+00', 'gold', true, '2024-01-01 00:00:00+00', null, 'l1', 'x1'),"
        "('c1', '2023-12-01 00:00:00+00', 'silver', false, '2023-12-01 00:00:00+00', '2024-01-01 00:00:00+00', 'l0', 'x0');"
        f"insert into {ds}.teams values ('7', 'T');"
        f"insert into {ds}.tags values ('5', 'gone', '2024-02-01 00:00:00+00'), ('6', 'kept', null);"
    )


def test_views_tolerate_missing_tables_and_columns(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ds = "mini"
    _mini_dataset(con, ds)
    result = views.create_views(lambda s: con.execute(s), lambda s: con.execute(s).fetchall(), dataset=ds)
    assert set(result.fivetran_views) == {
        "team", "tag", "contact_history", "conversation_history", "conversation_part_history",
    }  # fmt: skip
    assert result.metric_views == ["conversation_metrics"]
    assert "mini_fivetran.admin" in result.skipped and "admin_metrics" in result.skipped
    for view in result.fivetran_views:
        con.execute(f"select * from mini_fivetran.{view}").fetchall()
    hist = con.execute(
        "select custom_tier, _fivetran_active, _fivetran_deleted, _fivetran_end from mini_fivetran.contact_history "
        "order by _fivetran_start"
    ).fetchall()
    assert [(r[0], r[1], r[2], r[3].year) for r in hist] == [
        ("silver", False, False, 2024),
        ("gold", True, True, 9999),
    ]
    assert con.execute("select name, _fivetran_deleted from mini_fivetran.tag order by id").fetchall() == [
        ("gone", True), ("kept", False),
    ]  # fmt: skip
    m = con.execute(
        "select conversation_state, count_closes, first_close_at is not null, conversation_rating, "
        "time_to_first_close_any_minutes from mini.conversation_metrics"
    ).fetchone()
    assert m == ("closed", 1, True, None, None)  # no contact reply: no close duration
    # running again replaces everything (idempotent), and a new column appears in the views
    con.execute(f"alter table {ds}.contacts add column custom_seats bigint")
    views.create_views(lambda s: con.execute(s), lambda s: con.execute(s).fetchall(), dataset=ds)
    cols = [r[0] for r in con.execute("describe mini_fivetran.contact_history").fetchall()]
    assert "custom_seats" in cols
    con.close()


@pytest.mark.postgres
def test_full_refresh_with_views_in_postgres(pg: Warehouse, scenario: Scenario) -> None:
    """Postgres refuses to drop tables a view reads: a full refresh must still work, views re-created."""
    before = pg.rows("select count(*) from {ds}.conversation_metrics")[0][0]
    line = sync(scenario.emu, pg.target, full_refresh=True)
    assert line and "13 Fivetran-compatible" in line, line
    assert pg.rows("select count(*) from {ds}.conversation_metrics")[0][0] == before


def test_second_run_keeps_views(duck: Warehouse, scenario: Scenario) -> None:
    line = sync(scenario.emu, duck.target)
    assert line and "13 Fivetran-compatible" in line and "3 metric views" in line, line
    assert (
        duck.rows("select count(*) from {ft}.conversation_history")[0][0]
        == duck.rows("select count(*) from {ds}.conversations")[0][0]
    )


def test_schema_name_validation() -> None:
    assert views.fivetran_schema_name("intercom_data") == "intercom_data_fivetran"
    with pytest.raises(ValueError, match="invalid schema name"):
        views.fivetran_schema_name("x" * 60)
    assert views.fivetran_schema_name("x" * 60, "ft") == "ft"

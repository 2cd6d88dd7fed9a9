"""Soft deletes (small tables) and delete reconciliation (contacts, companies, conversations)."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pytest

from intercom_elt.pipelines.cli import main
from intercom_elt.pipelines.reconcile import reconcile_deletes
from intercom_elt.sources.intercom import deletes
from tests.datamodel.conftest import special_contact


def _deleted(sync, table: str) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
    return {r[0]: r[1] for r in sync.query(f"select id, _deleted_reason from {table} where _deleted_at is not null")}


def _mutate_deletes(ws) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Delete, merge and archive one contact each; delete an admin and a tag. Returns their ids."""
    special = special_contact(ws)
    contacts = [str(c) for c in ws.ids("contacts") if str(c) != special]
    leads = [c for c in contacts if ws.get("contacts", c)["role"] == "lead"]
    users = [c for c in contacts if ws.get("contacts", c)["role"] == "user"]
    ids = {"deleted": users[0], "archived": users[1], "merged": leads[0], "merge_target": users[2]}
    ws.clock.advance(60)
    ws.delete_contact(ids["deleted"])
    ws.archive_contact(ids["archived"])
    ws.merge_contacts(ids["merged"], ids["merge_target"])
    ids["admin"] = str(ws.ground_truth("admins")[-1]["id"])
    ws.delete_admin(ids["admin"])
    ids["tag"] = str(ws.ground_truth("tags")[-1]["id"])
    ws.delete_tag(ids["tag"])
    return ids


def test_small_tables_keep_and_mark_rows_that_disappear(sync) -> None:  # type: ignore[no-untyped-def]
    ws = sync.emu.workspace
    sync.run()
    assert _deleted(sync, "admins") == {} and _deleted(sync, "tags") == {}
    admins_before = dict(sync.query("select id, email from admins"))
    admin = str(ws.ground_truth("admins")[-1]["id"])
    tag = str(ws.ground_truth("tags")[-1]["id"])
    ws.delete_admin(admin)
    ws.delete_tag(tag)
    sync.run()
    assert _deleted(sync, "admins") == {admin: "missing_from_list"}
    assert _deleted(sync, "tags") == {tag: "missing_from_list"}
    assert dict(sync.query("select id, email from admins")) == admins_before  # kept whole, not blanked
    assert sync.rows_loaded().get("admins") == 1 and sync.rows_loaded().get("tags") == 1
    marked_at = sync.query(f"select _deleted_at from admins where id = '{admin}'")
    sync.run()  # nothing changed: nothing loaded, the mark keeps its time
    assert "admins" not in sync.rows_loaded() and "tags" not in sync.rows_loaded()
    assert sync.query(f"select _deleted_at from admins where id = '{admin}'") == marked_at
    for table in ("teams", "segments"):
        assert _deleted(sync, table) == {}


def test_reconciliation_marks_exactly_the_vanished_records(sync) -> None:  # type: ignore[no-untyped-def]
    ws = sync.emu.workspace
    sync.run()
    ids = _mutate_deletes(ws)
    client = sync.run()
    sync.emu.reset_log()
    results = reconcile_deletes(sync.pipeline, client)
    assert {r.model: r.marked for r in results} == {"contacts": {"deleted": 3}, "companies": {}, "conversations": {}}
    # 2.15 answers 404 for deleted, merged and archived contacts alike (see deletes.py)
    assert set(_deleted(sync, "contacts")) == {ids["deleted"], ids["archived"], ids["merged"]}
    assert {ws.contact_status(c) for c in _deleted(sync, "contacts")} == {"deleted", "archived", "merged"}
    assert _deleted(sync, "admins") == {ids["admin"]: "missing_from_list"}
    assert _deleted(sync, "tags") == {ids["tag"]: "missing_from_list"}
    for table in ("companies", "conversations", "teams", "segments"):
        assert _deleted(sync, table) == {}, table
    live = {str(c) for c in ws.ids("contacts")}
    assert {r[0] for r in sync.query("select id from contacts where _deleted_at is null")} == live
    # cost: ceil(N/150) GET /contacts + ceil(K/150) GET /conversations + one GET per vanished contact;
    # companies come from the run's scroll (no second scroll)
    log = sync.emu.request_log
    assert log["GET /contacts"] == math.ceil(len(live) / 150)
    assert log["GET /conversations"] == math.ceil(ws.count("conversations") / 150)
    assert log["GET /contacts/{id}"] == 3
    assert log.get("GET /companies/scroll", 0) == 0
    assert sum(log.values()) == deletes.reconciliation_cost(len(live), ws.count("companies"), ws.count("conversations"), 3)
    # a second reconciliation finds nothing new and keeps the first marks
    before = sync.query("select id, _deleted_at from contacts where _deleted_at is not null order by id")
    again = reconcile_deletes(sync.pipeline, client)
    assert all(not r.marked for r in again)
    assert sync.query("select id, _deleted_at from contacts where _deleted_at is not null order by id") == before


def test_reconciliation_without_companies_in_the_run_scrolls_once(sync) -> None:  # type: ignore[no-untyped-def]
    ws = sync.emu.workspace
    sync.run(streams=["contacts", "companies"])
    client = sync.run(streams=["contacts"])
    sync.emu.reset_log()
    results = reconcile_deletes(sync.pipeline, client, streams=["companies", "conversations"])
    assert [r.model for r in results] == ["companies", "conversations"]
    assert results[0].listed == ws.count("companies") and results[1].skipped == "table not loaded yet"
    assert sync.emu.request_log["GET /companies/scroll"] == math.ceil(ws.count("companies") / 50) + 1


def test_cli_run_reconcile_deletes(emu, tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", emu.token)
    monkeypatch.setenv("SOURCES__INTERCOM__START_DATE", "2024-06-01")
    db = tmp_path / "intercom.duckdb"
    argv = ["run", "--base-url", emu.base_url, "--duckdb-path", str(db), "--pipelines-dir", str(tmp_path / "p"),
            "--no-progress", "--no-views", "--streams", "contacts,companies,conversations,admins,tags"]
    assert main(argv) == 0
    ids = _mutate_deletes(emu.workspace)
    capsys.readouterr()
    assert main([*argv, "--reconcile-deletes"]) == 0
    out = capsys.readouterr().out
    assert "Deletes reconciled: contacts" in out and "3 deleted" in out
    con = duckdb.connect(str(db), read_only=True)
    try:
        marked = {r[0] for r in con.execute("select id from intercom_data.contacts where _deleted_at is not null").fetchall()}
        admins = {r[0] for r in con.execute("select id from intercom_data.admins where _deleted_at is not null").fetchall()}
    finally:
        con.close()
    assert marked == {ids["deleted"], ids["archived"], ids["merged"]} and admins == {ids["admin"]}


@pytest.mark.postgres
def test_reconciliation_on_postgres(pg_sync) -> None:  # type: ignore[no-untyped-def]
    ws = pg_sync.emu.workspace
    pg_sync.run(streams=["contacts", "companies", "conversations", "admins", "tags"])
    ids = _mutate_deletes(ws)
    client = pg_sync.run(streams=["contacts", "companies", "conversations", "admins", "tags"])
    reconcile_deletes(pg_sync.pipeline, client)
    assert set(_deleted(pg_sync, "contacts")) == {ids["deleted"], ids["archived"], ids["merged"]}
    assert set(_deleted(pg_sync, "admins")) == {ids["admin"]} and set(_deleted(pg_sync, "tags")) == {ids["tag"]}
    assert _deleted(pg_sync, "companies") == {} and _deleted(pg_sync, "conversations") == {}

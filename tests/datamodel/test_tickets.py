"""Tickets and ticket parts equal the emulator's ground truth."""

from __future__ import annotations

import pytest

from tests.datamodel.conftest import pairs

STREAMS = ["tickets", "ticket_parts"]


def _assert_tickets_match_truth(sync) -> None:  # type: ignore[no-untyped-def]
    ws = sync.emu.workspace
    truth = ws.ground_truth("tickets")
    rows = sync.query(
        "select id, ticket_id, cast(extract(epoch from updated_at) as bigint), ticket_state__id, ticket_state__category, "
        "ticket_state__internal_label, ticket_type__id, ticket_type__name, open, category from tickets"
    )
    assert sorted(rows) == sorted(
        (str(t["id"]), str(t["ticket_id"]), int(t["updated_at"]), str(t["ticket_state"]["id"]),
         t["ticket_state"]["category"], t["ticket_state"]["internal_label"], str(t["ticket_type"]["id"]),
         t["ticket_type"]["name"], t["open"], t["category"])
        for t in truth
    )
    assert pairs(sync.query("select ticket_id, id from tickets__contacts")) == {
        (str(t["id"]), str(c["id"])) for t in truth for c in t["contacts"]["contacts"]}
    parts = sync.query("select id, ticket_id, part_type, ticket_state from ticket_parts")
    assert sorted(parts) == sorted(
        (str(p["id"]), str(p["ticket_id"]), p["part_type"], p["ticket_state"]) for p in ws.ground_truth("ticket_parts")
    )
    assert sync.query("select id, parts_total_count from tickets") and all(
        n == len(ws.ticket_parts(i)) for i, n in sync.query("select id, parts_total_count from tickets"))


def test_tickets_equal_ground_truth(sync) -> None:  # type: ignore[no-untyped-def]
    sync.run(streams=STREAMS)
    _assert_tickets_match_truth(sync)
    log = sync.emu.request_log
    assert log["POST /tickets/search"] == 1
    assert log["GET /tickets/{id}"] == sync.emu.workspace.count("tickets")
    sync.run(streams=STREAMS)  # nothing changed: nothing loaded, no detail fetched
    assert not {"tickets", "ticket_parts"} & set(sync.rows_loaded())
    assert sync.emu.request_log.get("GET /tickets/{id}", 0) == 0


def test_tickets_without_parts(sync) -> None:  # type: ignore[no-untyped-def]
    sync.run(streams=["tickets"])
    assert sync.query("select count(*) from tickets") == [(sync.emu.workspace.count("tickets"),)]
    assert sync.emu.request_log.get("GET /tickets/{id}", 0) == 0


@pytest.mark.postgres
def test_tickets_on_postgres(pg_sync) -> None:  # type: ignore[no-untyped-def]
    pg_sync.run(streams=STREAMS)
    _assert_tickets_match_truth(pg_sync)

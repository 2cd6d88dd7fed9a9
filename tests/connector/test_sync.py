"""End-to-end syncs against the emulator over real HTTP into real DuckDB files."""

from __future__ import annotations

import logging
import math
import time
from collections import Counter

import pytest

from tests.connector.conftest import Sync

ALL_MERGED = ("contacts", "companies", "conversations", "activity_logs")
REPLACED = ("admins", "tags", "teams", "segments")


def _ids(sync: Sync, table: str) -> list[str]:
    return [r[0] for r in sync.query(f"select id from {table}")]


def _epoch(sync: Sync, table: str, column: str = "updated_at") -> dict[str, int]:
    return {r[0]: r[1] for r in sync.query(f"select id, cast(epoch({column}) as bigint) from {table}")}


def _assert_matches_truth(sync: Sync) -> None:
    ws = sync.emu.workspace
    for stream in ALL_MERGED + REPLACED:
        truth = ws.ground_truth(stream)
        ids = _ids(sync, stream)
        assert len(ids) == len(set(ids)), f"{stream}: duplicate ids"
        assert sorted(ids) == sorted(str(r["id"]) for r in truth), stream
    for stream in ("contacts", "companies", "conversations"):
        truth = {str(r["id"]): int(r["updated_at"]) for r in ws.ground_truth(stream)}
        assert _epoch(sync, stream) == truth, f"{stream}: updated_at differs"
    truth_logs = {str(r["id"]): int(r["created_at"]) for r in ws.ground_truth("activity_logs")}
    assert _epoch(sync, "activity_logs", "created_at") == truth_logs
    parts = sync.query("select id, conversation_id from conversation_parts")
    truth_parts = [(str(p["id"]), str(p["conversation_id"])) for p in ws.ground_truth("conversation_parts")]
    assert sorted(parts) == sorted(truth_parts)
    attrs = sync.query("select model, full_name from data_attributes")  # built-ins have no id
    assert sorted(attrs) == sorted((a["model"], a["full_name"]) for a in ws.ground_truth("data_attributes"))
    states = dict(sync.query("select id, state from conversations"))
    assert states == {str(c["id"]): c["state"] for c in ws.ground_truth("conversations")}


def test_full_sync_equals_ground_truth(sync: Sync) -> None:
    sync.run()
    _assert_matches_truth(sync)
    ws = sync.emu.workspace
    # envelope lists are child tables keyed by the parent id, complete beyond the 10 embedded (relations.py)
    contact_tags = Counter(r[0] for r in sync.query("select contact_id from contacts__tags"))
    assert contact_tags == Counter({str(c): len(ws.contact_tags(c)) for c in ws.ids("contacts") if ws.contact_tags(c)})
    tag_pairs = sorted(sync.query("select company_id, id from companies__tags"))
    assert tag_pairs == sorted((str(c["id"]), str(t["id"])) for c in ws.ground_truth("companies") for t in c["tags"]["tags"])
    conv_contacts = sorted(sync.query("select conversation_id, id from conversations__contacts"))
    assert conv_contacts == sorted(
        (str(c["id"]), str(x["id"])) for c in ws.ground_truth("conversations") for x in c["contacts"]["contacts"]
    )
    tables = {r[0] for r in sync.query("select table_name from information_schema.tables where table_schema='intercom'")}
    assert not {t for t in tables if t.endswith("__data")}, "envelope `data` leaked into a table name"
    # parts counts are visible on each conversation
    counts = dict((r[0], (r[1], r[2], r[3])) for r in sync.query(
        "select id, parts_total_count, parts_returned_count, parts_truncated from conversations"))
    for conv in ws.ground_truth("conversations"):
        n = len(ws.conversation_parts(conv["id"]))
        assert counts[str(conv["id"])] == (n, min(n, 500), n > 500)


def test_rerun_without_changes_loads_nothing_and_makes_minimal_requests(sync: Sync) -> None:
    sync.run()
    sync.run()
    assert sync.rows_loaded() == {t: n for t, n in sync.rows_loaded().items() if t in REPLACED + ("data_attributes",)}
    for stream in ALL_MERGED + ("conversation_parts",):
        assert stream not in sync.rows_loaded(), stream
    log = sync.emu.request_log
    assert log.get("GET /conversations/{id}", 0) == 0
    assert log["POST /contacts/search"] == 1
    assert log["POST /conversations/search"] == 1
    assert log["GET /companies/scroll"] == 2  # one page of 15 companies + the empty end page
    # one request per 5-day window from (cursor - lookback) to now: nothing more
    newest_log = max(int(r["created_at"]) for r in sync.emu.workspace.ground_truth("activity_logs"))
    windows = math.ceil((time.time() - (newest_log - 900)) / (5 * 86400))
    assert log["GET /admins/activity_logs"] == windows
    assert log["GET /me"] == 1 and log["GET /data_attributes"] == 3
    for path in ("GET /admins", "GET /tags", "GET /teams", "GET /segments"):
        assert log[path] == 1
    _assert_matches_truth(sync)


def test_incremental_after_mutations(sync: Sync) -> None:
    ws = sync.emu.workspace
    contacts = ws.ids("contacts")
    ws.update_contact(contacts[0], name="Before First Run")  # puts the cursor at "now"
    sync.run()
    ws.clock.advance(240)  # later the SAME day (in the workspace zone) as the cursor
    ws.update_contact(contacts[1], name="Renamed Later Same Day")
    open_conv = next(c for c in ws.ground_truth("conversations") if c["state"] == "open")
    other_conv = next(c for c in ws.ground_truth("conversations") if c["id"] != open_conv["id"])
    ws.close_conversation(open_conv["id"])
    new_part = ws.add_conversation_part(other_conv["id"], body="a new reply")
    client = sync.run()
    assert sync.emu.request_log["GET /conversations/{id}"] == 2
    assert client.stats.requests["GET /conversations/{id}"] == 2
    names = dict(sync.query("select id, name from contacts"))
    assert names[str(contacts[1])] == "Renamed Later Same Day"
    assert sync.query(f"select state from conversations where id = '{open_conv['id']}'") == [("closed",)]
    assert sync.query(f"select conversation_id from conversation_parts where id = '{new_part}'") == [(str(other_conv["id"]),)]
    _assert_matches_truth(sync)


def test_one_changed_conversation_fetches_one_detail(sync: Sync) -> None:
    ws = sync.emu.workspace
    sync.run(streams=["conversations", "conversation_parts"])
    ws.clock.advance(60)
    conv = ws.ids("conversations")[3]
    ws.add_conversation_part(conv, author_type="admin", body="follow-up")
    sync.run(streams=["conversations", "conversation_parts"])
    assert sync.emu.request_log["GET /conversations/{id}"] == 1
    assert sync.rows_loaded()["conversations"] == 1
    assert sync.rows_loaded()["conversation_parts"] == len(ws.conversation_parts(conv))  # every part, not only new


def test_record_hidden_by_search_lag_is_loaded_later(sync: Sync) -> None:
    ws = sync.emu.workspace
    sync.emu.configure(search_lag_seconds=120)
    sync.run(streams=["contacts"])
    contact = ws.ids("contacts")[5]
    ws.update_contact(contact, name="Lagging Update")
    sync.run(streams=["contacts"])  # invisible to search for 120 s
    assert dict(sync.query("select id, name from contacts"))[str(contact)] != "Lagging Update"
    ws.clock.advance(300)
    sync.run(streams=["contacts"])
    assert dict(sync.query("select id, name from contacts"))[str(contact)] == "Lagging Update"
    assert sorted(_ids(sync, "contacts")) == sorted(str(c["id"]) for c in ws.ground_truth("contacts"))


def test_truncated_conversation_is_flagged_with_true_total(sync: Sync) -> None:
    ws = sync.emu.workspace
    conv = ws.ids("conversations")[0]
    while len(ws.conversation_parts(conv)) < 510:
        ws.add_conversation_part(conv, body="spam")
    total = len(ws.conversation_parts(conv))
    sync.run(streams=["conversations", "conversation_parts"])
    row = sync.query(f"select parts_total_count, parts_returned_count, parts_truncated from conversations where id='{conv}'")
    assert row == [(total, 500, True)]
    loaded = {r[0] for r in sync.query(f"select id from conversation_parts where conversation_id='{conv}'")}
    truth = {str(p["id"]) for p in ws.ground_truth("conversation_parts") if str(p["conversation_id"]) == str(conv)}
    assert loaded == truth and len(loaded) == 500


def test_backfill_does_not_touch_scheduled_cursor(sync: Sync) -> None:
    sync.run(streams=["contacts", "conversations", "conversation_parts"])
    before = sync.pipeline.state["sources"]["intercom"]["resources"]
    before_copy = {k: dict(v) for k, v in before.items()}
    sync.run(streams=["contacts", "conversations", "conversation_parts"], start_date="2024-06-01", end_date="2025-01-01")
    after = sync.pipeline.state["sources"]["intercom"]["resources"]
    assert {k: dict(v) for k, v in after.items()} == before_copy
    assert sync.emu.request_log["POST /contacts/search"] >= 1


@pytest.mark.parametrize("stream", ["admins", "tags", "teams", "segments", "data_attributes"])
def test_single_stream_selection(sync: Sync, stream: str) -> None:
    sync.run(streams=[stream])
    assert {t.split("__")[0] for t in sync.rows_loaded()} == {stream}  # teams also load teams__admins
    assert sync.rows_loaded()[stream] == len(sync.emu.workspace.ground_truth(stream))


def test_streams_hand_pages_to_dlt_from_its_extract_pool(sync: Sync, caplog: pytest.LogCaptureFixture) -> None:
    """dlt 1.31 drops `parallelized=True` when a resource with an incremental argument is bound.
    The streams then ran one after another in dlt's main extract loop, and a stream waiting for
    its next page stalled every other one (the quota sat idle for seconds at a time)."""
    with caplog.at_level(logging.DEBUG, logger="intercom_elt.sources.intercom.streams"):
        sync.run()
    handed = [r.getMessage() for r in caplog.records if "pages handed to dlt" in r.getMessage()]
    streams = {m.split()[1].rstrip(":") for m in handed}
    assert {"contacts", "companies", "conversations", "activity_logs", "tickets"} <= streams
    assert [m for m in handed if m.endswith("MainThread")] == []

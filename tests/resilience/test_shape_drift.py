"""Shape drift: every valid record lands exactly once, every invalid one is kept aside, nothing else is lost.

The emulator serves list, search, scroll and activity-log pages with seeded shape drift
(`intercom_emulator/shape_drift.py`): optional fields dropped, objects nulled, strings and objects
swapped, envelope lists under the other key (valid: each must land as a row with all its child
rows), and records without `id` or without their cursor (invalid: each must be one row of
`_intercom_rejects`). The real CLI syncs every stream into a real DuckDB file and a real Postgres
schema; the warehouse is read through the database drivers and compared with the emulator's ground
truth, and the rejects with the emulator's log of what it served invalid.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from intercom_elt.pipelines.cli import main
from intercom_elt.pipelines.errors import EXIT_OK, EXIT_REJECTS
from intercom_elt.sources.intercom.settings import DEFAULT_LOOKBACK_SECONDS
from intercom_emulator.dump import PARTS_LIMIT
from intercom_emulator.shape_drift import ORIGINAL_ID_FIELD, Invalid
from intercom_emulator.testing import EmulatorServer
from tests.resilience.conftest import Target, Warehouse

# with these rates: every drifted stream has records without id and without cursor, and three
# companies without id on three scroll pages (5 a page)
FAULT_SEED = 24
DRIFT = {"shape_drift_rate": 0.5, "missing_id_rate": 0.12, "missing_cursor_rate": 0.12}
NO_DRIFT = dict.fromkeys(DRIFT, 0.0)
DRIFTED = ("contacts", "companies", "conversations", "tickets", "activity_logs")
CURSOR = {"activity_logs": "created_at"}
UNDRIFTED = ("admins", "tags", "teams", "segments")


# ------------------------------------------------------------------------ ground truth
def _listed(envelope: Any) -> list[dict[str, Any]]:
    """The elements of an envelope in the store, whatever key holds them."""
    if not isinstance(envelope, dict):
        return []
    return [e for key, items in envelope.items() if key not in ("url",) and isinstance(items, list) for e in items]


def _children(ws: Any, stream: str, record: dict[str, Any]) -> dict[str, list[str]]:
    """{child table: element ids} of one record, as the connector must store them."""
    rid = record["id"]
    if stream == "contacts":
        tags = record["tags"]["data"] if not record["tags"].get("has_more") else ws.contact_tags(rid)
        companies = record["companies"]["data"] if not record["companies"].get("has_more") else ws.contact_companies(rid)
        return {
            "contacts__tags": [str(t["id"]) for t in tags],
            "contacts__companies": [str(c["id"]) for c in companies],
            "contacts__notes": [str(n["id"]) for n in _listed(record.get("notes"))],
        }
    if stream == "companies":
        return {
            "companies__tags": [str(t["id"]) for t in _listed(record.get("tags"))],
            "companies__segments": [str(s["id"]) for s in ws.company_segments(rid)],
        }
    if stream == "conversations":
        return {
            "conversations__tags": [str(t["id"]) for t in _listed(record.get("tags"))],
            "conversations__contacts": [str(c["id"]) for c in _listed(record.get("contacts"))],
            "conversations__teammates": [str(a["id"]) for a in _listed(record.get("teammates"))],
            # Intercom returns the newest 500 parts (older ones loaded before may stay: `_truncated`)
            "conversation_parts": [str(p["id"]) for p in ws.conversation_parts(rid)[-PARTS_LIMIT:]],
        }
    if stream == "tickets":
        return {
            "tickets__contacts": [str(c["id"]) for c in _listed(record.get("contacts"))],
            "ticket_parts": [str(p["id"]) for p in ws.ticket_parts(rid)],
        }
    return {}


PARENT_KEY = {
    **dict.fromkeys(("contacts__tags", "contacts__companies", "contacts__notes"), "contact_id"),
    **dict.fromkeys(("companies__tags", "companies__segments"), "company_id"),
    **dict.fromkeys(("conversations__tags", "conversations__contacts", "conversations__teammates"), "conversation_id"),
    "conversation_parts": "conversation_id",
    "tickets__contacts": "ticket_id",
    "ticket_parts": "ticket_id",
}


def expected_rows(ws: Any, missing: dict[str, set[str]]) -> dict[str, Counter[tuple[str, ...]]]:
    """{table: rows} the warehouse must hold when the records in `missing` never landed.

    Parent rows are (id, cursor epoch); child rows (parent id, element id).
    """
    out: dict[str, Counter[tuple[str, ...]]] = {}
    for stream in DRIFTED:
        cursor = CURSOR.get(stream, "updated_at")
        rows: Counter[tuple[str, ...]] = Counter()
        for record in ws.ground_truth(stream):
            rid = str(record["id"])
            if rid in missing.get(stream, set()):
                continue
            rows[(rid, str(int(record[cursor])))] += 1
            for table, ids in _children(ws, stream, record).items():
                out.setdefault(table, Counter()).update((rid, i) for i in ids)
        out[stream] = rows
    for stream in UNDRIFTED:
        out[stream] = Counter((str(r["id"]),) for r in ws.ground_truth(stream))
    out["data_attributes"] = Counter((str(a["model"]), str(a["full_name"])) for a in ws.ground_truth("data_attributes"))
    return out


def landed_rows(wh: Warehouse) -> dict[str, Counter[tuple[str, ...]]]:
    tables = wh.tables()
    out: dict[str, Counter[tuple[str, ...]]] = {}

    def read(table: str, sql: str) -> None:
        rows = wh.query(sql) if table in tables else []
        out[table] = Counter(tuple(str(v) for v in row) for row in rows)

    for stream in DRIFTED:
        read(stream, f"select id, {wh.epoch(CURSOR.get(stream, 'updated_at'))} from {stream}")
    for table, key in PARENT_KEY.items():
        read(table, f"select {key}, id from {table}")
    for stream in UNDRIFTED:
        read(stream, f"select id from {stream}")
    read("data_attributes", "select model, full_name from data_attributes")
    return out


def _truncated(ws: Any) -> list[str]:
    return [str(c["id"]) for c in ws.ground_truth("conversations") if len(ws.conversation_parts(c["id"])) > PARTS_LIMIT]


def assert_landed(wh: Warehouse, ws: Any, missing: dict[str, set[str]]) -> dict[str, int]:
    """Every table holds exactly the expected rows: none missing, none extra, no duplicates."""
    want, got = expected_rows(ws, missing), landed_rows(wh)
    for cid in _truncated(ws):  # older parts loaded while among the newest 500 stay: real, not extra
        every = {(cid, str(p["id"])) for p in ws.conversation_parts(cid)}
        for row in [r for r in got["conversation_parts"] if r in every and r not in want["conversation_parts"]]:
            del got["conversation_parts"][row]
    for table, rows in want.items():
        dup = [r for r, n in got[table].items() if n > 1]
        assert not dup, f"{table}: {len(dup)} duplicated rows, e.g. {dup[:3]}"
        lost, extra = rows - got[table], got[table] - rows
        assert not lost and not extra, (
            f"{table}: {sum(lost.values())} rows missing (e.g. {list(lost)[:3]}), "
            f"{sum(extra.values())} unexpected (e.g. {list(extra)[:3]})"
        )
    return {table: sum(rows.values()) for table, rows in want.items()}


def rejected(wh: Warehouse) -> Counter[tuple[str, str, str | None]]:
    """(stream, original id, record_id) of each row of `_intercom_rejects`, mapped back through the
    id the emulator kept in the served record."""
    if "_intercom_rejects" not in wh.tables():
        return Counter()
    out: Counter[tuple[str, str, str | None]] = Counter()
    for stream, record_id, document in wh.query("select stream, record_id, record from _intercom_rejects"):
        record = json.loads(document) if isinstance(document, str) else document
        out[(str(stream), str(record[ORIGINAL_ID_FIELD]), record_id)] += 1
    return out


def as_rejects(invalid: set[Invalid]) -> Counter[tuple[str, str, str | None]]:
    """The rejects rows `invalid` must have made: a record without id has no `record_id`."""
    return Counter((i.stream, i.original_id, None if i.kind == "missing_id" else i.original_id) for i in invalid)


# ------------------------------------------------------------------------ the CLI
# Which records drift is a function of their ids and cursors, and a workspace's cursors of its
# anchor (by default the day the tests run): a fixed anchor keeps the drifted records the same on
# every day, among them each kind the test needs in each stream (with the day's anchor, the
# 2026-12-06 workspace served no ticket without its id)
DRIFT_ANCHOR = 1_796_428_800  # 2026-12-05 00:00 UTC


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(profile="tiny", seed=3, fault_seed=FAULT_SEED, scroll_page_size=5, anchor=DRIFT_ANCHOR) as server:
        yield server


def _run(emu: EmulatorServer, target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    argv = ["run", "--base-url", emu.base_url, *target.cli_args, "--pipelines-dir", str(tmp_path / "pipelines"),
            "--no-progress", *extra]
    rc = main(argv)
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
def test_shape_drift_lands_every_valid_record_and_keeps_the_invalid_aside(
    emu: EmulatorServer, target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], strict: bool,
) -> None:
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", emu.token)
    for key, value in target.env.items():
        monkeypatch.setenv(key, value)
    ws, wh = emu.workspace, target.warehouse
    emu.configure(faults=DRIFT)

    # 1. with drift: the valid records land, the invalid ones are kept aside, the run says so
    rc, err = _run(emu, target, tmp_path, capsys, *(["--strict"] if strict else []))
    invalid = set(emu.state.faults.served_invalid.invalid)
    for stream in DRIFTED:
        for kind in ("missing_id", "missing_cursor"):
            assert any(i.stream == stream and i.kind == kind for i in invalid), f"no {kind} in {stream}: pick another seed"
    assert len([i for i in invalid if i.stream == "companies" and i.kind == "missing_id"]) >= 2
    assert sum(emu.state.faults.served_invalid.valid.values()) > 50
    served_invalid = {s: {i.original_id for i in invalid if i.stream == s} for s in DRIFTED}
    assert rc == (EXIT_REJECTS if strict else EXIT_OK), err
    line = next(x for x in err.splitlines() if x.startswith("error:" if strict else "warning:"))
    assert f"{len(invalid)} record(s) could not be stored" in line, line
    assert_landed(wh, ws, served_invalid)
    assert rejected(wh) == as_rejects(invalid)

    # 2. no drift, the invalid records of the updatable streams changed since: the next run reads
    # them again and lands them. Tickets and activity logs cannot change: only those inside the
    # lookback of the saved cursor are read again (the cursor only moved with the valid records).
    emu.configure(faults=NO_DRIFT)
    cursors = {s: wh.query(f"select max({wh.epoch(CURSOR.get(s, 'updated_at'))}) from {s}")[0][0] for s in DRIFTED}
    ws.clock.advance(3600)
    for contact in served_invalid["contacts"]:
        ws.update_contact(contact, name="Readable Again")
    for company in served_invalid["companies"]:
        ws.update_company(company, name="Readable Again Co")
    for conversation in served_invalid["conversations"]:
        ws.add_conversation_part(conversation, author_type="admin", body="readable again")
    by_id = {s: {str(r["id"]): r for r in ws.ground_truth(s)} for s in ("tickets", "activity_logs")}
    still_missing = {
        s: {i for i in served_invalid[s] if int(by_id[s][i][CURSOR.get(s, "updated_at")]) < cursors[s] - DEFAULT_LOOKBACK_SECONDS}
        for s in ("tickets", "activity_logs")
    }
    assert any(still_missing.values()) and any(served_invalid[s] - still_missing[s] for s in still_missing)
    rc, err = _run(emu, target, tmp_path, capsys)
    assert rc == EXIT_OK, err
    assert not [x for x in err.splitlines() if x.startswith("warning:")], err
    assert_landed(wh, ws, still_missing)
    landed_again = {i for i in invalid if i.original_id not in still_missing.get(i.stream, set())}
    # a landed record clears its reject when the reject names it; one served without id cannot
    # be told apart from any other record of its stream, so its reject stays until a full refresh
    assert rejected(wh) == as_rejects({i for i in invalid if i not in landed_again or i.kind == "missing_id"})

    # 3. a full refresh reads everything again: every record, no reject left
    rc, err = _run(emu, target, tmp_path, capsys, "--full-refresh")
    assert rc == EXIT_OK, err
    assert_landed(wh, ws, {})
    assert rejected(wh) == Counter()

"""Search streams read as concurrent `updated_at` windows (sources/intercom/windows.py, window_readers.py).

A large search (contacts, conversations, tickets) is split into disjoint windows read side by
side, whole local days for contacts (the search compares dates by calendar day in the workspace
zone), and a long one commits its progress every `checkpoint_records`. Asserted against the
emulator's ground truth over real HTTP, on DuckDB and Postgres: every record exactly once after a
windowed backfill (two zones with DST changes, one whose midnight does not exist on the change
day), records changed while the windows are read, a killed backfill that resumes where its last
package left off, and an incremental run that stays one chain.
"""

from __future__ import annotations

import logging
import math
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pendulum
import pytest

from intercom_elt.sources.intercom import IntercomClient, window_readers
from intercom_emulator.testing import EmulatorServer
from tests.resilience.conftest import (
    TOKEN,
    Target,
    assert_matches_ground_truth,
    subprocess_env,
    sync_product_path,
    wait_until,
)

REPO = Path(__file__).resolve().parents[2]
SEARCHED = ("contacts", "conversations", "tickets")
START = "2020-01-01"
PAGE = 150
WINDOWS_LOG = "intercom_elt.sources.intercom.windows"
READERS_LOG = "intercom_elt.sources.intercom.window_readers"
# bench profile at 0.15: 3,000 contacts, 1,500 conversations, 2,000 tickets, over two years: every
# search is larger than the 8 pages below which a search stays one chain
WORKSPACE = {"profile": "bench", "seed": 1, "scale": 0.15}


def _sync(emu: EmulatorServer, target: Target, tmp_path: Path, streams: tuple[str, ...], **options: Any) -> list[str]:
    """The product's run path (`run_until_caught_up`) in this process; returns the load ids."""
    return sync_product_path(emu, target, tmp_path / "pipelines", "windows", streams, **options)[1]


def _windows_logged(caplog: pytest.LogCaptureFixture, endpoint: str) -> int:
    """How many windows the last split of `endpoint` used (0: not split)."""
    lines = [r.getMessage() for r in caplog.records if r.name == WINDOWS_LOG and endpoint in r.getMessage()]
    return int(lines[-1].split(" read as ")[1].split()[0]) if lines else 0


@pytest.mark.parametrize("timezone", ["America/New_York", "America/Santiago"])
def test_windowed_backfill_loads_every_record_once(
    timezone: str, target: Target, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Windows of whole local days (DST days among them; Santiago's change day starts at 01:00)."""
    caplog.set_level(logging.INFO, logger=WINDOWS_LOG)
    with EmulatorServer(**WORKSPACE, timezone=timezone) as emu:
        end = pendulum.from_timestamp(emu.workspace.clock.now() + 3600).to_iso8601_string()
        loads = _sync(emu, target, tmp_path, SEARCHED, start_date=START, end_date=end, checkpoint_records=1_000)
        compared = assert_matches_ground_truth(target.warehouse, emu.workspace, SEARCHED)
        searches = emu.request_log
    assert compared["contacts"] == 3_000 and compared["tickets"] == 2_000 and compared["conversations"] == 1_500
    for endpoint in ("/contacts/search", "/conversations/search", "/tickets/search"):
        assert _windows_logged(caplog, endpoint) >= 2, f"{endpoint} was not split"
    assert len(loads) >= 3  # 3,000 contacts at a checkpoint every 1,000: parts committed one by one
    # windows end on part pages: a few more than one page per 150 records, never a second read
    assert searches["POST /contacts/search"] <= math.ceil(3_000 / PAGE) + 12


@pytest.mark.parametrize("backfill", [False, True], ids=["run", "backfill"])
def test_records_changed_while_the_windows_are_read(
    backfill: bool, target: Target, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Contacts updated and created between pages: none missed, none twice, the newest version kept
    (a backfill whose end is still ahead too)."""
    caplog.set_level(logging.INFO, logger=WINDOWS_LOG)
    with EmulatorServer(**WORKSPACE, faults={"latency_ms": 40}) as emu:
        ws = emu.workspace
        ids = ws.ids("contacts")
        failure: list[BaseException] = []
        end = {"end_date": pendulum.from_timestamp(ws.clock.now() + 6 * 3600).to_iso8601_string()} if backfill else {}

        def run() -> None:
            try:
                _sync(emu, target, tmp_path, ("contacts",), start_date=START, **end)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
                failure.append(exc)

        sync = threading.Thread(target=run)
        sync.start()
        assert wait_until(lambda: emu.request_log.get("POST /contacts/search", 0) >= 6, timeout=60)
        for ident in ids[::100]:  # spread over every window: some read already, some not yet
            ws.update_contact(ident, name="changed while the sync runs")
        for n in range(5):
            ws.create_contact(role="user", email=f"during{n}@example.com", name="created while the sync runs")
        sync.join(timeout=120)
        assert not sync.is_alive() and not failure, failure
        assert _windows_logged(caplog, "/contacts/search") >= 2
        compared = assert_matches_ground_truth(target.warehouse, ws, ("contacts",))
    assert compared["contacts"] == 3_005
    renamed = target.warehouse.query("SELECT count(*) FROM contacts WHERE name = 'changed while the sync runs'")
    assert renamed[0][0] == len(ids[::100])


def _backfill(emu: EmulatorServer, target: Target, workdir: Path, end: str) -> subprocess.Popen[str]:
    argv = [
        sys.executable, "-m", "intercom_elt.pipelines.cli", "backfill", "--start", START, "--end", end,
        "--streams", "contacts", "--base-url", emu.base_url, "--pipelines-dir", str(workdir / "pipelines"),
        "--pipeline-name", "windows_kill", "--no-progress", *target.cli_args,
    ]
    env = subprocess_env({
        "INTERCOM_ACCESS_TOKEN": TOKEN, "PYTHONPATH": str(REPO), "SOURCES__INTERCOM__CHECKPOINT_RECORDS": "600",
        **target.env,
    })
    return subprocess.Popen(argv, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _loaded_packages(workdir: Path) -> int:
    loaded = workdir / "pipelines" / "windows_kill" / "load" / "loaded"
    return sum(1 for p in loaded.iterdir() if p.is_dir()) if loaded.is_dir() else 0


def test_killed_backfill_resumes_where_its_last_package_left_off(target: Target, tmp_path: Path) -> None:
    """SIGKILL after two parts are loaded: the rerun reads the rest only, and every row once."""
    with EmulatorServer(**WORKSPACE, faults={"latency_ms": 30}) as emu:
        end = pendulum.from_timestamp(emu.workspace.clock.now() + 3600).to_iso8601_string()
        proc = _backfill(emu, target, tmp_path, end)
        try:
            assert wait_until(lambda: _loaded_packages(tmp_path) >= 2 or proc.poll() is not None, timeout=120)
            assert proc.poll() is None, f"the backfill ended before the kill: {proc.communicate()[1][-2000:]}"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        before = target.warehouse.query("SELECT count(*) FROM contacts")[0][0]
        assert 0 < before < 3_000
        emu.reset_log()
        rerun = _backfill(emu, target, tmp_path, end)
        out, err = rerun.communicate(timeout=180)
        assert rerun.returncode == 0, err[-3000:]
        second = emu.request_log.get("POST /contacts/search", 0)
        compared = assert_matches_ground_truth(target.warehouse, emu.workspace, ("contacts",))
    assert compared["contacts"] == 3_000
    # starting over needs at least one page per 150 contacts; the rerun read what was left
    assert second < math.ceil(3_000 / PAGE)
    assert second <= math.ceil((3_000 - before) / PAGE) + 12


def test_incremental_run_after_a_windowed_sync_stays_one_chain(
    target: Target, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A handful of changes after the first (split) sync: one search page, as before windows."""
    caplog.set_level(logging.INFO, logger=WINDOWS_LOG)
    with EmulatorServer(**WORKSPACE) as emu:
        _sync(emu, target, tmp_path, ("contacts",), start_date=START)
        assert _windows_logged(caplog, "/contacts/search") >= 2
        ws = emu.workspace
        ws.clock.advance(60)
        for ident in ws.ids("contacts")[:20]:
            ws.update_contact(ident, name="changed after the first sync")
        caplog.clear()
        emu.reset_log()
        _sync(emu, target, tmp_path, ("contacts",), start_date=START)
        searches = emu.request_log.get("POST /contacts/search", 0)
        assert _windows_logged(caplog, "/contacts/search") == 0
        assert_matches_ground_truth(target.warehouse, ws, ("contacts",))
    assert searches == 1


def test_crowded_windows_are_split_among_the_readers(caplog: pytest.LogCaptureFixture) -> None:
    """Three windows even in time over two years, the recent days holding the most contacts: with a
    mean of 3 pages a window, each window over it keeps its first share and hands the rest of its
    range on, down to single days; every contact still comes exactly once, and the requests stay
    within one partial last page per window started."""
    caplog.set_level(logging.DEBUG, logger=READERS_LOG)
    with EmulatorServer(**WORKSPACE, faults={"latency_ms": 5}) as emu:
        truth = emu.workspace.ground_truth("contacts")
        client = IntercomClient(emu.token, base_url=emu.base_url, backoff_base=0.05)
        try:
            units = window_readers.Units("day", client.workspace_timezone())
            epochs = [int(r["updated_at"]) for r in truth]
            cuts = units.cuts(units.floor(min(epochs)), units.ceil(max(epochs) + 1), 3)
            planned = [window_readers.Window(lo, hi) for lo, hi in zip(cuts, cuts[1:], strict=False)]
            emu.reset_log()
            pages = list(window_readers.read_concurrently(client, "contacts_search", units, planned, readers=4, mean_pages=3))
        finally:
            client.close()
        searches = emu.request_log["POST /contacts/search"]
    splits = [int(r.getMessage().rsplit(" ", 1)[1]) for r in caplog.records
              if r.name == READERS_LOG and " split in " in r.getMessage()]
    ids = [r["id"] for page in pages for r in page]
    assert len(planned) == 3 and len(splits) >= 3, splits
    assert len(ids) == len(set(ids)) == len(truth) == 3_000
    assert set(ids) == {r["id"] for r in truth}
    started = len(planned) + sum(n - 1 for n in splits)
    assert math.ceil(3_000 / PAGE) < searches <= math.ceil(3_000 / PAGE) + started



@pytest.mark.parametrize("cursor_once", [False, True], ids=["cursor sent again", "cursor refused twice"])
def test_contacts_changed_after_the_tail_was_read_come_from_its_second_ask(
    cursor_once: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tail (the newest days, open-ended) is read beside the windows, so it ends before they
    do. Contacts changed after that, in a window not read yet, leave the window and sort past the
    tail's end: once every window is done, the tail's last page is asked again with its cursor (or,
    where a cursor is refused the second time, the tail from its start). Each contact comes exactly
    once, the changed ones in their new version, none of the tail's records twice."""
    faults = {"latency_ms": 5, "search_cursor_once": cursor_once}
    with EmulatorServer(**WORKSPACE, faults=faults) as emu:
        ws = emu.workspace
        truth = ws.ground_truth("contacts")
        client = IntercomClient(emu.token, base_url=emu.base_url, backoff_base=0.05)
        try:
            units = window_readers.Units("day", client.workspace_timezone())
            epochs = [int(r["updated_at"]) for r in truth]
            days = units.cuts(units.floor(min(epochs)), units.ceil(max(epochs) + 1), 10_000)
            tail_lo = max(d for d in days if sum(e >= d for e in epochs) > 2 * PAGE)  # a tail of 3+ pages
            in_tail = sum(e >= tail_lo for e in epochs)
            cuts = units.cuts(units.floor(min(epochs)), tail_lo, 3)
            planned = [window_readers.Window(lo, hi) for lo, hi in zip(cuts, cuts[1:], strict=False)]
            changed = [r["id"] for r in truth if planned[0].lo <= int(r["updated_at"]) < planned[0].hi][::10]
            emu.reset_log()
            # one reader, holding one page until this loop takes it: the tail first, then the
            # windows newest first, so the oldest is not started when the tail's records are all here
            monkeypatch.setattr(window_readers, "_HANDED_ON_PAGES", 1)
            got: list[dict[str, Any]] = []
            pages = window_readers.read_concurrently(
                client, "contacts_search", units, planned, readers=1, mean_pages=1_000, tail=window_readers.Window(tail_lo, None),
            )
            for page in pages:
                got.extend(page)
                if sum(int(r["updated_at"]) >= tail_lo for r in got) == in_tail and changed[0] not in {r["id"] for r in got}:
                    for ident in changed:  # the tail's chain has ended: all its records came
                        ws.update_contact(ident, name="changed after the tail")
        finally:
            client.close()
        searches = emu.request_log["POST /contacts/search"]
        refused = emu.log.count("POST /contacts/search", 400)
        truth = ws.ground_truth("contacts")
    ids = [r["id"] for r in got]
    assert len(changed) >= 10 and len(planned) == 3 and in_tail <= 4 * PAGE
    assert len(ids) == len(set(ids)) == len(truth)  # none missed, none twice
    assert {r["id"]: r["updated_at"] for r in got} == {r["id"]: r["updated_at"] for r in truth}
    assert sorted(r["id"] for r in got if r["name"] == "changed after the tail") == sorted(changed)
    pages_read = math.ceil(len(truth) / PAGE) + len(planned) + 1  # + a part page a window, the tail's
    if cursor_once:  # refused once, then the tail again from its start
        assert refused == 1 and pages_read < searches <= pages_read + 2 + math.ceil(in_tail / PAGE)
    else:  # the tail's last page asked again
        assert refused == 0 and searches <= pages_read + 2

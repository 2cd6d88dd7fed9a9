"""Faults survived: each injected alone, then all at once; the warehouse must equal ground truth.

Every test runs the real source into a real DuckDB file and a real Postgres schema over real
HTTP against the emulator, which injects the fault server-side (seeded, so failures replay).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from intercom_elt.pipelines.cli import main
from intercom_emulator.testing import EmulatorServer
from tests.resilience.conftest import (
    TOKEN,
    OtherScrollClient,
    ScrollExpirer,
    Sync,
    Target,
    assert_matches_ground_truth,
)

log = logging.getLogger(__name__)

SCROLL = "GET /companies/scroll"


def _mutate(sync: Sync) -> None:
    """Changes that land 'now' (so search lag hides them) across contacts, companies, conversations."""
    ws = sync.emu.workspace
    contacts = ws.ids("contacts")
    ws.update_contact(contacts[2], name="Changed During Faults")
    ws.create_contact(role="user", email="new.person@example.com", name="New Person")
    ws.update_company(ws.ids("companies")[1], name="Renamed Co")
    conv = ws.ids("conversations")[4]
    ws.add_conversation_part(conv, author_type="admin", body="late reply")


# name -> (emulator knobs, per-endpoint faults, client timeout)
SINGLE_FAULTS: dict[str, dict[str, Any]] = {
    "5xx_5pct": {"faults": {"error_rate": 0.05}},
    "dropped_connections": {"faults": {"drop_rate": 0.05}},
    # a slow answer costs the client its timeout, then a retry: keep both short
    "slower_than_timeout": {"faults": {"slow_rate": 0.02, "slow_seconds": 1.2}, "timeout": 0.5},
    "malformed_json": {"faults": {"malformed_rate": 0.05}},
    "scroll_500_mid_scroll": {"endpoint_faults": {SCROLL: {"scroll_error_on_page": 2, "scroll_error_times": 1}}},
    "type_drift": {"faults": {"type_drift_rate": 0.3, "extra_fields_rate": 0.2}},
}


def _two_syncs_with(sync: Sync, fault: str, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two syncs under `spec` with mutations between; both must end equal to ground truth."""
    spec = dict(spec)
    sync.timeout = spec.pop("timeout", 5.0)
    sync.emu.configure(scroll_page_size=5, fault_seed=11, **spec)
    stats = sync.run()
    sync.check()
    _mutate(sync)
    sync.emu.workspace.clock.advance(5)
    stats2 = sync.run()
    sync.check()
    log.info("%s: first run %s, second run %s", fault, stats, stats2)
    return stats, stats2


@pytest.mark.parametrize("fault", sorted(SINGLE_FAULTS))
def test_single_fault(sync: Sync, fault: str) -> None:
    """One fault class on every request; two syncs (with mutations between) end equal to truth."""
    stats, stats2 = _two_syncs_with(sync, fault, SINGLE_FAULTS[fault])
    injected = stats["total_retries"] + stats2["total_retries"] + stats["scroll_restarts"] + stats2["scroll_restarts"]
    if fault != "type_drift":
        assert injected > 0, f"{fault}: the fault never fired; the test proves nothing"


@pytest.mark.parametrize("target", ["duckdb"], indirect=True)
def test_429_burst(sync: Sync) -> None:
    """A burst of two 429s, each answered with the window's reset: the client waits and goes on.

    DuckDB only: a 429 is handled in the HTTP client before any row exists, so the destination
    adds nothing (and each burst costs up to two 10-second windows of waiting).
    """
    spec = {"endpoint_faults": {"GET /admins/activity_logs": {"burst_429_every": 100, "burst_429_length": 2}}}
    stats, stats2 = _two_syncs_with(sync, "429_bursts", spec)
    assert stats["rate_limited"] + stats2["rate_limited"] >= 2, (stats, stats2)


def test_scroll_expires_between_pages(sync: Sync) -> None:
    """An idle scroll expires (404 on the next page): the client restarts it and loses nothing."""
    sync.emu.configure(scroll_page_size=4, endpoint_faults={SCROLL: {"latency_ms": 60}})
    expirer = ScrollExpirer(sync.emu)
    expirer.start()
    try:
        stats = sync.run()
    finally:
        expirer.stop()
    assert expirer.fired == 1
    assert stats["scroll_restarts"] >= 1
    sync.check()


def test_scroll_exists_from_another_client(sync: Sync) -> None:
    """Another client holds the workspace's one scroll; ours waits until it expires, then syncs all."""
    sync.emu.configure(scroll_page_size=5)
    OtherScrollClient(sync.emu, idle_timeout=1.5).open_now()
    stats = sync.run()
    assert any("scroll_exists" in k for k in stats["retries"]), stats
    sync.check()


def test_search_index_lag(sync: Sync) -> None:
    """Records changed within the lag are missing from search; the next run's lookback gets them."""
    sync.run()
    sync.emu.configure(search_lag_seconds=120)
    _mutate(sync)
    sync.run()  # the changed records are not searchable yet
    sync.emu.workspace.clock.advance(300)
    sync.run()
    sync.check()


def test_all_faults_at_once(sync: Sync) -> None:
    """Every fault class together, plus mutations and search lag between runs."""
    ws = sync.emu.workspace
    sync.timeout = 0.5
    sync.emu.configure(
        scroll_page_size=4,
        fault_seed=23,
        search_lag_seconds=60,
        faults={
            "error_rate": 0.05,
            "burst_429_every": 400,
            "burst_429_length": 1,
            "drop_rate": 0.03,
            "slow_rate": 0.02,
            "slow_seconds": 1.0,
            "malformed_rate": 0.03,
            "type_drift_rate": 0.2,
            "extra_fields_rate": 0.1,
        },
        endpoint_faults={
            SCROLL: {
                "latency_ms": 60,
                "error_rate": 0.05,
                "scroll_error_on_page": 3,
                "scroll_error_times": 1,
                "type_drift_rate": 0.2,
            }
        },
    )
    OtherScrollClient(sync.emu, idle_timeout=1.0).open_now()
    expirer = ScrollExpirer(sync.emu)
    expirer.start()
    try:
        first = sync.run()
    finally:
        expirer.stop()
    _mutate(sync)
    ws.clock.advance(30)
    second = sync.run()  # mutations still hidden by the lag
    ws.clock.advance(600)
    third = sync.run()
    compared = sync.check()
    log.info("all faults: runs %s / %s / %s; compared %s", first, second, third, compared)
    assert first["total_retries"] > 0


def test_deleted_and_merged_contacts_are_marked_deleted(
    emu: EmulatorServer, target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Intercom never lists deleted/merged/archived contacts: `run --reconcile-deletes` marks them.

    A plain incremental run cannot see the deletes (the checker must then find the stale rows);
    the reconciling run marks exactly the vanished contacts, and the checker counts them as deleted.
    """
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", TOKEN)
    for key, value in target.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # no .dlt/ of the repo
    argv = ["run", "--base-url", emu.base_url, "--pipelines-dir", str(tmp_path / "p"), "--pipeline-name", "deletes",
            "--no-progress", "--no-views", *target.cli_args]
    assert main([*argv, "--reconcile-deletes"]) == 0
    ws = emu.workspace
    assert assert_matches_ground_truth(target.warehouse, ws).get("contacts (deleted)", 0) == 0
    contacts = ws.ids("contacts")
    users = [c["id"] for c in ws.ground_truth("contacts") if c["role"] == "user"]
    leads = [c["id"] for c in ws.ground_truth("contacts") if c["role"] == "lead"]
    gone = {str(contacts[5]), str(contacts[6]), str(leads[0])}
    ws.delete_contact(contacts[5])
    ws.archive_contact(contacts[6])
    ws.merge_contacts(leads[0], users[-1])
    ws.clock.advance(5)

    assert main(argv) == 0  # incremental only: the vanished contacts stay as if alive
    with pytest.raises(AssertionError, match="contacts: 0 rows missing .* 3 unexpected"):
        assert_matches_ground_truth(target.warehouse, ws)

    assert main([*argv, "--reconcile-deletes"]) == 0
    compared = assert_matches_ground_truth(target.warehouse, ws)
    assert compared["contacts (deleted)"] == 3, compared
    rows = target.warehouse.query("select id, _deleted_reason from contacts where _deleted_at is not null")
    # Intercom-Version 2.15: deleted, merged and archived all answer 404 -> "deleted"
    assert {(str(r[0]), str(r[1])) for r in rows} == {(cid, "deleted") for cid in gone}

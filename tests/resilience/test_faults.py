"""Faults survived: each injected alone, then all at once; the warehouse must equal ground truth.

Every test runs the real source into a real DuckDB file and a real Postgres schema over real
HTTP against the emulator, which injects the fault server-side (seeded, so failures replay).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.resilience.conftest import OtherScrollClient, ScrollExpirer, Sync

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
    # one burst of two 429s (each answered with the window's reset, so it costs up to ~20 s)
    "429_bursts": {"endpoint_faults": {"GET /admins/activity_logs": {"burst_429_every": 60, "burst_429_length": 2}}},
    "dropped_connections": {"faults": {"drop_rate": 0.05}},
    "slower_than_timeout": {"faults": {"slow_rate": 0.04, "slow_seconds": 2.5}, "timeout": 1.0},
    "malformed_json": {"faults": {"malformed_rate": 0.05}},
    "scroll_500_mid_scroll": {"endpoint_faults": {SCROLL: {"scroll_error_on_page": 2, "scroll_error_times": 1}}},
    "type_drift": {"faults": {"type_drift_rate": 0.3, "extra_fields_rate": 0.2}},
}


@pytest.mark.parametrize("fault", sorted(SINGLE_FAULTS))
def test_single_fault(sync: Sync, fault: str) -> None:
    """One fault class on every request; two syncs (with mutations between) end equal to truth."""
    spec = dict(SINGLE_FAULTS[fault])
    sync.timeout = spec.pop("timeout", 5.0)
    sync.emu.configure(scroll_page_size=5, fault_seed=11, **spec)
    stats = sync.run()
    sync.check()
    _mutate(sync)
    sync.emu.workspace.clock.advance(5)
    stats2 = sync.run()
    sync.check()
    log.info("%s: first run %s, second run %s", fault, stats, stats2)
    injected = stats["total_retries"] + stats2["total_retries"] + stats["scroll_restarts"] + stats2["scroll_restarts"]
    if fault != "type_drift":
        assert injected > 0, f"{fault}: the fault never fired; the test proves nothing"


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
    sync.timeout = 1.0
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
            "slow_seconds": 1.5,
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


@pytest.mark.xfail(
    strict=True,
    reason="known gap: an incremental run cannot see deletes (Intercom only lists live records); "
    "`intercom-sync run --reconcile-deletes` marks them instead, which this comparison does not cover",
)
def test_deleted_and_merged_contacts_leave_the_warehouse(sync: Sync) -> None:
    """Intercom never lists deleted/merged/archived contacts: the warehouse must drop them too."""
    ws = sync.emu.workspace
    sync.run()
    contacts = ws.ids("contacts")
    ws.delete_contact(contacts[5])
    ws.archive_contact(contacts[6])
    users = [c["id"] for c in ws.ground_truth("contacts") if c["role"] == "user"]
    leads = [c["id"] for c in ws.ground_truth("contacts") if c["role"] == "lead"]
    ws.merge_contacts(leads[0], users[-1])
    ws.clock.advance(5)
    sync.run()
    sync.check()

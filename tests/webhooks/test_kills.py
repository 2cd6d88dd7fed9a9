"""Kills and outages, over real HTTP with real processes: each ends with exactly one effect per event."""

from __future__ import annotations

import subprocess
import sys
import time

import psycopg2
import pytest

from intercom_elt.pipelines.webhooks.receiver import PAUSE_ENV
from intercom_emulator.webhooks import sender_of
from tests.webhooks.conftest import PgScene, Scene


def _wait(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_receiver_killed_between_inbox_write_and_answer_ends_with_one_effect(scene: Scene) -> None:
    rec = scene.receiver(env={PAUSE_ENV: "60"}, timeout_seconds=120)
    scene.run()
    victim = scene.live_contact(0)
    scene.ws.delete_contact(victim)
    _wait(lambda: any(row[2] == victim for row in scene.inbox()))  # kept, not answered yet
    rec.kill()
    scene.receiver(port=rec.port, subscribe=False)  # back on the same URL; Intercom retries
    status = scene.emu.webhooks_settled()
    assert status["failed_attempts"] >= 1 and status["delivered"] == 1
    assert [row[2] for row in scene.inbox()] == [victim]  # the retry found its notification id kept
    scene.drain()
    scene.assert_exact()
    assert scene.deleted("contacts") == {victim: "contact.deleted"}


def _delete_a_mix(scene: Scene) -> dict[str, str]:
    ws = scene.ws
    loaded = [scene.live_contact(k) for k in range(12)]
    leads = [c for c in loaded if ws.get("contacts", c)["role"] == "lead"]
    users = [c for c in loaded if ws.get("contacts", c)["role"] == "user"]
    expected = {users[0]: "contact.deleted", users[1]: "contact.deleted", users[2]: "contact.archived",
                leads[0]: "contact.merged"}
    ws.clock.advance(5)
    ws.delete_contact(users[0])
    ws.delete_contact(users[1])
    ws.archive_contact(users[2])
    ws.merge_contacts(leads[0], users[3])
    return expected


def test_receiver_down_for_a_while_and_back_loses_nothing(scene: Scene) -> None:
    rec = scene.receiver()
    scene.run()
    rec.kill()
    expected = _delete_a_mix(scene)
    conv = scene.ws.ids("conversations")[0]
    scene.ws.delete_conversation(conv)
    _wait(lambda: sender_of(scene.emu.state).stats["failed_attempts"] >= 10)  # every event failed, some twice
    scene.receiver(port=rec.port, subscribe=False)
    scene.emu.webhooks_settled()
    scene.drain()
    scene.assert_exact()
    assert scene.deleted("contacts") == expected
    assert scene.deleted("conversations") == {conv: "conversation.deleted"}


def test_duplicates_and_reordering_end_in_the_same_warehouse(scene: Scene) -> None:
    scene.receiver(duplicate_rate=1.0, reorder=True, seed=3)
    scene.run()
    expected = _delete_a_mix(scene)
    status = scene.emu.webhooks_settled()
    assert status["duplicates"] >= 4
    assert len(scene.inbox()) == 4  # one row per notification id
    scene.drain()
    scene.drain()  # draining twice changes nothing
    scene.assert_exact()
    assert scene.deleted("contacts") == expected


def test_a_run_drains_and_the_drain_makes_no_api_call(scene: Scene) -> None:
    scene.receiver()
    scene.run()
    victim = scene.live_contact(0)
    scene.ws.delete_contact(victim)
    scene.emu.webhooks_settled()
    scene.emu.reset_log()
    scene.drain()
    assert scene.emu.request_log == {}  # marked within one drain, without listing anything
    assert scene.deleted("contacts") == {victim: "contact.deleted"}
    other = scene.live_contact(0)
    scene.ws.archive_contact(other)
    scene.emu.webhooks_settled()
    scene.run()  # `run` drains when a receiver is configured
    assert scene.deleted("contacts") == {victim: "contact.deleted", other: "contact.archived"}
    scene.assert_exact()


@pytest.mark.postgres
def test_drain_killed_half_way_is_finished_by_the_next_drain(pg_scene: PgScene) -> None:
    scene = pg_scene
    scene.receiver()
    scene.run()
    victims = [scene.live_contact(k) for k in range(6)]
    for cid in victims:  # distinct notification times: one UPDATE per victim, in this order
        scene.ws.clock.advance(1)
        scene.ws.delete_contact(cid)
    scene.emu.webhooks_settled()
    assert len(scene.inbox()) == 6
    blocker = psycopg2.connect(scene.dsn)  # hold the 4th victim's row: the drain stops there
    cur = blocker.cursor()
    cur.execute(f"select id from {scene.dataset}.contacts where id = %s for update", (victims[3],))
    drain = subprocess.Popen([sys.executable, "-m", "intercom_elt.pipelines.cli", "webhooks", "drain", *scene.target_args],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: len(scene.deleted("contacts")) == 3, timeout=60)
        time.sleep(0.3)
        assert drain.poll() is None  # still waiting on the held row: half-way
        drain.kill()
        drain.wait(10)
    finally:
        blocker.rollback()
        blocker.close()
    # the held statement may still finish server-side once the row is free (its client is gone);
    # nothing after it ran
    marked = set(scene.deleted("contacts"))
    assert set(victims[:3]) <= marked <= set(victims[:4])
    scene.drain()
    scene.assert_exact()
    assert scene.deleted("contacts") == dict.fromkeys(victims, "contact.deleted")

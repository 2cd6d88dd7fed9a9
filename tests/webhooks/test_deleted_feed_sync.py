"""Deleted conversations from 2.16's feed: marked by the next `run`, without listing the workspace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from intercom_emulator.testing import EmulatorServer
from tests.webhooks.conftest import PgScene, Scene

V216 = ("--intercom-version", "2.16")


@pytest.fixture
def feed_scene(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scene]:
    with EmulatorServer(profile="tiny", seed=4, scale=3) as emu:  # 90 conversations: the feed pages at 60
        monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", emu.token)
        yield Scene(emu, tmp_path)


def _feed_calls(scene: Scene) -> int:
    return scene.emu.request_log.get("GET /conversations/deleted", 0)


def test_the_next_run_marks_deleted_conversations_from_the_feed(feed_scene: Scene) -> None:
    scene, ws = feed_scene, feed_scene.ws
    scene.run(*V216)
    before = scene.rows()
    gone = [str(c) for c in ws.ids("conversations")[:65]]
    for cid in gone:
        ws.clock.advance(1)
        ws.delete_conversation(cid)
    scene.emu.reset_log()
    scene.run(*V216)
    assert _feed_calls(scene) == 2  # 65 new deletes: two pages of 60
    assert "GET /conversations" not in scene.emu.request_log  # no listing of the workspace
    assert scene.deleted("conversations") == dict.fromkeys(gone, "conversation.deleted")
    truth = dict(ws.deleted_conversations())
    marked = dict(scene.query("select id, epoch(_deleted_at)::bigint from intercom_data.conversations "
                              "where _deleted_at is not null"))
    assert marked == truth  # Intercom's deleted_at
    after = scene.rows()
    assert {t: rows for t, rows in after.items() if t != "conversations"} == \
        {t: rows for t, rows in before.items() if t != "conversations"}
    scene.assert_exact()
    last = str(ws.ids("conversations")[0])
    ws.clock.advance(3600)  # past the lookback window (lag) of the earlier deletes
    ws.delete_conversation(last)
    scene.run(*V216)
    assert scene.deleted("conversations")[last] == "conversation.deleted"
    scene.assert_exact()
    scene.emu.reset_log()
    scene.run(*V216)
    assert _feed_calls(scene) == 1  # a run with no new delete: one page reaches back past the cursor


def test_older_versions_do_not_call_the_feed_and_keep_the_reconcile_path(feed_scene: Scene) -> None:
    scene, ws = feed_scene, feed_scene.ws
    scene.run()
    gone = str(ws.ids("conversations")[0])
    ws.delete_conversation(gone)
    scene.emu.reset_log()
    scene.run()
    assert _feed_calls(scene) == 0 and scene.deleted("conversations") == {}
    scene.run("--reconcile-deletes")
    assert scene.deleted("conversations") == {gone: "deleted"}


def test_history_mode_closes_the_current_version(feed_scene: Scene) -> None:
    scene, ws = feed_scene, feed_scene.ws
    scene.run(*V216, "--history")
    gone = str(ws.ids("conversations")[3])
    ws.clock.advance(10)
    ws.delete_conversation(gone)
    scene.run(*V216, "--history")
    rows = scene.query(f"select _deleted_reason, _dlt_valid_to is not null from intercom_data.conversations "
                       f"where id = '{gone}'")
    assert rows == [("conversation.deleted", True)]
    assert scene.query("select count(*) from intercom_data.conversations where _deleted_at is not null "
                       "and _dlt_valid_to is null") == [(0,)]


def test_feed_items_of_an_unexpected_shape_are_read_or_skipped_never_crash() -> None:
    from datetime import datetime, timezone

    from intercom_elt.sources.intercom.deleted_feed import has_feed, shape

    at = datetime.fromtimestamp(1734537460, tz=timezone.utc)
    assert shape({"id": 512, "deleted_at": "1734537460"}) == {"id": "512", "deleted_at": at, "metrics_retained": None}
    assert shape({"id": "5", "deleted_at": 1734537460, "metrics_retained": True})["metrics_retained"] is True
    for bad in (None, [], {"deleted_at": 1}, {"id": "", "deleted_at": 1}, {"id": "1"}, {"id": "1", "deleted_at": "soon"}):
        assert shape(bad) is None
    assert [v for v in ("2.11", "2.15", "2.16", "2.17", "Preview", "x") if has_feed(v)] == ["2.16", "2.17"]


@pytest.mark.postgres
def test_the_feed_marks_conversations_on_postgres_too(pg_scene: PgScene) -> None:
    scene, ws = pg_scene, pg_scene.ws
    scene.run(*V216)
    gone = [str(c) for c in ws.ids("conversations")[:2]]
    for cid in gone:
        ws.clock.advance(30)
        ws.delete_conversation(cid)
    scene.run(*V216)
    assert scene.deleted("conversations") == dict.fromkeys(gone, "conversation.deleted")
    scene.assert_exact()
    inbox = scene.query(f"select count(*) from information_schema.tables where table_schema = '{scene.dataset}' "
                        "and table_name = '_intercom_webhook_inbox'")
    assert inbox == [(0,)]  # no receiver: a run creates no inbox

"""The connector on every Intercom-Version it accepts: the same warehouse from each.

Shapes differ by version (docs/emulator-contract.md: at 2.16 unassigned conversations carry
`admin_assignee_id: 0`, tickets an integer assignee; at 2.11 a ticket's state is a string), and
the emulator answers in the requested version's shape, so each version is synced end to end.
"""

from __future__ import annotations

import pytest

from intercom_elt.sources.intercom import IntercomClient, IntercomConfigError, settings
from tests.connector.conftest import Sync
from tests.connector.test_sync import _assert_matches_truth


@pytest.mark.parametrize("version", settings.SUPPORTED_VERSIONS)
def test_every_supported_version_lands_the_ground_truth(sync: Sync, version: str) -> None:
    sync.run(intercom_version=version)
    assert sync.client is not None and sync.client.intercom_version == version
    _assert_matches_truth(sync)
    ws = sync.emu.workspace
    # unassigned is NULL whatever the version sends for it (null, or 0 at 2.16)
    assignees = {r[0]: (r[1], r[2]) for r in sync.query("select id, admin_assignee_id, team_assignee_id from conversations")}
    truth = {
        str(c["id"]): (c.get("admin_assignee_id") or None, c.get("team_assignee_id") or None)
        for c in ws.ground_truth("conversations")
    }
    assert assignees == {k: (None if a is None else int(a), None if t is None else int(t)) for k, (a, t) in truth.items()}
    tickets = sorted(r[0] for r in sync.query("select id from tickets"))
    assert tickets == sorted(str(t["id"]) for t in ws.ground_truth("tickets"))
    tables = {r[0] for r in sync.query("select table_name from information_schema.tables where table_schema='intercom'")}
    assert "_intercom_rejects" not in tables


def test_an_untested_version_is_refused_with_what_to_use(emu) -> None:
    with pytest.raises(IntercomConfigError, match=r"'2\.9' is not one this connector is tested on: use one of 2\.11"):
        IntercomClient(emu.token, base_url=emu.base_url, intercom_version="2.9")

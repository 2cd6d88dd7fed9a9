"""An integer no bigint holds is kept aside with its record; the rest of the run loads.

JSON numbers have no bound, and orjson reads integers up to 2**64 - 1 as Python ints. Before, one
such value in a custom integer attribute or a numeric field failed the whole run: DuckDB's
normalize ("Python int too large to convert to C long") and Postgres' load ("bigint out of range")
both lost every sibling record. The real CLI syncs into a real DuckDB file and a real Postgres
schema; the emulator serves the values over HTTP.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from intercom_elt.pipelines.cli import main
from intercom_elt.pipelines.errors import EXIT_OK
from intercom_emulator.testing import EmulatorServer
from tests.resilience.conftest import Target, assert_matches_ground_truth

STREAMS = ("contacts", "companies")
BEYOND = 2**63  # the smallest integer a bigint does not hold (orjson serves it, up to 2**64 - 1)


def _sync(emu: EmulatorServer, target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(["run", "--base-url", emu.base_url, *target.cli_args, "--pipelines-dir", str(tmp_path / "pipelines"),
               "--no-progress", "--streams", ",".join(STREAMS)])
    return rc, capsys.readouterr().err


def test_an_integer_beyond_bigint_keeps_its_record_aside_and_the_rest_loads(
    emu: EmulatorServer, target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", emu.token)
    for key, value in target.env.items():
        monkeypatch.setenv(key, value)
    ws, wh = emu.workspace, target.warehouse
    contact, company = (str(ws.ground_truth(s)[0]["id"]) for s in STREAMS)
    ws.update_contact(contact, custom_attributes={"seats": BEYOND + 5})  # a catalogued integer attribute
    ws.update_company(company, monthly_spend=BEYOND)  # a top-level field of a bigint column

    rc, err = _sync(emu, target, tmp_path, capsys)
    assert rc == EXIT_OK, err
    assert "2 record(s) could not be stored and were kept aside in _intercom_rejects" in err, err
    for stream, odd in zip(STREAMS, (contact, company), strict=True):
        want = {str(r["id"]) for r in ws.ground_truth(stream)} - {odd}
        assert {str(r[0]) for r in wh.query(f"select id from {stream}")} == want, stream
    assert sorted(wh.query("select stream, record_id, reason from _intercom_rejects")) == [
        ("companies", company, f"cannot be shaped: BeyondBigint: 'monthly_spend' is {BEYOND}, "
                               "beyond a 64-bit integer: no warehouse column holds it"),
        ("contacts", contact, f"cannot be shaped: BeyondBigint: 'seats' is {BEYOND + 5}, "
                              "beyond a 64-bit integer: no warehouse column holds it"),
    ]

    # the values corrected in Intercom: the next run lands both records and settles their rejects
    ws.clock.advance(60)
    ws.update_contact(contact, custom_attributes={"seats": BEYOND - 1})  # the largest a bigint holds
    ws.update_company(company, monthly_spend=-BEYOND)  # and the smallest
    rc, err = _sync(emu, target, tmp_path, capsys)
    assert rc == EXIT_OK, err
    assert_matches_ground_truth(wh, ws, STREAMS)
    assert wh.query(f"select custom_seats from contacts where id = '{contact}'") == [(BEYOND - 1,)]
    assert wh.query(f"select monthly_spend from companies where id = '{company}'") == [(-BEYOND,)]
    assert wh.query("select count(*) from _intercom_rejects") == [(0,)]

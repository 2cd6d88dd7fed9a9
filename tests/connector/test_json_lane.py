"""The JSON lane (whole pages of contacts read by Arrow's JSON reader, json_lane.py) lands exactly
what the Columnizer alone (columnar.py, held to the usual path by test_columnar.py) lands: the same
tables, columns, types, rows, child rows and their positions, stored dlt schema and rejects, on a
first sync and on an incremental one, in DuckDB and in Postgres.

The workspace has a little seeded shape drift and values the lane must leave to the Columnizer
(a timestamp in milliseconds or below zero, an object deeper than the first level, a string in an
integer attribute, a text id among integer ones, an integer beyond a bigint): some pages are read
by the lane, some refused whole, some records sent back one by one; the test checks all happened.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import pytest

from intercom_elt.pipelines.destination import LOADER_FILE_FORMATS
from intercom_elt.sources.intercom import arrow_items, json_lane
from intercom_emulator.testing import EmulatorServer
from tests.connector.conftest import Sync
from tests.connector.test_columnar import Warehouse, _assert_same

STREAMS = ["contacts"]
DRIFT = {"shape_drift_rate": 0.002, "missing_id_rate": 0.001, "missing_cursor_rate": 0.001}
_COUNTS = re.compile(r"contacts: (\d+) records built as Arrow tables, (\d+) shaped the usual way \((\d+) of the first")


# The seeded drift of a record depends on its `updated_at`, so with the real clock the drifted
# records changed with the day and, for the ones changed here, with the second the test ran: a
# run could drift the very record with the integer beyond a bigint, and its reject never came.
# A fixed day and a frozen clock give every run the same records, drifted or not.
ANCHOR = 4_102_444_800  # 2100-01-01 00:00 UTC, ahead of the real clock, which the virtual one may not go behind


@pytest.fixture
def workspace(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    # small batches, so that 2,000 contacts make many: the lane starts once dlt has the table
    monkeypatch.setattr(arrow_items, "BATCH_RECORDS", 300)
    monkeypatch.setattr(json_lane, "BATCH_RECORDS", 200)
    with EmulatorServer(profile="demo", seed=5, fault_seed=13, anchor=ANCHOR) as server:
        clock = server.workspace.clock
        clock.freeze()
        clock.advance(ANCHOR + 6 * 3600 - clock.now())
        server.configure(faults=DRIFT)
        _odd_values(server)
        yield server


def _odd_values(emu: EmulatorServer) -> None:
    """Values the lane takes as the Columnizer does, or sends back one record at a time; then,
    some 400 records later in the search's order (by `updated_at`), values that make the reader
    refuse their whole batch."""
    ws = emu.workspace
    ids = ws.ids("contacts")
    ws.update_contact(ids[0], signed_up_at=0)  # no time: taken, as null
    ws.update_contact(ids[1], custom_attributes={"mrr": 12})  # an integer in a double column: taken, as 12.0
    ws.update_contact(ids[2], name="Zoë \u0000 \U0001f600 \"quoted\" \\ back", email="")
    ws.update_contact(ids[3], browser_version=None, os=None, phone=None)
    ws.update_contact(ids[4], last_seen_at=1_767_225_600_000)  # milliseconds: the record goes back
    ws.update_contact(ids[5], custom_attributes={"trial_ends_at": -5})  # below zero: the record goes back
    for contact in ids[10:410]:
        ws.update_contact(contact, language_override="fr")
    ws.update_contact(ids[6], location={"type": "location", "city": "Cork", "geo": {"lat": 51.9}})  # deeper
    ws.update_contact(ids[7], custom_attributes={"seats": "12"})  # text in an integer attribute
    ws.update_contact(ids[8], owner_id="7")  # a text id where the others are integers
    ws.update_contact(ids[9], custom_attributes={"seats": 2**63})  # beyond a bigint: kept aside


def _counts(caplog: pytest.LogCaptureFixture) -> tuple[int, int, int]:
    """(records built as Arrow tables, shaped the usual way, of the first read by the lane) of the
    runs with the lane, since `caplog` was last cleared."""
    found = [tuple(int(g) for g in m.groups()) for r in caplog.records if (m := _COUNTS.search(r.getMessage()))]
    lane_runs = [c for c in found if c[2] > 0]
    assert len(lane_runs) == 1, f"expected one run with the lane, got {found}"
    return lane_runs[0]  # type: ignore[return-value]


def _both_ways(emu: EmulatorServer, tmp_path: Path, caplog: pytest.LogCaptureFixture, dsn: str | None,
               destination: Any = None, dataset: str = "lane") -> None:
    caplog.set_level(logging.INFO, logger="intercom_elt.sources.intercom.readers")
    lane = Sync(emu, tmp_path / "lane", destination, dataset + "_lane")
    walk = Sync(emu, tmp_path / "walk", destination, dataset + "_walk")
    for round_ in ("first sync", "incremental"):
        if round_ == "incremental":
            ws = emu.workspace
            ws.clock.advance(3600)
            ids = ws.ids("contacts")
            # the values the reader refused made plain again, then enough changes for the lane's batches
            ws.update_contact(ids[6], location={"type": "location", "country": "Ireland", "region": "Munster", "city": "Cork"})
            ws.update_contact(ids[7], custom_attributes={"seats": 12})
            ws.update_contact(ids[8], owner_id=7)
            ws.update_contact(ids[9], custom_attributes={"seats": 5})
            for contact in ids[:1200]:
                ws.update_contact(contact, name=f"Renamed {contact}")
            ws.update_contact(ids[1300], last_seen_at=1_767_225_600_000)
        caplog.clear()
        fmt = LOADER_FILE_FORMATS["duckdb" if dsn is None else "postgres"]  # the product's load path
        lane.run(streams=STREAMS, loader_file_format=fmt)
        walk.run(streams=STREAMS, json_lane=False, loader_file_format=fmt)
        _assert_same(Warehouse(lane, dsn), Warehouse(walk, dsn), same_order=round_ == "first sync")
        columnar, usual, by_lane = _counts(caplog)
        assert by_lane > 0 and columnar - by_lane > 0 and usual > 0, (round_, columnar, usual, by_lane)
    rejected = Warehouse(lane, dsn).query("select reason from _intercom_rejects")
    assert any("beyond a 64-bit integer" in reason for (reason,) in rejected), rejected


def test_json_lane_and_columnizer_land_the_same_duckdb(workspace: EmulatorServer, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    _both_ways(workspace, tmp_path, caplog, None)


@pytest.mark.postgres
def test_json_lane_and_columnizer_land_the_same_postgres(workspace: EmulatorServer, tmp_path: Path,
                                                        postgres_credentials: str, postgres_dataset: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    destination = dlt.destinations.postgres(postgres_credentials)
    try:
        _both_ways(workspace, tmp_path, caplog, postgres_credentials, destination, postgres_dataset)
    finally:
        from tests.conftest import drop_schemas

        drop_schemas(postgres_credentials, *(f"{postgres_dataset}_{way}{tail}" for way in ("lane", "walk")
                                             for tail in ("", "_staging")))

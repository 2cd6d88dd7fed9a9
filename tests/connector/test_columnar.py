"""The fast path (contacts and companies built as Arrow tables, columnar.py) lands what the usual path
(dict shaping and dlt's per-row normalize) lands: the same tables, columns with the same types (in the same
order on a first sync), the same rows and child rows, the same stored dlt schema and the same rejects,
on a first sync and on an incremental one, in DuckDB and in Postgres.

The emulator serves seeded shape drift (optional fields dropped, objects nulled, strings and objects
swapped, envelopes under the other key, records without id or cursor), so some records are taken by
the fast path and others must go the usual way; the test checks both happened.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import psycopg2
import pytest

from intercom_emulator.testing import EmulatorServer
from tests.connector.conftest import Sync

STREAMS = ["contacts", "companies"]
DRIFT = {"shape_drift_rate": 0.3, "missing_id_rate": 0.03, "missing_cursor_rate": 0.03}
LINKAGE = ("_dlt_id", "_dlt_load_id", "_dlt_parent_id", "_dlt_root_id")
_COUNTS = re.compile(r"(\w+): (\d+) records built as Arrow tables, (\d+) shaped the usual way")


# which records drift depends on their cursors, and so on the workspace's anchor (by default the
# day the tests run): fixed, the test sees the same drifted records every day (test_shape_drift.py)
DRIFT_ANCHOR = 1_796_428_800  # 2026-12-05 00:00 UTC


@pytest.fixture
def drifting() -> Iterator[EmulatorServer]:
    with EmulatorServer(profile="tiny", seed=7, fault_seed=11, anchor=DRIFT_ANCHOR) as server:
        server.configure(faults=DRIFT)
        yield server


class Warehouse:
    """Reads one synced dataset back, in DuckDB or Postgres, as a user would compare it."""

    def __init__(self, sync: Sync, dsn: str | None = None) -> None:
        self.sync, self.dsn = sync, dsn

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.dsn is None:
            return self.sync.query(sql)
        with psycopg2.connect(self.dsn) as conn, conn.cursor() as cur:
            cur.execute(f'SET search_path = "{self.sync.dataset}"')
            cur.execute(sql)
            return cur.fetchall()

    def columns(self) -> dict[str, list[tuple[str, str]]]:
        """{table: [(column, type)] in the table's order}, the run history left out (run ids differ)."""
        rows = self.query(
            "select table_name, column_name, data_type from information_schema.columns "
            f"where table_schema = '{self.sync.dataset}' order by table_name, ordinal_position"
        )
        out: dict[str, list[tuple[str, str]]] = {}
        for table, column, data_type in rows:
            if not table.startswith("_dlt") and table != "_intercom_runs":
                out.setdefault(table, []).append((column, data_type))
        return out

    def rows(self, table: str, columns: list[tuple[str, str]]) -> list[str]:
        """The table's rows without the random `_dlt_*` ids; a child row with its parent's id instead."""
        names = [c for c, _ in columns if c not in LINKAGE]
        if table == "_intercom_rejects":
            names = ["stream", "reject_key", "record_id", "reason"]
        selected = ", ".join(f't."{n}"' for n in names)
        if "__" in table:
            parent = table.split("__")[0]
            orphans = self.query(f'select count(*) from "{table}" t left join "{parent}" p on p._dlt_id = t._dlt_parent_id '
                                 "where p._dlt_id is null or t._dlt_root_id <> p._dlt_id")
            assert orphans == [(0,)], f"{table}: child rows without their parent row"
            data = self.query(f'select {selected}, p.id from "{table}" t join "{parent}" p on p._dlt_id = t._dlt_parent_id')
        else:
            data = self.query(f'select {selected} from "{table}" t')
        return sorted(repr(row) for row in data)


def _stored_tables(sync: Sync) -> dict[str, Any]:
    """The stored dlt schema's tables; the rejects table without its `resource`: the stream that
    happened to keep a record aside first (contacts and companies run side by side) names it."""
    tables = {name: table for name, table in sync.pipeline.default_schema.to_dict()["tables"].items()
              if not name.startswith("_dlt")}
    tables.get("_intercom_rejects", {}).pop("resource", None)
    return tables


def _path_counts(caplog: pytest.LogCaptureFixture) -> dict[str, tuple[int, int]]:
    """{stream: (records built columnar, records shaped the usual way)} of the runs logged so far."""
    counts: dict[str, tuple[int, int]] = {}
    for record in caplog.records:
        match = _COUNTS.search(record.getMessage())
        if match:
            columnar, usual = counts.get(match[1], (0, 0))
            counts[match[1]] = (columnar + int(match[2]), usual + int(match[3]))
    return counts


def _assert_same(fast: Warehouse, usual: Warehouse, same_order: bool) -> None:
    """Same tables, columns and types (in the same order when `same_order`), rows and stored schema.

    The order can differ only for a column first brought by a record that went the usual way in
    a run where Arrow tables added columns too: dlt adds the Arrow ones at extract, the others at
    normalize.
    """
    fast_columns, usual_columns = fast.columns(), usual.columns()
    assert list(fast_columns) == list(usual_columns)
    for table, columns in usual_columns.items():
        if same_order:
            assert fast_columns[table] == columns, f"{table}: columns, their order or types differ"
        else:
            assert sorted(fast_columns[table]) == sorted(columns), f"{table}: columns or types differ"
        assert fast.rows(table, columns) == usual.rows(table, columns), f"{table}: rows differ"
    assert _stored_tables(fast.sync) == _stored_tables(usual.sync)


def _change_workspace(emu: EmulatorServer) -> None:
    """Renames, a tag added, a contact's tags all removed (child rows replaced, not added to), and
    values only the usual path takes."""
    ws = emu.workspace
    contacts = ws.ids("contacts")
    tags = ws.ids("tags")
    for contact in contacts[:6]:
        ws.update_contact(contact, name=f"Renamed {contact}")
    ws.tag_contact(contacts[0], tags[0])
    for tag in ws.contact_tags(contacts[1]):
        ws.untag_contact(contacts[1], tag["id"])
    # values only the usual path takes: each such record must land as that path lands it
    ws.update_contact(contacts[2], custom_attributes={"plan_tier": 7})  # a text column given an integer
    ws.update_contact(contacts[3], last_seen_at="2026-03-01T10:00:00Z")  # a timestamp as ISO text
    ws.update_contact(contacts[4], location={"type": "location", "city": "Cork", "geo": {"lat": 51.9}})  # deeper
    companies = ws.ids("companies")
    for company in companies[:4]:  # several: the served drift (seeded by the record's time) may drop the field
        ws.update_company(company, remote_created_at=1_767_225_600_000)  # milliseconds
    ws.update_company(companies[4], monthly_spend=12)  # an integer in a double column: taken, as 12.0


def _sync_both(emu: EmulatorServer, tmp_path: Path, destination: Any = None, dataset: str = "intercom") -> tuple[Sync, Sync]:
    fast = Sync(emu, tmp_path / "fast", destination, dataset + "_fast")
    usual = Sync(emu, tmp_path / "usual", destination, dataset + "_usual")
    return fast, usual


def _run_twice_and_compare(emu: EmulatorServer, fast: Sync, usual: Sync, dsn: str | None,
                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="intercom_elt.sources.intercom.readers")
    for round_ in ("first sync", "incremental"):
        if round_ == "incremental":
            _change_workspace(emu)
        fast.run(streams=STREAMS)
        usual.run(streams=STREAMS, columnar=False)
        _assert_same(Warehouse(fast, dsn), Warehouse(usual, dsn), same_order=round_ == "first sync")
    counts = _path_counts(caplog)
    for stream in STREAMS:
        columnar, usual_records = counts[stream]
        assert columnar > 0 and usual_records > 0, f"{stream}: both paths must have been taken, got {counts}"
    # the records the usual path took are only the odd ones: most go the fast way
    assert counts["contacts"][0] > 2 * counts["contacts"][1]
    rejected = Warehouse(fast, dsn).query("select count(*) from _intercom_rejects")
    assert rejected[0][0] > 0


def test_columnar_and_usual_paths_land_the_same_duckdb(drifting: EmulatorServer, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    fast, usual = _sync_both(drifting, tmp_path)
    _run_twice_and_compare(drifting, fast, usual, None, caplog)


@pytest.mark.postgres
def test_columnar_and_usual_paths_land_the_same_postgres(drifting: EmulatorServer, tmp_path: Path,
                                                        postgres_credentials: str, postgres_dataset: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    destination = dlt.destinations.postgres(postgres_credentials)
    fast, usual = _sync_both(drifting, tmp_path, destination, postgres_dataset)
    try:
        _run_twice_and_compare(drifting, fast, usual, postgres_credentials, caplog)
    finally:
        from tests.conftest import drop_schemas

        drop_schemas(postgres_credentials, *(f"{sync.dataset}{tail}" for sync in (fast, usual) for tail in ("", "_staging")))

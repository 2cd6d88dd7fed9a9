"""A stream's first load into empty tables is appended, not merged (sources/intercom/first_load.py).

What a user checks after each kind of run, on DuckDB and Postgres, over real HTTP:
* a first sync lands every row exactly once without a staging copy, its child tables carry
  `_dlt_root_id`, and the next, incremental run merges into them (a contact's tags replaced);
* a record that changed while the first sync read it, and so came twice, is kept once in its
  newest version: that package is merged after all;
* a backfill over tables that already hold rows merges, and duplicates nothing;
* `empty_tables` says empty only for a missing dataset or table, or a table without rows, and
  "unsure" (an unreachable destination) means rows.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import dlt
import pendulum
import pytest

from intercom_elt.pipelines.config import Target as PipelineTarget
from intercom_elt.pipelines.destination import pipeline_run_kwargs
from intercom_elt.pipelines.first_load import empty_tables
from intercom_emulator.testing import EmulatorServer
from tests.resilience.conftest import (
    Target,
    Warehouse,
    assert_matches_ground_truth,
    product_pipeline,
    sync_product_path,
    wait_until,
)

START = "2020-01-01"
# 1,000 contacts: 7 search pages, one chain (a search is split into windows from 8 pages)
WORKSPACE = {"profile": "bench", "seed": 3, "scale": 0.05}


def _pipeline(target: Target, tmp_path: Path) -> dlt.Pipeline:
    return product_pipeline(target, tmp_path / "pipelines", "first_load")


def _sync(emu: EmulatorServer, target: Target, tmp_path: Path, streams: tuple[str, ...], **options: Any) -> dlt.Pipeline:
    """The product's run path (`run_until_caught_up`), in this process."""
    return sync_product_path(emu, target, tmp_path / "pipelines", "first_load", streams, **options)[0]


def _disposition(pipeline: dlt.Pipeline, table: str) -> str:
    """How dlt loaded the table in the last package (the schema the package was loaded with)."""
    return str(pipeline.default_schema.get_table(table)["write_disposition"])


def _staged_rows(target: Target, table: str) -> int:
    """Rows of `table` in dlt's staging dataset (0 when it was never staged)."""
    staging = Warehouse(target.kind, f"{target.dataset}_staging", target.warehouse.duckdb_path, target.warehouse.dsn)
    return staging.query(f"select count(*) from {table}")[0][0] if table in staging.tables() else 0


@pytest.mark.parametrize("columnar", [True, False], ids=["arrow", "rows"])
def test_first_sync_appends_and_the_next_run_merges(
    columnar: bool, target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both ways rows are made: Arrow tables (columnar.py), and dlt's normalizer (`columnar=false`),
    whose child tables get `_dlt_root_id` only because the source propagates root keys."""
    if not columnar:
        monkeypatch.setenv("SOURCES__INTERCOM__COLUMNAR", "false")
    with EmulatorServer(**WORKSPACE) as emu:
        ws = emu.workspace
        pipeline = _sync(emu, target, tmp_path, ("contacts", "companies"), start_date=START)
        assert _disposition(pipeline, "contacts") == "append"
        assert _disposition(pipeline, "companies") == "append"
        assert _staged_rows(target, "contacts") == 0
        first = assert_matches_ground_truth(target.warehouse, ws, ("contacts", "companies"))
        assert first["contacts"] == 1_000 and first["contacts__tags"] > 0
        orphans = target.warehouse.query("select count(*) from contacts__tags where _dlt_root_id is null")
        assert orphans[0][0] == 0

        # an hour later one contact loses a tag: the merge must replace its tag rows
        ws.clock.advance(3600)
        tagged = next(c for c in ws.ground_truth("contacts") if len(c["tags"]["data"]) >= 2 and not c["tags"].get("has_more"))
        before = target.warehouse.query(f"select count(*) from contacts__tags where contact_id = '{tagged['id']}'")[0][0]
        assert before >= 2
        ws.untag_contact(tagged["id"], tagged["tags"]["data"][0]["id"])
        pipeline = _sync(emu, target, tmp_path, ("contacts", "companies"), start_date=START)
        assert _disposition(pipeline, "contacts") == "merge"
        second = assert_matches_ground_truth(target.warehouse, ws, ("contacts", "companies"))
    assert second["contacts"] == 1_000
    after = target.warehouse.query(f"select count(*) from contacts__tags where contact_id = '{tagged['id']}'")[0][0]
    assert after == before - 1


def test_a_record_read_twice_in_the_first_sync_is_merged_to_its_newest_version(
    target: Target, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """The oldest contact changes after the first page was served: the search hands it again on
    the last page (it now sorts last), so the package holds it twice and is merged (and the log
    says so)."""
    caplog.set_level(logging.INFO, logger="intercom_elt")
    with EmulatorServer(**WORKSPACE, faults={"latency_ms": 100}) as emu:
        ws = emu.workspace
        oldest = min(ws.ground_truth("contacts"), key=lambda c: (int(c["updated_at"]), str(c["id"])))
        failure: list[BaseException] = []
        pipelines: list[dlt.Pipeline] = []

        def run() -> None:
            try:
                pipelines.append(_sync(emu, target, tmp_path, ("contacts",), start_date=START))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
                failure.append(exc)

        sync = threading.Thread(target=run)
        sync.start()
        # the chain asks for page 2 only once page 1 (the oldest contacts) has come back
        assert wait_until(lambda: emu.request_log.get("POST /contacts/search", 0) >= 2, timeout=60)
        ws.update_contact(oldest["id"], name="changed after its page")
        sync.join(timeout=120)
        assert not sync.is_alive() and not failure, failure
        assert _disposition(pipelines[0], "contacts") == "merge"
        assert _staged_rows(target, "contacts") == 1_001  # both versions staged, one kept
        compared = assert_matches_ground_truth(target.warehouse, ws, ("contacts",))
    assert compared["contacts"] == 1_000
    kept = target.warehouse.query(f"select name from contacts where id = '{oldest['id']}'")
    assert kept == [("changed after its page",)]
    said = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("contacts: no rows in the destination yet, appended into") for m in said), said
    assert any(m.startswith("contacts: a record came twice") for m in said), said


def _loaded_packages(tmp_path: Path) -> int:
    loaded = tmp_path / "pipelines" / "first_load" / "load" / "loaded"
    return sum(1 for p in loaded.iterdir() if p.is_dir()) if loaded.is_dir() else 0


def _package_dispositions(tmp_path: Path, table: str) -> list[str]:
    """How each loaded package wrote `table`, in load order (the schema each package was loaded with)."""
    loaded = tmp_path / "pipelines" / "first_load" / "load" / "loaded"
    schemas = [json.loads((p / "schema.json").read_text()) for p in sorted(loaded.iterdir(), key=lambda p: float(p.name))]
    return [s["tables"][table]["write_disposition"] for s in schemas if table in s["tables"]]


def test_a_first_sync_in_several_packages_appends_each_and_merges_after_a_repeat(target: Target, tmp_path: Path) -> None:
    """A split search commits a package every 1,000 contacts. Each is appended while its ids are
    new to the run; a contact of the first package that changes once it is loaded comes again in
    the tail, so the package that holds the tail is merged, keeping the newest version."""
    with EmulatorServer(profile="bench", seed=1, scale=0.15, faults={"latency_ms": 60}) as emu:  # 3,000 contacts
        ws = emu.workspace
        oldest = min(ws.ground_truth("contacts"), key=lambda c: (int(c["updated_at"]), str(c["id"])))
        failure: list[BaseException] = []

        def run() -> None:
            try:
                _sync(emu, target, tmp_path, ("contacts",), start_date=START, checkpoint_records=1_000)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
                failure.append(exc)

        sync = threading.Thread(target=run)
        sync.start()
        assert wait_until(lambda: _loaded_packages(tmp_path) >= 1, timeout=60)
        appended = target.warehouse.query("select count(*) from contacts")[0][0]
        assert 0 < appended < 3_000 and _staged_rows(target, "contacts") == 0  # the first package: appended
        ws.update_contact(oldest["id"], name="changed after its package")
        sync.join(timeout=120)
        assert not sync.is_alive() and not failure, failure
        compared = assert_matches_ground_truth(target.warehouse, ws, ("contacts",))
    assert compared["contacts"] == 3_000
    dispositions = _package_dispositions(tmp_path, "contacts")
    assert len(dispositions) >= 3
    assert dispositions == ["append"] * (len(dispositions) - 1) + ["merge"]  # the tail is the last package's
    kept = target.warehouse.query(f"select name from contacts where id = '{oldest['id']}'")
    assert kept == [("changed after its package",)]


def test_a_backfill_over_loaded_tables_merges(target: Target, tmp_path: Path) -> None:
    with EmulatorServer(**WORKSPACE) as emu:
        _sync(emu, target, tmp_path, ("contacts",), start_date=START)
        end = pendulum.from_timestamp(emu.workspace.clock.now() + 3600).to_iso8601_string()
        pipeline = _sync(emu, target, tmp_path, ("contacts",), start_date=START, end_date=end)  # reads every contact again
        assert _disposition(pipeline, "contacts") == "merge"
        compared = assert_matches_ground_truth(target.warehouse, emu.workspace, ("contacts",))
    assert compared["contacts"] == 1_000


def test_empty_tables_asks_the_destination(target: Target, tmp_path: Path) -> None:
    pipeline = _pipeline(target, tmp_path)
    assert empty_tables(pipeline, ["contacts", "companies"]) == ["contacts", "companies"]  # no dataset yet
    pipeline.run([{"id": "1"}], table_name="contacts", **pipeline_run_kwargs(PipelineTarget(destination=target.kind)))
    with pipeline.sql_client() as client:
        client.execute_sql(f"CREATE TABLE {client.make_qualified_table_name('tags')} (id text)")
    assert empty_tables(pipeline, ["contacts", "tags", "companies"]) == ["tags", "companies"]


def test_an_unreachable_destination_counts_as_rows(tmp_path: Path) -> None:
    pipeline = dlt.pipeline(
        pipeline_name="first_load_down", dataset_name="nowhere", pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.postgres("postgresql://postgres@127.0.0.1:1/test"),  # nothing listens on port 1
    )
    assert empty_tables(pipeline, ["contacts"]) == []

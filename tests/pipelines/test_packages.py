"""Load packages after a sync: exact row counts from the loaded files, and which files the cleanup removes."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from intercom_elt.pipelines import config, destination, preflight
from intercom_elt.pipelines import intercom_pipeline as ip
from intercom_elt.pipelines.cli import main
from intercom_elt.pipelines.packages import (
    count_then_clean,
    csv_records,
    file_rows,
    remove_loaded_job_files,
    run_load_ids,
)
from tests.conftest import write_job_file


def _write_csv(path: Path, rows: list[list[str]], *, compress: bool = False) -> None:
    opener = gzip.open if compress else open
    with opener(path, "wt", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


@pytest.mark.parametrize("compress", [False, True])
def test_csv_records_counts_rows_not_lines_nor_cells(tmp_path: Path, compress: bool) -> None:
    path = tmp_path / "conversation_parts.abc.0.csv"
    rows = [["id", "body", "_dlt_id"], ["1", "first line\nsecond line", "x1"], ["2", "", "x2"], ["3", "a,b", "x3"]]
    _write_csv(path, rows, compress=compress)
    assert csv_records(str(path), ["id", "body", "_dlt_id", "author__id"]) == 3


def test_csv_records_without_a_header(tmp_path: Path) -> None:
    path = tmp_path / "tags.abc.0.csv"
    _write_csv(path, [["9300000", "vip", "x1"], ["9300001", "bug", "x2"]])
    assert csv_records(str(path), ["id", "name", "_dlt_id"]) == 2
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert csv_records(str(empty), ["id"]) == 0


def test_cleanup_only_touches_completed_jobs_of_loaded_packages(tmp_path: Path) -> None:
    def job(folder: str, name: str, size: int = 10) -> Path:
        path = tmp_path / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
        return path

    done = job("load/loaded/1.1/completed_jobs", "contacts.a.0.csv", 100)
    state = job("load/loaded/1.1", "load_package_state.json")
    failed_ok = job("load/loaded/1.2/completed_jobs", "tags.a.0.csv")
    failed = job("load/loaded/1.2/failed_jobs", "tags.b.0.csv")
    pending = job("load/normalized/1.3/new_jobs", "contacts.c.0.csv")
    extracted = job("normalize/extracted/1.4/new_jobs", "contacts.d.0.typed-jsonl")

    assert remove_loaded_job_files(tmp_path) == 100
    assert not done.exists()
    for kept in (state, failed_ok, failed, pending, extracted):
        assert kept.exists(), kept
    assert remove_loaded_job_files(tmp_path / "nothing-here") == 0


def test_user_who_keeps_loaded_files_keeps_them(emulator, token_env, target_args, tmp_path, monkeypatch, capsys):
    from tests.pipelines.test_cli import _summary_rows

    monkeypatch.setenv("LOAD__DELETE_COMPLETED_JOBS", "false")
    assert main(["run", "--base-url", emulator.base_url, "--streams", "admins,tags", *target_args]) == 0
    rows = _summary_rows(capsys.readouterr().out)
    assert rows == {s: len(emulator.workspace.ground_truth(s)) for s in ("admins", "tags")}
    loaded = tmp_path / "dlt_pipelines" / "intercom" / "load" / "loaded"
    kept = {p.name.split(".")[0] for p in loaded.glob("*/completed_jobs/*")}
    assert {"admins", "tags"} <= kept, kept


@pytest.mark.parametrize("fmt", ["parquet", "insert_values", "jsonl", "csv"])
def test_file_rows_counts_what_dlt_wrote(tmp_path: Path, fmt: str) -> None:
    columns = {n: {"name": n, "data_type": "text", "nullable": True} for n in ("id", "body")}
    rows = [{"id": str(i), "body": "two\nlines, (and) 'quotes'" if i % 2 else None} for i in range(7)]
    path = write_job_file(tmp_path / f"parts.abc.0.{fmt}", fmt, columns, [rows[:3], rows[3:]])
    assert file_rows(str(path), fmt, columns) == 7
    assert file_rows(str(path), "sql", columns) is None


def test_summary_counts_the_package_an_interrupted_run_left(
    emulator, token_env, target_args, duckdb_file, tmp_path, capsys
):
    """A run killed before its load leaves a package; the next run loads it first and counts it."""
    from tests.pipelines.test_cli import _summary_rows

    streams = ["admins", "tags"]
    target = config.Target(destination="duckdb", duckdb_path=str(duckdb_file), pipelines_dir=str(tmp_path / "dlt_pipelines"))
    settings = config.SourceSettings(access_token="test-token", base_url=emulator.base_url, streams=streams)
    pipeline = destination.build_pipeline(target)
    pipeline.extract(ip.build_source(settings, preflight.make_client(settings)), **destination.pipeline_run_kwargs(target))
    pipeline.normalize()  # the interrupted run got this far
    assert main(["run", "--base-url", emulator.base_url, "--streams", ",".join(streams), *target_args]) == 0
    rows = _summary_rows(capsys.readouterr().out)
    # the left package holds every row; the new run finds them unchanged (the small tables load
    # changes only), so the whole count comes from the package the last trace knows nothing of
    for stream in streams:
        assert rows[stream] == len(emulator.workspace.ground_truth(stream)), (stream, rows)


def test_summary_falls_back_to_dlts_counts_when_dlt_deleted_the_files(
    emulator, token_env, target_args, monkeypatch, capsys
):
    from tests.pipelines.test_cli import _summary_rows

    monkeypatch.setenv("LOAD__DELETE_COMPLETED_JOBS", "true")
    assert main(["run", "--base-url", emulator.base_url, "--streams", "admins,tags", *target_args]) == 0
    rows = _summary_rows(capsys.readouterr().out)
    assert rows == {s: len(emulator.workspace.ground_truth(s)) for s in ("admins", "tags")}


def test_an_unreadable_load_file_costs_the_exact_count_not_the_run(tmp_path: Path, caplog) -> None:
    """The data is in: a file that cannot be counted gives dlt's counts and a warning, no error."""
    import dlt

    pipeline = dlt.pipeline("count_clean", destination=dlt.destinations.duckdb(str(tmp_path / "w.duckdb")),
                            dataset_name="d", pipelines_dir=str(tmp_path / "p"))
    pipeline.run([{"id": i} for i in range(5)], table_name="things", loader_file_format="parquet")
    files = list(Path(pipeline.working_dir).glob("load/loaded/*/completed_jobs/things.*.parquet"))
    assert files
    files[0].write_bytes(b"not parquet")
    assert count_then_clean(pipeline, run_load_ids(pipeline), None) == {"things": 5}
    assert "could not count the loaded rows" in caplog.text
    assert not list(Path(pipeline.working_dir).glob("load/loaded/*/completed_jobs/*"))

"""A load job killed after its rows committed, but before dlt recorded that, loads each row once on resume.

dlt commits a job's rows, then writes a `.pending_transitions` marker; a kill in between makes the
next load run the job again (pipelines/resume.py has the details). Here a child process really dies
(`os._exit`) exactly there, inside dlt's `PackageStorage.save_pending_transition` for one table's job
of an update load. The resume goes through `finish_pending_packages`, and the whole warehouse must
then equal a clean load: every update in, no row twice. Tables mirror the connector's shapes: merge
root with a nested list, single-table merge, replace, scd2 (history mode) with a nested list, and
dlt's own pipeline state.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import pendulum
import pytest

from intercom_elt.pipelines.destination import LOADER_FILE_FORMATS
from intercom_elt.pipelines.resume import UnconfirmedJob, _row_ids, finish_pending_packages, unconfirmed_jobs

REPO = Path(__file__).resolve().parents[2]
CRASHED = 137
DESTINATIONS = ("duckdb", pytest.param("postgres", marks=pytest.mark.postgres))
TABLES = ("contacts", "contacts__tags", "logs", "attrs", "hist", "hist__items", "_dlt_pipeline_state")
# text a job file must survive when the undo reads it back (quotes, separators, escapes, lines)
TRICKY = "it's, (a) \\ \"test\"\nsecond line E'x' ),\r\n"


def resources(version: int) -> list[Any]:
    """Version 1 is the first load; version 2 updates and adds records in every table."""
    changed = (1, 5) if version == 2 else range(5)

    @dlt.resource(primary_key="id", write_disposition="merge")
    def contacts() -> Iterator[dict[str, Any]]:
        dlt.current.resource_state()["version"] = version  # a state change: a `_dlt_pipeline_state` job
        for i in changed:
            v = version if i == 1 else 1
            yield {"id": i, "name": f"c{i}v{v}", "note": TRICKY, "tags": [{"tag": f"t{i}"}, {"tag": f"t{i}v{v}"}]}

    @dlt.resource(primary_key="id", write_disposition="merge")
    def logs() -> Iterator[dict[str, Any]]:
        for i in ((1, 3) if version == 2 else range(3)):
            yield {"id": i, "x": i + 100 * (version - 1)}

    @dlt.resource(primary_key=("model", "id"), write_disposition="replace")
    def attrs() -> Iterator[dict[str, Any]]:
        for i in range(3 + version):
            yield {"model": "contact", "id": i, "name": f"a{i}v{version}"}

    @dlt.resource(write_disposition={"disposition": "merge", "strategy": "scd2"}, merge_key="id")
    def hist() -> Iterator[dict[str, Any]]:
        for i in ((1, 4) if version == 2 else range(4)):
            yield {"id": i, "v": f"h{i}v{version}", "items": [{"k": f"{i}a{version}"}, {"k": f"{i}b{version}"}]}

    return [contacts(), logs(), attrs(), hist()]


def expected_after_update() -> dict[str, list[tuple[Any, ...]]]:
    """What a clean load of version 1, then version 2, leaves (the comparison's ground truth)."""
    return {
        "contacts": sorted((i, f"c{i}v{2 if i == 1 else 1}") for i in range(6)),
        "contacts__tags": sorted(t for i in range(6) for t in (f"t{i}", f"t{i}v{2 if i == 1 else 1}")),
        "logs": [(0, 0), (1, 101), (2, 2), (3, 103)],
        "attrs": [(i, f"a{i}v2") for i in range(5)],
        # scd2: every version is a row; id 1's first version is retired
        "hist": sorted([(i, f"h{i}v1", i != 1) for i in range(4)] + [(1, "h1v2", True), (4, "h4v2", True)]),
        "hist__items": sorted([f"{i}{s}1" for i in range(4) for s in "ab"] + [f"{i}{s}2" for i in (1, 4) for s in "ab"]),
    }


class Setup:
    """One pipeline (DuckDB file or Postgres schema) driven in-process and from killed children."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.args = {"kind": kind, "pipelines_dir": str(tmp_path / "pipelines"), "duckdb": str(tmp_path / "w.duckdb"),
                     "dataset": f"resume_{uuid.uuid4().hex[:8]}"}

    def pipeline(self) -> dlt.Pipeline:
        return make_pipeline(self.args)

    def child(self, phase: str, crash: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """Run `phase` (the version 2 load, or the resume) in a child that dies at `crash`."""
        code = f"from tests.resilience.test_interrupted_load_job import child_main; child_main({json.dumps(self.args)!r}, {phase!r}, {json.dumps(crash)!r})"
        return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                              env={**__import__("os").environ, "PYTHONPATH": str(REPO), "RUNTIME__DLTHUB_TELEMETRY": "false"})

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self.pipeline().sql_client() as client:
            return [tuple(r) for r in client.execute_sql(sql)]

    def assert_exact(self) -> None:
        """Every table equals the clean-load truth, no `_dlt_id` twice, nothing pending."""
        for table in TABLES:
            total, distinct = self.rows(f"select count(*), count(distinct _dlt_id) from {table}")[0]
            assert total == distinct, f"{table}: {total - distinct} rows loaded twice (same _dlt_id)"
        got = {
            "contacts": sorted(self.rows("select id, name from contacts")),
            "contacts__tags": sorted(r[0] for r in self.rows("select tag from contacts__tags")),
            "logs": sorted(self.rows("select id, x from logs")),
            "attrs": sorted(self.rows("select id, name from attrs")),
            "hist": sorted(self.rows("select id, v, _dlt_valid_to is null from hist")),
            "hist__items": sorted(r[0] for r in self.rows("select k from hist__items")),
        }
        assert got == expected_after_update()
        versions = self.rows("select count(*), count(distinct version_hash) from _dlt_pipeline_state")[0]
        assert versions[0] == versions[1] == 2, versions  # one state row per package
        assert not self.pipeline().list_normalized_load_packages()

    def drop(self) -> None:
        if self.kind == "postgres":
            from tests.conftest import POSTGRES_DSN, drop_schemas

            drop_schemas(POSTGRES_DSN, self.args["dataset"], f"{self.args['dataset']}_staging")


def make_pipeline(args: dict[str, str]) -> dlt.Pipeline:
    if args["kind"] == "duckdb":
        destination: Any = dlt.destinations.duckdb(args["duckdb"])
    else:
        from tests.conftest import POSTGRES_DSN

        destination = dlt.destinations.postgres(POSTGRES_DSN)
    return dlt.pipeline("resume_exact", destination=destination, dataset_name=args["dataset"],
                        pipelines_dir=args["pipelines_dir"])


def child_main(args_json: str, phase: str, crash_json: str) -> None:
    """Child process: fault-inject dlt itself, then load version 2 or resume; `os._exit` is the kill."""
    import os

    from dlt.common.storages.load_package import PackageStorage

    args, crash = json.loads(args_json), json.loads(crash_json)
    pipeline = make_pipeline(args)
    if crash["at"] == "commit":  # the job's rows are committed, its marker not yet written
        save = PackageStorage.save_pending_transition

        def save_or_die(self: Any, load_id: str, file_name: str, *a: Any, **kw: Any) -> None:
            if file_name.startswith(crash["table"] + "."):
                os._exit(CRASHED)
            save(self, load_id, file_name, *a, **kw)

        PackageStorage.save_pending_transition = save_or_die  # type: ignore[method-assign]
    elif crash["at"] == "after_first_delete":  # the resume's undo committed one DELETE, then dies
        with pipeline.sql_client() as probe:
            sql_client_class = type(probe)
        execute, commit, deleted = sql_client_class.execute_sql, sql_client_class.commit_transaction, []

        def execute_and_note(self: Any, sql: Any, *a: Any, **kw: Any) -> Any:
            if str(sql).lstrip().upper().startswith("DELETE FROM"):
                deleted.append(sql)
            return execute(self, sql, *a, **kw)

        def commit_then_die(self: Any) -> None:
            commit(self)
            if deleted:
                os._exit(CRASHED)

        sql_client_class.execute_sql = execute_and_note  # type: ignore[method-assign]
        sql_client_class.commit_transaction = commit_then_die  # type: ignore[method-assign]
    if phase == "load":
        pipeline.run(resources(2), loader_file_format=LOADER_FILE_FORMATS[args["kind"]])
    else:
        finish_pending_packages(pipeline)


@pytest.fixture(params=DESTINATIONS)
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    s = Setup(request.param, tmp_path)
    s.pipeline().run(resources(1), loader_file_format=LOADER_FILE_FORMATS[s.kind])
    try:
        yield s
    finally:
        s.drop()


def _kill_between_commit_and_marker(setup: Setup, table: str, phase: str = "load") -> None:
    done = setup.child(phase, {"at": "commit", "table": table})
    assert done.returncode == CRASHED, f"the child was not killed at {table}'s commit: {done.stderr[-2000:]}"
    pending = [j.path.name for j in unconfirmed_jobs(Path(setup.pipeline().working_dir))]
    assert any(name.startswith(table + ".") for name in pending), pending


@pytest.mark.parametrize("table", TABLES)
def test_job_killed_between_commit_and_marker_loads_its_rows_once(setup: Setup, table: str) -> None:
    """The committed-but-unrecorded job is re-run; the warehouse equals a clean load."""
    _kill_between_commit_and_marker(setup, table)
    finish_pending_packages(setup.pipeline())
    setup.assert_exact()


def test_rerun_killed_again_at_the_same_point_still_loads_once(setup: Setup) -> None:
    """Two kills in a row on the same job (the resume's re-run dies like the first run)."""
    _kill_between_commit_and_marker(setup, "contacts")
    _kill_between_commit_and_marker(setup, "contacts", phase="resume")
    finish_pending_packages(setup.pipeline())
    setup.assert_exact()


def test_kill_during_the_undo_is_recovered_by_the_next_resume(setup: Setup) -> None:
    """A kill after the undo deleted one job's rows (others not yet) leaves nothing to repair by hand."""
    _kill_between_commit_and_marker(setup, "attrs")  # several jobs unconfirmed: attrs and those in flight
    assert len(unconfirmed_jobs(Path(setup.pipeline().working_dir))) >= 1
    done = setup.child("resume", {"at": "after_first_delete"})
    assert done.returncode == CRASHED, done.stderr[-2000:]
    finish_pending_packages(setup.pipeline())
    setup.assert_exact()


def test_dlt_alone_would_load_the_committed_rows_twice(tmp_path: Path) -> None:
    """Why the undo exists: without it, dlt's own resume duplicates a merge root with nested rows."""
    s = Setup("duckdb", tmp_path)
    s.pipeline().run(resources(1), loader_file_format="parquet")
    _kill_between_commit_and_marker(s, "contacts")
    s.pipeline().load()
    total, distinct = s.rows("select count(*), count(distinct _dlt_id) from contacts")[0]
    assert total > distinct, "dlt no longer re-copies a committed job: pipelines/resume.py may be unnecessary"


@pytest.mark.parametrize("fmt", ["insert_values", "csv", "parquet", "jsonl"])
def test_undo_reads_back_every_row_id_of_a_dlt_job_file(tmp_path: Path, fmt: str) -> None:
    """The ids the undo deletes are exactly the ids dlt wrote, whatever the other values hold."""
    from dlt.common.storages.load_storage import ParsedLoadJobFileName

    from tests.conftest import write_job_file

    columns = {n: {"name": n, "data_type": t, "nullable": True}
               for n, t in (("id", "bigint"), ("note", "text"), ("doc", "json"), ("at", "timestamp"), ("_dlt_id", "text"))}
    rows = [{"id": i, "note": TRICKY * (i % 3) or None, "doc": {"k": TRICKY, "n": [i, None]},
             "at": pendulum.datetime(2024, 1, 1, tz="UTC").add(seconds=i), "_dlt_id": f"id'{i}\\+/"}
            for i in range(25)]
    path = write_job_file(tmp_path / f"contacts.abc.0.{fmt}", fmt, columns, [rows[:10], rows[10:]])
    job = UnconfirmedJob("1.1", path, ParsedLoadJobFileName.parse(path.name))
    assert _row_ids(job, "_dlt_id") == [r["_dlt_id"] for r in rows]
    assert _row_ids(job, "absent") is None


def test_undo_reads_plain_sql_strings_without_backslash_escapes(tmp_path: Path) -> None:
    """Only E'...' strings escape with backslashes; dlt writes bytes as plain '\\x...' strings."""
    from dlt.common.storages.load_storage import ParsedLoadJobFileName

    from tests.conftest import write_job_file

    columns = {"raw": {"name": "raw", "data_type": "binary", "nullable": True},
               "_dlt_id": {"name": "_dlt_id", "data_type": "text", "nullable": False}}
    rows = [{"raw": b"\n\\'", "_dlt_id": "a"}, {"raw": b"\x00\xff", "_dlt_id": "b"}]
    path = write_job_file(tmp_path / "blobs.abc.0.insert_values", "insert_values", columns, [rows])
    job = UnconfirmedJob("1.1", path, ParsedLoadJobFileName.parse(path.name))
    assert _row_ids(job, "raw") == ["\\x" + r["raw"].hex() for r in rows]
    assert _row_ids(job, "_dlt_id") == ["a", "b"]

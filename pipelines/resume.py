"""Finish what an interrupted run left behind, and make dlt's re-run of an interrupted load job
exact: undo what the job may have written first.

Why: dlt marks a load job done in two steps: the destination commits the job's rows, then a
marker (`.pending_transitions/<job>`) is written. A SIGKILL between the two leaves the job in
`started_jobs` without a marker, and the next load runs it again (dlt/load/load.py,
`Load.resume_started_jobs`) without re-initializing the package (`init_client` runs once per
package), so rows that did commit are inserted a second time:

* DuckDB: a merge table's staging copy then holds the file twice. The merge SQL de-duplicates a
  single root table by primary key and nested tables by `_dlt_id`, but a root table *with* nested
  tables is inserted `WHERE _dlt_id IN (<one _dlt_id per key>)`, which keeps both copies
  (dlt/destinations/sql_jobs.py, `SqlMergeFollowupJob.gen_merge_sql`), and scd2 (history mode)
  keeps both copies of root and nested rows; tables loaded straight into the dataset (replace
  `data_attributes`, append `_dlt_pipeline_state`) simply get the rows twice.
* Postgres: `_dlt_id` is UNIQUE there, so the re-run fails with a unique violation, which dlt
  retries as transient; the package never loads and every later run fails the same way.

A job writes exactly the rows of its file, and each row carries the `_dlt_id` the file gives it. So
before dlt re-runs an unconfirmed job, the rows with that file's `_dlt_id`s are deleted from the
table the job writes to: the staging table for merge (truncated when the package started, so it only
holds this package's rows), the dataset table otherwise (append and replace rows get random ids).
What was committed is gone, what was not is untouched, and the re-run inserts each row once. The
delete is idempotent and changes no package file: a kill during it leaves the job unconfirmed, so
the next resume deletes again. No other job is touched, and dlt's own markers are trusted as dlt
trusts them. Merge SQL jobs (`.sql`) need nothing: one transaction deletes by key and inserts from
staging, so running one twice gives the same rows.

Left open: a COMMIT the killed client had already sent but the server applies only after the resume
deleted (Postgres under heavy load) would still count twice; the resume starts seconds later.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt
from dlt.common.destination.client import JobClientBase, WithStagingDataset
from dlt.common.schema.typing import C_DLT_ID, C_DLT_LOAD_ID
from dlt.common.storages import FileStorage
from dlt.common.storages.load_package import PackageStorage
from dlt.common.storages.load_storage import ParsedLoadJobFileName
from dlt.destinations.exceptions import DatabaseUndefinedRelation

logger = logging.getLogger(__name__)

DELETE_BATCH = 1000  # ids per DELETE statement (keeps the parameter list small on every engine)
IDEMPOTENT_FORMATS = ("sql",)  # merge/replace SQL: one transaction, same result when run twice


def finish_pending_packages(pipeline: dlt.Pipeline) -> list[str]:
    """Load what an interrupted run left behind before extracting anything new; its load ids.

    Why: dlt's `run()` that finds pending packages only loads them and returns, silently skipping
    the new extraction, so the first run after a crash reported success without syncing the
    changes since. Its cursors were committed with those packages, so they must land first.
    Jobs a kill left unconfirmed are undone first, so their re-run loads no row twice (`undo_unconfirmed_jobs`).
    """
    drop_stale_extracted_packages(Path(pipeline.working_dir))
    if pipeline.list_extracted_load_packages():
        logger.warning("finishing the data an interrupted run extracted but did not load")
        pipeline.normalize()
    if not pipeline.list_normalized_load_packages():
        return []
    logger.warning("loading the packages an interrupted run left behind")
    undo_unconfirmed_jobs(pipeline)
    return list(pipeline.load().loads_ids)


def drop_stale_extracted_packages(working_dir: Path) -> list[str]:
    """Remove extracted packages that normalize had already handed over to the load step.

    Why: a kill after normalize moved a package to `load/normalized` but before it deleted the
    extracted original leaves both; normalizing the original again then fails on every later run
    (the target folder exists). The normalized copy is complete, so the original is redundant.
    """
    extracted = working_dir / "normalize" / "extracted"
    done = [working_dir / "load" / "normalized", working_dir / "load" / "loaded"]
    dropped = []
    for package in sorted(p for p in extracted.glob("*") if p.is_dir()):
        if any((folder / package.name).is_dir() for folder in done):
            shutil.rmtree(package)
            shutil.rmtree(working_dir / "load" / "new" / package.name, ignore_errors=True)
            dropped.append(package.name)
    if dropped:
        logger.warning("dropped extracted packages an interrupted run had already normalized: %s", dropped)
    return dropped


@dataclass(frozen=True)
class UnconfirmedJob:
    """A job file dlt started but never recorded as finished: its rows may or may not be in."""

    load_id: str
    path: Path
    info: ParsedLoadJobFileName

    @property
    def table(self) -> str:
        return self.info.table_name


def unconfirmed_jobs(working_dir: Path) -> list[UnconfirmedJob]:
    """Data jobs in `started_jobs` of normalized packages without a pending-transition marker."""
    found: list[UnconfirmedJob] = []
    for package in sorted(p for p in (working_dir / "load" / "normalized").glob("*") if p.is_dir()):
        markers = package / PackageStorage.PENDING_TRANSITIONS_FOLDER
        for path in sorted((package / PackageStorage.STARTED_JOBS_FOLDER).glob("*")):
            if not path.is_file() or (markers / path.name).exists():
                continue  # a marker means dlt knows the outcome and will not run the job again
            info = ParsedLoadJobFileName.parse(path.name)
            if info.file_format not in IDEMPOTENT_FORMATS:
                found.append(UnconfirmedJob(package.name, path, info))
    return found


def undo_unconfirmed_jobs(pipeline: dlt.Pipeline) -> list[str]:
    """Delete what unconfirmed jobs may have committed, so dlt's re-run loads each row once.

    Returns the job file names handled. Call it right before `pipeline.load()` resumes packages.
    """
    jobs = unconfirmed_jobs(Path(pipeline.working_dir))
    if not jobs:
        return []
    logger.warning("removing the rows of %d load jobs an interrupted run may have committed: %s",
                   len(jobs), [j.path.name for j in jobs])
    done: list[str] = []
    for load_id in sorted({j.load_id for j in jobs}):
        package_jobs = [j for j in jobs if j.load_id == load_id]
        schema_name = json.loads((package_jobs[0].path.parents[1] / PackageStorage.SCHEMA_FILE_NAME).read_text())["name"]
        with pipeline.destination_client(schema_name) as client:
            for job in package_jobs:
                if _undo(client, job, package_jobs):
                    done.append(job.path.name)
    return done


def _undo(client: JobClientBase, job: UnconfirmedJob, package_jobs: Sequence[UnconfirmedJob]) -> bool:
    """Delete `job`'s rows from the table it loads into; False (and a warning) if it cannot tell."""
    staging = isinstance(client, WithStagingDataset) and client.should_load_data_to_staging_dataset(job.table)
    ids = _row_ids(job, C_DLT_ID, getattr(client.config, "csv_format", None))
    if ids is not None:
        column, batches = C_DLT_ID, [ids[i : i + DELETE_BATCH] for i in range(0, len(ids), DELETE_BATCH)]
    elif _only_writer(job, package_jobs) and C_DLT_LOAD_ID in client.schema.tables.get(job.table, {}).get("columns", {}):
        # e.g. `_dlt_pipeline_state`'s insert_values file: no job of this package confirmed rows in
        # this table, so every row with the package's load id comes from unconfirmed jobs
        column, batches = C_DLT_LOAD_ID, [[job.load_id]]
    else:
        logger.warning("cannot tell which rows load job %s wrote: its re-run may load them twice", job.path.name)
        return False
    with client.with_staging_dataset() if staging else nullcontext():
        sql = client.sql_client
        table, col = sql.make_qualified_table_name(job.table), sql.escape_column_name(column)
        try:
            with sql.begin_transaction():
                for batch in batches:
                    sql.execute_sql(f"DELETE FROM {table} WHERE {col} IN ({', '.join(['%s'] * len(batch))})", *batch)
        except DatabaseUndefinedRelation:
            pass  # the table was never created: the job wrote nothing
    return True


def _only_writer(job: UnconfirmedJob, package_jobs: Sequence[UnconfirmedJob]) -> bool:
    """No job of `job`'s table in its package is confirmed (completed, failed or marked)."""
    package = job.path.parents[1]
    unconfirmed = {j.path.name for j in package_jobs}
    for folder in (PackageStorage.COMPLETED_JOBS_FOLDER, PackageStorage.FAILED_JOBS_FOLDER,
                   PackageStorage.STARTED_JOBS_FOLDER):
        for path in (package / folder).glob("*"):
            if path.name not in unconfirmed and ParsedLoadJobFileName.parse(path.name).table_name == job.table:
                return False
    return True


def _row_ids(job: UnconfirmedJob, column: str, csv_format: Any = None) -> list[str] | None:
    """The `column` values of every row in the job file, or None for a format or file without it."""
    fmt = job.info.file_format
    if fmt == "parquet":
        import pyarrow.parquet as pq

        if column not in pq.read_schema(job.path).names:
            return None
        return [str(v) for v in pq.read_table(job.path, columns=[column]).column(column).to_pylist()]
    if fmt == "csv":
        return _csv_column(job.path, column, csv_format)
    if fmt in ("jsonl", "typed-jsonl"):
        with FileStorage.open_zipsafe_ro(str(job.path), "rt", encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        return [str(r[column]) for r in rows] if all(column in r for r in rows) else None
    if fmt == "insert_values":
        return _insert_values_column(job.path, column)
    return None


# One SQL literal of dlt's insert_values rows: E'...' (with '' and backslash escapes), '...'
# (timestamps, bytes), or a bare token (NULL, numbers, booleans).
_SQL_VALUE = re.compile(r"E'(?:[^'\\]|''|\\.)*'|'(?:[^']|'')*'|[^,]+")
_UNESCAPE = {"''": "'", "\\\\": "\\", "\\n": "\n", "\\r": "\r"}


def _sql_string(literal: str) -> str:
    """The value of one E'...' or '...' literal as dlt's `escape_postgres_literal` wrote it.

    Backslashes escape only in E'...' strings; in a plain '...' (timestamps, bytes) they are text.
    """
    if not literal.startswith("E'"):
        return literal[1:-1].replace("''", "'")
    return re.sub(r"''|\\.", lambda m: _UNESCAPE.get(m.group(0), m.group(0)[1:]), literal[2:-1])


def _insert_values_column(path: Path, column: str) -> list[str] | None:
    """One column of a dlt insert_values file (Postgres' format): one row per line, dlt's layout.

    dlt writes `INSERT INTO {}("a","b")`, `VALUES`, then `(v1,v2),` lines, the last ending in
    `);`. Its escaping keeps every row on one line (newlines become `\\n`), as dlt's own loader
    relies on.
    """
    with FileStorage.open_zipsafe_ro(str(path), "rt", encoding="utf-8") as f:
        header = f.readline()
        names = [n.strip().strip('"') for n in header[header.index("(") + 1 : header.rindex(")")].split(",")]
        if column not in names or f.readline().strip() != "VALUES":
            return None
        index = names.index(column)
        values: list[str] = []
        for line in f:
            row = line.rstrip("\n").removesuffix(",").removesuffix(";")
            if not row:
                continue
            fields = _SQL_VALUE.findall(row[1:-1])
            if len(fields) != len(names):
                return None  # not the layout we know: do not guess
            value = fields[index]
            values.append(_sql_string(value) if value.endswith("'") else value)
        return values


def _csv_column(path: Path, column: str, csv_format: Any = None) -> list[str] | None:
    """One column of a dlt csv file, read with the destination's csv settings (as its copy job does)."""
    from dlt.common.destination.configuration import CsvFormatConfiguration

    fmt = csv_format or CsvFormatConfiguration()
    if not fmt.include_header:
        return None
    with FileStorage.open_zipsafe_ro(str(path), "rt", encoding=fmt.encoding, newline="") as f:
        rows: Iterator[list[str]] = csv.reader(f, delimiter=fmt.delimiter)
        header = [h.strip().strip('"') for h in next(rows, [])]
        if column not in header:
            return None
        index = header.index(column)
        return [row[index] for row in rows if row]

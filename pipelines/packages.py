"""The load packages a sync leaves in dlt's working directory: exact row counts, then cleanup.

Why this module: two dlt defaults do not suit a scheduled sync.

* The rows a run loaded are counted in the files it loaded, not taken from dlt's trace. The trace
  only covers the last `pipeline.run`, so the rows of a package an interrupted run left behind
  (loaded first, by `finish_pending_packages`) were missing; and dlt's csv writer counts cells,
  not rows (dlt-hub/dlt#4461: 550 reported for a table that received 50).
* dlt keeps every loaded file in `load/loaded/<load id>/completed_jobs` for ever: a full sync of
  a large workspace leaves its whole normalized copy on disk, and every scheduled run adds its
  own. The files are removed once loaded and counted (what dlt's `load.delete_completed_jobs`
  does), unless the user set that option; the package's small state and schema files stay.
  With `delete_completed_jobs = true` dlt removes the files before they can be counted, and the
  counts are dlt's normalize counts of the last run (`trace_rows`).
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dlt.common.storages import FileStorage

logger = logging.getLogger(__name__)


def csv_records(path: str, columns: Iterable[str]) -> int:
    """Data records in one csv job file (quoted newlines count once; a header line is not a row)."""
    names = set(columns)
    with FileStorage.open_zipsafe_ro(path, "r", encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        first = next(reader, None)
        if first is None:
            return 0
        header = bool(first) and all(field in names for field in first)
        return sum(1 for _ in reader) + (0 if header else 1)


def _lines_starting(path: str, prefix: str) -> int:
    with FileStorage.open_zipsafe_ro(path, "r", encoding="utf-8") as f:
        return sum(1 for line in f if line.startswith(prefix))


# job files that carry statements, not rows (merge and replace SQL, dbt-like models)
_NO_ROWS = frozenset({"sql", "model"})


def file_rows(path: str, file_format: str, columns: Iterable[str]) -> int | None:
    """Rows in one loaded job file; None for a format whose rows are not counted here."""
    if file_format == "parquet":
        import pyarrow.parquet as pq

        return int(pq.read_metadata(path).num_rows)
    if file_format == "csv":
        return csv_records(path, columns)
    if file_format == "insert_values":  # one `(...)` line per row (dlt escapes newlines)
        return _lines_starting(path, "(")
    if file_format == "jsonl":
        return _lines_starting(path, "{")
    return None


def trace_rows(pipeline: Any) -> dict[str, int]:
    """dlt's normalize counts of the last run (what is left when dlt deleted the loaded files)."""
    trace = pipeline.last_trace
    info = trace.last_normalize_info if trace is not None else None
    return _without_dlt_tables({t: int(n) for t, n in ((info.row_counts if info is not None else None) or {}).items()})


def rows_loaded(pipeline: Any, load_ids: Iterable[str]) -> dict[str, int]:
    """Rows per table in the given loaded packages, without dlt's bookkeeping tables.

    Call it before `remove_loaded_job_files`, and not when dlt deletes the files itself (a user's
    `load.delete_completed_jobs = true`: use `trace_rows`). Falls back to `trace_rows` for a data
    file it cannot count (e.g. a `reference` to files staged in a bucket).
    """
    schema = pipeline.default_schema
    rows: Counter[str] = Counter()
    for load_id in load_ids:
        for job in pipeline.get_load_package_info(load_id).jobs.get("completed_jobs", []):
            parsed = job.job_file_info
            if parsed.file_format in _NO_ROWS:
                continue
            table = parsed.table_name
            n = None
            if Path(job.file_path).is_file():
                n = file_rows(job.file_path, parsed.file_format, schema.get_table_columns(table, include_incomplete=True))
            if n is None:
                return trace_rows(pipeline)
            rows[table] += n
    return _without_dlt_tables(rows)


def _without_dlt_tables(rows: Mapping[str, int]) -> dict[str, int]:
    return {t: n for t, n in sorted(rows.items()) if not t.startswith("_dlt")}


def run_load_ids(pipeline: Any) -> list[str]:
    """The packages the last `pipeline.run` loaded."""
    trace = pipeline.last_trace
    info = trace.last_load_info if trace is not None else None
    return list(info.loads_ids) if info is not None else []


def remove_loaded_job_files(working_dir: str | Path) -> int:
    """Delete the data files of every fully loaded package; returns the bytes freed.

    Only `completed_jobs` of packages in `load/loaded` go: a package dlt has not finished
    (extracted, normalized) or one with failed jobs (kept for inspection) is never touched.
    """
    freed = 0
    for package in (Path(working_dir) / "load" / "loaded").glob("*"):
        if any((package / "failed_jobs").glob("*")):
            continue
        for job in (package / "completed_jobs").glob("*"):
            if job.is_file():
                freed += job.stat().st_size
                job.unlink()
    if freed:
        logger.debug("removed %d bytes of loaded job files from %s", freed, working_dir)
    return freed


def count_then_clean(pipeline: Any, load_ids: Iterable[str], dlt_deletes_files: bool | None) -> dict[str, int]:
    """The run summary's rows per table, then the loaded files removed; never fails a finished load.

    `dlt_deletes_files` is the user's `load.delete_completed_jobs`: None (not set) counts and then
    removes the files, False counts and keeps them, True takes dlt's counts (its files are gone).
    """
    try:
        rows = trace_rows(pipeline) if dlt_deletes_files else rows_loaded(pipeline, load_ids)
    except Exception as exc:  # noqa: BLE001 - the data is loaded: report the trace's counts instead
        logger.warning("could not count the loaded rows in the load files (%s): the summary shows dlt's counts", exc)
        rows = trace_rows(pipeline)
    if dlt_deletes_files is None:
        try:
            remove_loaded_job_files(pipeline.working_dir)
        except OSError as exc:
            logger.warning("could not remove loaded files from %s: %s", pipeline.working_dir, exc)
    return rows

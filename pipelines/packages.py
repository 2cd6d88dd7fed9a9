"""The load packages a sync leaves in dlt's working directory: exact row counts, then cleanup.

Why this module: two dlt defaults do not suit a scheduled sync.

* dlt's csv writer counts cells, not rows (dlt-hub/dlt#4461): the trace reported 550 rows for a
  table that received 50. Any destination a user loads with csv (`loader_file_format`; the
  product loaded Postgres that way until 2026-12-02) gets its counts from the files themselves,
  before they are removed.
* dlt keeps every loaded file in `load/loaded/<load id>/completed_jobs` for ever: a full sync of
  a large workspace leaves its whole normalized copy on disk, and every scheduled run adds its
  own. The files are removed once loaded and counted (what dlt's `load.delete_completed_jobs`
  does), unless the user set that option; the package's small state and schema files stay.
  With `delete_completed_jobs = true` dlt removes the files before they can be counted, and the
  csv tables' counts are dlt's.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dlt.common.storages import FileStorage

logger = logging.getLogger(__name__)

_CSV = "csv"


def _loaded_load_ids(pipeline: Any) -> list[str]:
    trace = pipeline.last_trace
    info = trace.last_load_info if trace is not None else None
    return list(info.loads_ids) if info is not None else []


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


def loaded_csv_rows(pipeline: Any, load_ids: Iterable[str]) -> dict[str, int]:
    """Rows per table in the csv files of the given loaded packages (tables without csv: absent)."""
    schema = pipeline.default_schema
    rows: Counter[str] = Counter()
    for load_id in load_ids:
        for job in pipeline.get_load_package_info(load_id).jobs.get("completed_jobs", []):
            parsed = job.job_file_info
            if parsed.file_format != _CSV or not Path(job.file_path).is_file():
                continue
            table = parsed.table_name
            rows[table] += csv_records(job.file_path, schema.get_table_columns(table, include_incomplete=True))
    return dict(rows)


def rows_loaded(pipeline: Any) -> dict[str, int]:
    """Rows per table that the last `pipeline.run` loaded, without dlt's bookkeeping tables.

    dlt's normalize counts, except for tables loaded from csv files, which are counted in the
    files (see the module docstring). Call it before `remove_loaded_job_files`.
    """
    trace = pipeline.last_trace
    info = trace.last_normalize_info if trace is not None else None
    counts = {t: int(n) for t, n in ((info.row_counts if info is not None else None) or {}).items()}
    counts.update(loaded_csv_rows(pipeline, _loaded_load_ids(pipeline)))
    return {t: n for t, n in sorted(counts.items()) if not t.startswith("_dlt")}


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

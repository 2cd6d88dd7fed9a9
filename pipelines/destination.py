"""The dlt pipeline and its destination, with the product's settings (DuckDB memory cap, dlt
writer settings, garbage-collector thresholds, Arrow's allocator, loader file formats) and the
guard that keeps saved cursors from being reused against another destination."""

from __future__ import annotations

import ctypes
import gc
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import dlt

from intercom_elt.pipelines.config import Target, dlt_setting, validate_name
from intercom_elt.pipelines.errors import EXIT_USAGE, UserError

logger = logging.getLogger(__name__)

# DuckDB lets a query grow to 80% of the machine's RAM; a scheduled batch job should stay small
# and predictable, so dlt's DuckDB connections get a memory cap and spill larger merges to disk
# (<file>.tmp). The cap alone is not enough: each DuckDB thread pins its own buffers and insertion
# order keeps more in memory, and with 128MB and two threads the merge of 200,000 contacts failed
# with "Out of Memory Error: failed to pin block". Measured on that merge (900,000 rows): DuckDB's
# defaults 487 MB RSS; 256MB without insertion order 388 MB; these settings 268 MB, same 14 s.
DUCKDB_SETTINGS: dict[str, Any] = {"memory_limit": "128MB", "threads": 1, "preserve_insertion_order": False}

# dlt settings of the product (env vars and .dlt/config.toml still win):
# * the extract and normalize files are temporary and read back once: gzip only costs CPU;
# * normalize buffers 1,000 rows per table before writing instead of 5,000: contacts are wide
#   (100+ columns), and the buffers of every child table add up. Measured only together with
#   DuckDB's single thread (100,000 contacts: 399 -> 371 MB peak); alone it did not change the
#   normalize time of 6,000 contacts (377 vs 382 ms per 1,000).
DLT_SETTINGS: dict[str, Any] = {
    "data_writer.disable_compression": True,
    "normalize.data_writer.buffer_max_items": 1000,
}


def make_destination(target: Target) -> Any:
    """duckdb gets its file path (and a memory cap); any other dlt destination passes through by name."""
    if target.destination == "duckdb":
        path = Path(target.duckdb_path).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        credentials: dict[str, Any] = {"database": str(path)}
        if target.tuned and dlt_setting("destination.duckdb.credentials.global_config") is None:
            credentials["global_config"] = dict(DUCKDB_SETTINGS)
        return dlt.destinations.duckdb(credentials=credentials)
    return target.destination


# Python's cyclic garbage collector, for a sync: a scan every 50,000 allocations instead of 700.
# A sync allocates millions of short-lived dicts (every parsed page, every row) and frees them by
# reference counting; the default thresholds made CPython walk the whole heap, dlt's and the
# source's long-lived objects included, 37 times in a full sync of the bench workspace (14.4 s of
# 153 s, gen2 8.7 s). With a young threshold of 50,000: 1.5 s, the same peak RSS (444 vs 459 MB).
GC_THRESHOLDS = (50_000, 50, 100)
_PYTHON_DEFAULT_GC = (700, 10, 10)


def tune_gc() -> None:
    """Apply `GC_THRESHOLDS` unless the process already chose its own (e.g. an orchestrator)."""
    if gc.get_threshold() == _PYTHON_DEFAULT_GC:
        gc.set_threshold(*GC_THRESHOLDS)


# Arrow's default pool (mimalloc, in pyarrow's wheels) keeps the pages it freed for reuse. The
# columnar path builds and writes Arrow tables every 2,500 contacts, and what the pool held between
# them showed in the sync's peak RSS: a contacts sync at --scale 10 (200,000, no latency) peaked at
# 442, 453, 446 MB with mimalloc and 416, 425, 418 MB with the system allocator; 1,000,000 contacts
# (contacts-heavy --scale 50) at 500 against 476 MB, one run each. The same CPU: medians of five
# runs, 167 against 163 us a contact.
ARROW_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def tune_arrow_memory() -> None:
    """Arrow allocates with the system allocator, unless the process chose a pool by Arrow's own variable."""
    if ARROW_POOL_VARIABLE in os.environ:
        return
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())


# glibc's malloc raises its mmap threshold to the size of any large block freed (up to 32 MiB), and
# its trim threshold to twice that. After the first few megabyte buffers (a page of records written
# out for Arrow's JSON reader, the Arrow columns read from it, parquet row groups) every later one
# comes from the heap, and the freed heap stays in the process. Fixed thresholds keep it bounded:
# contacts-heavy --scale 20 (400,000 contacts) peaked at 473 MB with the dynamic ones and 387 MB
# with both fixed at glibc's initial 128 KiB.
# The mmap threshold is 1 MiB, not 128 KiB: each search page (about 280 KB) passed through several
# buffers of that size (the socket's reads, the body, Arrow's), and each one mmapped fresh was
# about 70 page faults. contacts-heavy --scale 10, no latency, alternating: 320,000 page faults
# against 490,000, system CPU 1.55 against 1.9 s, the sync 10.9 against 11.5 CPU-s; peak RSS the
# same (420 MB), and at --scale 50 the same too (430 MB), for 51.4 against 55.3 CPU-s.
# MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_ in the environment, read by glibc at start, win.
MALLOC_MMAP_THRESHOLD_BYTES = 1024 * 1024
MALLOC_TRIM_THRESHOLD_BYTES = 128 * 1024
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters (malloc.h)


def tune_malloc() -> None:
    """Fix glibc malloc's mmap and trim thresholds (see above); nothing elsewhere than glibc."""
    if any(name in os.environ for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): their allocators do not do this
        return
    mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD_BYTES)
    mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD_BYTES)


# CPython hands the GIL to a waiting thread only every `sys.getswitchinterval()` (5 ms by default). A
# sync's threads mostly run C that releases it (Arrow's JSON reader, sockets, DuckDB, parquet) and
# need it back for a little Python: each such return waited up to 5 ms behind a thread in Python.
# contacts-heavy --scale 10 (200,000 contacts, 100 ms, 10,000/min), runs alternating: 13.2-13.9 s
# and 69-72 us a contact at 1 ms (six runs), 13.4-17.0 s and 73-99 us at 5 ms, 15.1-15.7 s at 0.5 ms.
SWITCH_INTERVAL_SECONDS = 0.001
_PYTHON_DEFAULT_SWITCH_INTERVAL = 0.005


def tune_switch_interval() -> None:
    """Apply `SWITCH_INTERVAL_SECONDS` unless the process already chose its own."""
    if sys.getswitchinterval() == _PYTHON_DEFAULT_SWITCH_INTERVAL:
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)


def apply_dlt_settings() -> None:
    """Set `DLT_SETTINGS` where the user configured nothing (in memory, never written)."""
    for key, value in DLT_SETTINGS.items():
        if dlt_setting(key) is None:
            dlt.config[key] = value


def build_pipeline(target: Target) -> dlt.Pipeline:
    """The dlt pipeline; its name keys the incremental state, so keep it stable per workspace."""
    validate_name(target.pipeline_name, "--pipeline-name")
    validate_name(target.dataset_name, "--dataset")
    if (
        target.destination == "duckdb"
        and Path(target.duckdb_path).stem.lower() == target.dataset_name.lower()
    ):
        raise UserError(
            f"--dataset '{target.dataset_name}' has the same name as the DuckDB file {target.duckdb_path}, "
            "which DuckDB cannot tell apart: choose another --dataset or --duckdb-path",
            EXIT_USAGE,
        )
    kwargs: dict[str, Any] = {
        "pipeline_name": target.pipeline_name,
        "destination": make_destination(target),
        "dataset_name": target.dataset_name,
    }
    if target.pipelines_dir:
        kwargs["pipelines_dir"] = target.pipelines_dir
    if target.progress:
        kwargs["progress"] = target.progress
    if target.tuned:
        apply_dlt_settings()
        tune_gc()
        tune_arrow_memory()
        tune_malloc()
        tune_switch_interval()
    try:
        return dlt.pipeline(**kwargs)
    except Exception as exc:
        if "destination" in str(exc).lower() or type(exc).__name__.startswith("UnknownDestination"):
            raise UserError(
                f"unknown destination '{target.destination}': use duckdb, postgres or another dlt destination name",
                EXIT_USAGE,
            ) from exc
        raise


def saved_target(target: Target) -> dict[str, Any] | None:
    """The pipeline's saved state (local `state.json`), read before dlt opens the pipeline."""
    from dlt.common.pipeline import get_dlt_pipelines_dir

    path = Path(target.pipelines_dir or get_dlt_pipelines_dir()) / target.pipeline_name / "state.json"
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def guard_destination(target: Target, saved: dict[str, Any] | None) -> None:
    """Refuse to point a pipeline with saved cursors at another destination type or dataset.

    Why: the cursors belong to the data already loaded elsewhere; reused against a new destination
    they would load only the recent changes there (silent data loss). `--full-refresh` or a new
    `--pipeline-name` starts the new destination from scratch instead.
    """
    if not saved or not saved.get("sources"):
        return  # nothing saved yet: any destination is a first load
    old_type = str(saved.get("destination_type") or "")
    old_dataset = str(saved.get("dataset_name") or "")
    try:
        from dlt.common.destination import Destination

        new_type = str(Destination.from_reference(make_destination(target)).destination_type)
    except Exception:  # an unknown destination: build_pipeline says so
        logger.debug("cannot resolve destination %s", target.destination, exc_info=True)
        return
    if (not old_type or old_type == new_type) and (not old_dataset or old_dataset == target.dataset_name):
        return

    def short(kind: str) -> str:
        return kind.rsplit(".", 1)[-1]

    raise UserError(
        f"pipeline '{target.pipeline_name}' keeps the cursors of {short(old_type) or '?'} dataset '{old_dataset}'; "
        f"using them for {short(new_type)} dataset '{target.dataset_name}' would load only recent changes there: "
        "pass a different --pipeline-name for the new destination, or --full-refresh to reload everything into it",
        EXIT_USAGE,
    )


# Loader file formats per destination. DuckDB reads parquet natively (dlt's default, SQL INSERT
# statements, took 7.5 s instead of 0.8 s to load 42,354 rows). Postgres keeps dlt's INSERTs: its
# csv COPY marks every nullable column FORCE_NULL, so an empty string landed as NULL, which
# DuckDB and dlt's default keep as ''. Measured with no latency and no quota, 153,534 rows:
# normalize + load 9.3-9.4 s with INSERTs against 6.9-7.1 s with csv.
LOADER_FILE_FORMATS: dict[str, str] = {"duckdb": "parquet", "postgres": "insert_values"}


def pipeline_run_kwargs(target: Target) -> dict[str, Any]:
    """Extra `pipeline.run` arguments for fast loads (same tables and column types either way)."""
    fmt = LOADER_FILE_FORMATS.get(target.destination)
    return {"loader_file_format": fmt} if fmt else {}

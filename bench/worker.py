"""One sync in its own process, reporting timings, requests, rows, schema and peak RSS as JSON.

Why a separate process: peak RSS must be the sync's alone (not the benchmark driver's copy of the
workspace), and every run must start with a cold interpreter like a scheduled job does.

    python -m bench.worker --base-url URL --destination duckdb --workdir DIR --out result.json \
        [--mode product|dlt-defaults|source-only] [--streams a,b]

`product` runs the connector as `intercom-sync run` does (intercom_elt.pipelines.intercom_pipeline.run_sync); `dlt-defaults`
runs the same source and tables with dlt's out-of-the-box settings (Python dict items, default
normalizer and writer settings, row INSERTs into Postgres): the baseline of the CPU comparison.
`source-only` iterates the product's source through dlt's pipe and writes nothing (no extract
files, no normalize, no load): the work both modes share, so `dlt-defaults / source-only` is the
largest speedup any dlt setting could give on this machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("bench.worker")

# dlt config names a tuned product may set; the baseline must see none of them
_DLT_TUNING_PREFIXES = ("NORMALIZE__", "DATA_WRITER__", "EXTRACT__", "LOAD__", "DESTINATION__POSTGRES__LOADER_FILE_FORMAT")


def _peak_rss_mb() -> float:
    """Peak RSS of this process and of any worker process it waited for (Linux: KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


def _schema_types(pipeline: Any) -> dict[str, dict[str, str]]:
    """{table: {column: data_type}} of the loaded schema, dlt's own tables left out."""
    out: dict[str, dict[str, str]] = {}
    for name, table in pipeline.default_schema.tables.items():
        if name.startswith("_dlt"):
            continue
        cols = {c: str(spec.get("data_type")) for c, spec in table.get("columns", {}).items()}
        if cols:
            out[name] = cols
    return out


def _table_counts(pipeline: Any, tables: list[str]) -> dict[str, int]:
    """Rows now in each destination table (what a user would count)."""
    counts: dict[str, int] = {}
    with pipeline.sql_client() as client:
        for table in tables:
            try:
                rows = client.execute_sql(f"SELECT count(*) FROM {client.make_qualified_table_name(table)}")
                counts[table] = int(rows[0][0]) if rows else 0
            except Exception as exc:  # noqa: BLE001 - a missing table is a count of 0 to report
                log.debug("count of %s failed: %s", table, exc)
                counts[table] = -1
    return counts


def _steps(trace: Any) -> dict[str, dict[str, float]]:
    """Seconds per dlt step (extract, normalize, load) of the last run."""
    out: dict[str, dict[str, float]] = {}
    for step in trace.steps:
        if step.started_at is None or step.finished_at is None:
            continue
        out[step.step] = {"seconds": (step.finished_at - step.started_at).total_seconds()}
    return out


def _source_settings(args: argparse.Namespace) -> Any:
    """The source settings of `intercom-sync run` (no --max-workers: the product's default)."""
    from intercom_elt.pipelines import config

    workers = {"max_workers": args.max_workers} if args.max_workers else {}
    streams = args.streams.split(",") if args.streams else None
    return config.SourceSettings(access_token=args.token, base_url=args.base_url, streams=streams, **workers)


def run_source_only(args: argparse.Namespace) -> dict[str, Any]:
    """Iterate the product's source without a pipeline: the floor of any end-to-end run."""
    from intercom_elt.pipelines import destination, preflight
    from intercom_elt.pipelines import intercom_pipeline as ip

    destination.tune_gc()
    settings = _source_settings(args)
    client = preflight.make_client(settings, max_retries=None)
    started = time.perf_counter()
    items = sum(1 for _ in ip.build_source(settings, client))
    wall = time.perf_counter() - started
    client.close()
    return {
        "mode": args.mode, "destination": None, "wall_seconds": wall, "steps": {}, "rows": {}, "total_rows": items,
        "table_counts": {}, "schema": {}, "client_stats": client.stats.as_dict(), "peak_rss_mb": _peak_rss_mb(),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build the pipeline the product's way and run it once; return the measurements."""
    if args.mode == "source-only":
        return run_source_only(args)
    if args.mode == "dlt-defaults":
        for key in list(os.environ):
            if key.startswith(_DLT_TUNING_PREFIXES):
                del os.environ[key]
    import dlt

    from intercom_elt.pipelines import config, destination, preflight
    from intercom_elt.pipelines import intercom_pipeline as ip
    from intercom_elt.pipelines.packages import rows_loaded, run_load_ids

    settings = _source_settings(args)
    target = config.Target(
        destination=args.destination,
        dataset_name=args.dataset,
        pipeline_name=args.pipeline_name,
        duckdb_path=str(Path(args.workdir) / "bench.duckdb"),
        pipelines_dir=str(Path(args.workdir) / "pipelines"),
        tuned=args.mode == "product",
    )
    pipeline = destination.build_pipeline(target)
    client = preflight.make_client(settings, max_retries=None)
    # the same source and records either way; only the product picks its loader file formats
    run_kwargs = destination.pipeline_run_kwargs(target) if args.mode == "product" else {}
    started, cpu_before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    if args.mode == "product":  # a split search may commit in parts (windows.py), as `run` does
        load_ids = ip.run_until_caught_up(pipeline, settings, client, **run_kwargs)
    else:
        pipeline.run(ip.build_source(settings, client), **run_kwargs)
        load_ids = run_load_ids(pipeline)
    wall = time.perf_counter() - started
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    client.close()
    trace = pipeline.last_trace
    rows = rows_loaded(pipeline, load_ids)
    schema = _schema_types(pipeline)
    result = {
        "mode": args.mode,
        "destination": args.destination,
        "wall_seconds": wall,
        "steps": _steps(trace),
        "rows": rows,
        "total_rows": sum(rows.values()),
        "table_counts": _table_counts(pipeline, sorted(schema)) if args.count_tables else {},
        "schema": schema,
        "client_stats": client.stats.as_dict(),
        "peak_rss_mb": _peak_rss_mb(),
        # user + sys of this sync process alone, from the run's start (imports and setup left out)
        "cpu_seconds": (cpu.ru_utime + cpu.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime),
        "parts": len(load_ids),
        "dlt_version": dlt.__version__,
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--token", default="emulator-token")
    parser.add_argument("--destination", default="duckdb")
    parser.add_argument("--dataset", default="intercom_bench")
    parser.add_argument("--pipeline-name", default="intercom_bench")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--streams", default="")
    parser.add_argument("--mode", choices=("product", "dlt-defaults", "source-only"), default="product")
    parser.add_argument("--max-workers", type=int, default=0)
    parser.add_argument("--count-tables", action="store_true")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("BENCH_LOG_LEVEL", "WARNING"), stream=sys.stderr)
    os.chdir(args.workdir)  # dlt reads .dlt/ from the working directory: keep the repo's out of it
    result = run(args)
    Path(args.out).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

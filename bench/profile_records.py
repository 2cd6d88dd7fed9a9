"""CPU per record of the product path: `intercom-sync run --streams contacts` against an emulator
with no latency and no quota, the sync in its own child process.

Prints the CPU seconds (user+sys) of the sync process alone and per contact, the rows loaded per
table; with `--threads` the sync's CPU by thread and by step (bench/cpu_by_thread.py: exact, and
nearly free); with `--profile` a yappi breakdown (CPU clock, every thread) by phase (HTTP + JSON decoding, shaping in
schema.py, dlt extract, normalize, the writers, the load). CPU seconds are what a shared machine
disturbs least; wall seconds are printed beside them.

    python bench/profile_records.py --scale 2                       # DuckDB, 40,000 contacts
    python bench/profile_records.py --scale 2 --destination postgres
    python bench/profile_records.py --scale 2 --profile             # + the breakdown by phase
    python bench/profile_records.py --scale 2 --threads             # + CPU by thread and by step
    python bench/profile_records.py --scale 10 --threads --latency-ms 100 --quota 10000   # contacts-heavy's
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.run_bench import DEFAULT_PG, UNLIMITED_PER_MINUTE, drop_pg_schema, emulator  # noqa: E402

# (phase, file path fragments): a function's own time goes to the first phase whose fragment its
# file holds; everything else is "other" (Python itself, threads, logging)
PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("shaping (schema.py, rejects, incremental filter)", ("sources/intercom/schema.py", "sources/intercom/rejects.py",
                                                          "sources/intercom/streams.py", "sources/intercom/readers.py")),
    ("the columnar path (walk, Arrow tables)", ("sources/intercom/columnar.py", "sources/intercom/column_plans.py",
                                                "sources/intercom/arrow_items.py")),
    ("HTTP + JSON decoding (client, httpx, orjson)", ("sources/intercom/client.py", "sources/intercom/pagers.py",
                                                      "httpx", "httpcore", "h11", "ssl", "socket", "selectors",
                                                      "orjson", "sources/intercom/api.py")),
    ("dlt extract (incremental, items)", ("dlt/extract",)),
    ("dlt normalize (per-row, relational)", ("dlt/normalize", "dlt/common/normalizers", "dlt/common/schema")),
    ("writers (jsonl/parquet/insert files, pyarrow)", ("dlt/common/data_writers", "dlt/common/libs", "pyarrow",
                                                       "dlt/common/storages", "dlt/common/json", "gzip", "zlib")),
    ("load (destination clients, duckdb, psycopg2)", ("dlt/load", "dlt/destinations", "duckdb", "psycopg2",
                                                      "sqlalchemy")),
    ("dlt other (pipeline, state, config)", ("dlt/",)),
    ("timestamps (pendulum, datetime)", ("pendulum", "datetime", "zoneinfo")),
)


def phase_of(filename: str) -> str:
    for phase, fragments in PHASES:
        if any(fragment in filename for fragment in fragments):
            return phase
    return "other (builtins, threads, interpreter)"


def breakdown(profile_path: Path | str) -> dict[str, float]:
    """Own (tottime) seconds per phase; C builtins are charged to the phase of their caller."""
    stats = pstats.Stats(str(profile_path))
    totals: dict[str, float] = {}
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, callers) in stats.stats.items():  # type: ignore[attr-defined]
        if not filename.startswith(("/", "<")) and callers:
            # a builtin (json, dict methods, datetime.fromtimestamp): split its time over its callers
            caller_times = {key: value[2] for key, value in callers.items()}
            spread = sum(caller_times.values()) or 1.0
            for (cfile, _cl, _cn), own in caller_times.items():
                phase = phase_of(cfile)
                totals[phase] = totals.get(phase, 0.0) + tottime * own / spread
            continue
        phase = phase_of(filename)
        totals[phase] = totals.get(phase, 0.0) + tottime
    return totals


# yappi, not cProfile: cProfile sees the main thread only, and the sync reads, extracts and loads in
# several (read-ahead thread, dlt's extract pool, the load jobs)
_PROFILED = """
import sys, yappi
from intercom_elt.pipelines import cli
yappi.set_clock_type("cpu")
yappi.start(builtins=True)
try:
    code = cli.main(sys.argv[1:])
finally:
    yappi.stop()
    yappi.get_func_stats().save("{out}", type="pstat")
sys.exit(code)
"""


def run_sync(base_url: str, token: str, workdir: Path, destination: str, dataset: str, profile: Path | None,
             pg_url: str, by_thread: Path | None = None) -> tuple[float, float, str]:
    """(CPU seconds user+sys of the sync process, wall seconds, its stderr) of one product run."""
    entry = [sys.executable, "-m", "intercom_elt.pipelines.cli"]
    if profile is not None:
        entry = [sys.executable, "-c", _PROFILED.format(out=str(profile))]
    elif by_thread is not None:
        entry = [sys.executable, "-m", "bench.cpu_by_thread", str(by_thread)]
    cmd = [
        *entry, "run", "--base-url", base_url, "--streams", "contacts",
        "--destination", destination, "--dataset", dataset, "--pipeline-name", dataset,
        "--duckdb-path", str(workdir / "sync.duckdb"), "--pipelines-dir", str(workdir / "pipelines"),
        "--no-progress", "--no-views",
    ]
    env = dict(os.environ, INTERCOM_ACCESS_TOKEN=token, RUNTIME__DLTHUB_TELEMETRY="false")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    if destination == "postgres":
        env["DESTINATION__POSTGRES__CREDENTIALS"] = pg_url
    started = time.perf_counter()
    log = workdir / "sync.log"  # a file, not a pipe: a full pipe would stall the sync's logging
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    stderr = log.read_text(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"sync failed ({os.waitstatus_to_exitcode(status)}):\n{stderr[-4000:]}")
    return usage.ru_utime + usage.ru_stime, wall, stderr


def table_rows(workdir: Path, destination: str, dataset: str, pg_url: str) -> dict[str, int]:
    """Rows in each contacts table of the destination (parent and child tables)."""
    query = ("SELECT table_name FROM information_schema.tables WHERE table_schema = '{0}' "
             "AND table_name LIKE 'contacts%' ORDER BY 1")
    if destination == "duckdb":
        import duckdb

        con = duckdb.connect(str(workdir / "sync.duckdb"), read_only=True)
        try:
            names = [r[0] for r in con.execute(query.format(dataset)).fetchall()]
            return {n: int(con.execute(f'SELECT count(*) FROM "{dataset}"."{n}"').fetchone()[0]) for n in names}
        finally:
            con.close()
    import psycopg2

    conn = psycopg2.connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute(query.format(dataset))
            names = [r[0] for r in cur.fetchall()]
            out = {}
            for n in names:
                cur.execute(f'SELECT count(*) FROM "{dataset}"."{n}"')
                out[n] = int(cur.fetchone()[0])
            return out
    finally:
        conn.close()


def print_split(split: dict[str, dict[str, float]], contacts: int) -> None:
    """bench/cpu_by_thread.py's CPU seconds, per contact."""
    for title, key in (("by thread", "threads"), ("by step (the thread's own CPU inside it)", "steps")):
        print(f"  {title}:", flush=True)
        for name, seconds in sorted(split[key].items(), key=lambda kv: -kv[1]):
            print(f"  {seconds:7.2f} s {seconds / contacts * 1e6:6.1f} us/contact  {name}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=2.0)
    parser.add_argument("--profile-name", default="bench", help="emulator workload profile")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--destination", choices=("duckdb", "postgres"), default="duckdb")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="run the sync under yappi and print phases")
    parser.add_argument("--threads", action="store_true", help="print the sync's CPU by thread and by step")
    parser.add_argument("--keep", help="keep the work directory here (DuckDB file, profile)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="the emulator's latency (0: none)")
    parser.add_argument("--quota", type=int, default=UNLIMITED_PER_MINUTE,
                        help="the emulator's calls a minute (default: no quota); 10000 is contacts-heavy's")
    args = parser.parse_args(argv)
    pg_url = os.environ.get("INTERCOM_TEST_POSTGRES", DEFAULT_PG)
    dataset = f"profile_records_{os.getpid()}"
    no_quota = {"workspace_quota": 0} if args.quota == UNLIMITED_PER_MINUTE else {}  # else the emulator's default
    with emulator(args.profile_name, args.seed, args.scale, args.latency_ms, args.quota, **no_quota) as emu:
        for run in range(args.runs):
            workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="profile-records-"))
            workdir.mkdir(parents=True, exist_ok=True)
            prof = workdir / "sync.prof" if args.profile else None
            split = workdir / "cpu_by_thread.json" if args.threads and not args.profile else None
            if args.destination == "postgres":
                drop_pg_schema(pg_url, dataset)
            cpu, wall, _ = run_sync(emu.base_url, emu.token, workdir, args.destination, dataset, prof, pg_url, split)
            rows = table_rows(workdir, args.destination, dataset, pg_url)
            if args.destination == "postgres":
                drop_pg_schema(pg_url, dataset)
            contacts = rows.get("contacts", 0) or 1
            print(f"run {run + 1} ({args.destination}, scale {args.scale}{', yappi' if prof else ''}): "
                  f"{contacts:,} contacts, {sum(rows.values()):,} rows; sync process CPU {cpu:.2f} s "
                  f"= {cpu / contacts * 1e6:.0f} us per contact; wall {wall:.1f} s", flush=True)
            print("  rows: " + ", ".join(f"{k} {v:,}" for k, v in rows.items()), flush=True)
            if split is not None:
                print_split(json.loads(split.read_text()), contacts)
            if prof is not None:
                totals = breakdown(prof)
                whole = sum(totals.values()) or 1.0
                for phase, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
                    print(f"  {seconds:7.2f} s {seconds / whole:5.0%} {seconds / contacts * 1e6:6.0f} us/contact  {phase}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

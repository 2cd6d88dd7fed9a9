"""Soak: sync the 1,000,000-contact workspace with every fault on, then check ground truth.

Not a CI test (it takes long and needs ~1 GB RAM). It starts the emulator as a subprocess
(`bench` profile at --scale 50 = 1M contacts, 250k companies, 500k conversations, 1M activity
logs), turns on every fault class at once, runs the real CLI (`python -m intercom_elt.pipelines.cli run`) into
a DuckDB file, then compares every table with the emulator's ground truth (via its control API
dump) and prints/writes the numbers: duration, requests, retries, 429s, peak RSS, rows compared.

    python bench/soak.py                      # full 1M-contact soak, every stream
    python bench/soak.py --scale 0.05         # a quick rehearsal (1,000 contacts)
    python bench/soak.py --streams contacts,admins,tags,teams,segments --quota 0   # 1M contacts, no quota

Every stream at scale 50 needs about 920,000 requests (one per conversation, company and
ticket): 92 minutes at Intercom's 10,000 a minute. `--streams` and `--quota 0` (no rate limit)
make a 1M-contact soak fit in well under an hour; the comparison covers the synced streams.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from intercom_emulator.testing import free_port  # noqa: E402

log = logging.getLogger("soak")

ALL_FAULTS: dict[str, Any] = {
    "error_rate": 0.05,
    "burst_429_every": 2000,
    "burst_429_length": 3,
    "drop_rate": 0.01,
    "slow_rate": 0.002,
    "slow_seconds": 5.0,
    "malformed_rate": 0.01,
    "type_drift_rate": 0.05,
    "extra_fields_rate": 0.02,
}
# Intercom's companies scroll cannot resume after a failed page: it starts over. With 7% of pages
# failing (5xx, dropped, malformed), a scroll of 250,000 companies (4,167 pages at --scale 50; 417
# at --scale 5) almost never gets past its best page again, and the sync rightly gives up (seen at
# --scale 5: 4 restarts, then exit). So the scroll gets one planned 500 mid-way, 429 bursts, slow
# answers and the data faults, but not the random transport faults.
SCROLL_FAULTS: dict[str, Any] = {
    **{k: v for k, v in ALL_FAULTS.items() if k not in ("error_rate", "drop_rate", "malformed_rate")},
    "scroll_error_on_page": 40,
    "scroll_error_times": 1,
}


def _truth(base_url: str, out: Path, streams: list[str] | None = None) -> dict[str, int]:
    """Write the emulator's ground truth of the compared streams as <stream>.jsonl; rows per stream.

    Streamed per stream from `/_emulator/ground_truth/{stream}`: the full dump of a 1M-contact
    workspace writes every stream (500,000 conversations with their parts), most of it not synced.
    """
    out.mkdir(parents=True, exist_ok=True)
    wanted = [s for s in (*COMPARED_STREAMS, "conversation_parts") if not streams or s in streams]
    counts: dict[str, int] = {}
    with httpx.Client(base_url=base_url, timeout=3600) as http:
        for stream in wanted:
            with http.stream("GET", f"/_emulator/ground_truth/{stream}") as resp, (out / f"{stream}.jsonl").open("wb") as fh:
                resp.raise_for_status()
                for chunk in resp.iter_bytes():
                    fh.write(chunk)
            counts[stream] = sum(1 for _ in (out / f"{stream}.jsonl").open("rb"))
    return counts


COMPARED_STREAMS = ("contacts", "companies", "conversations", "activity_logs", "admins", "tags", "teams", "segments")


def _compare(db: Path, dataset: str, truth_dir: Path, streams: list[str] | None = None) -> dict[str, int]:
    """Every id of every synced stream equal, no duplicate key, updated_at equal; rows compared per table."""
    import duckdb

    compared: dict[str, int] = {}
    con = duckdb.connect(str(db), read_only=True)
    con.execute(f"SET search_path = '{dataset}'")
    for stream in COMPARED_STREAMS:
        if streams and stream not in streams:
            continue
        path = truth_dir / f"{stream}.jsonl"
        cursor = "created_at" if stream == "activity_logs" else "updated_at"
        truth: dict[str, int | None] = {}
        with path.open() as fh:
            for line in fh:
                row = json.loads(line)
                truth[str(row["id"])] = int(row[cursor]) if stream in ("contacts", "companies", "conversations", "activity_logs") else None
        dup = con.execute(f"select count(*) - count(distinct id) from {stream}").fetchone()[0]
        if truth and next(iter(truth.values())) is not None:
            got = dict(con.execute(f"select id, cast(extract(epoch from {cursor}) as bigint) from {stream}").fetchall())
        else:
            got = {r[0]: None for r in con.execute(f"select id from {stream}").fetchall()}
        missing = set(truth) - set(got)
        extra = set(got) - set(truth)
        differ = [k for k in set(truth) & set(got) if truth[k] != got[k]]
        if dup or missing or extra or differ:
            raise AssertionError(
                f"{stream}: {dup} duplicate keys, {len(missing)} missing, {len(extra)} extra, {len(differ)} differ"
            )
        compared[stream] = len(got)
    if streams and "conversation_parts" not in streams:
        return compared
    truth_parts: set[str] = set()
    with (truth_dir / "conversation_parts.jsonl").open() as fh:
        for line in fh:
            truth_parts.add(str(json.loads(line)["id"]))
    got_parts = {r[0] for r in con.execute("select id from conversation_parts").fetchall()}
    if truth_parts - got_parts:
        raise AssertionError(f"conversation_parts: {len(truth_parts - got_parts)} missing")
    compared["conversation_parts"] = len(got_parts)
    return compared


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=50.0, help="bench profile scale (50 = 1M contacts)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "soak.json")
    parser.add_argument("--streams", default="", help="comma list (default: every stream)")
    parser.add_argument("--quota", type=int, default=10_000, help="calls per minute per app; 0 = no limit")
    parser.add_argument("--debug", action="store_true", help="run the CLI with --debug (tracebacks, DEBUG logs)")
    args = parser.parse_args(argv)
    streams = [s.strip() for s in args.streams.split(",") if s.strip()] or None
    quota = ["--rate-limit-per-minute", str(args.quota)] if args.quota else [
        "--rate-limit-per-minute", "60000000", "--workspace-rate-limit-per-minute", "0"]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="soak_"))
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    emu = subprocess.Popen(
        [sys.executable, "-m", "intercom_emulator.cli", "serve", "--port", str(port), "--profile", "bench",
         "--seed", str(args.seed), "--scale", str(args.scale), "--fault-seed", "7", "--search-lag-seconds", "60", *quota],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                if httpx.get(f"{base}/_emulator/clock", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if emu.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("emulator did not start")
            time.sleep(0.5)
        httpx.post(f"{base}/_emulator/config", json={
            "faults": ALL_FAULTS, "endpoint_faults": {"GET /companies/scroll": SCROLL_FAULTS},
        }, timeout=30).raise_for_status()
        db = work / "soak.duckdb"
        env = dict(os.environ, INTERCOM_ACCESS_TOKEN="emulator-token", RUNTIME__DLTHUB_TELEMETRY="false", PYTHONPATH=str(REPO))
        started = time.monotonic()
        runs = []
        for attempt in range(2):  # the second run picks up what search lag hid from the first
            if attempt:
                httpx.post(f"{base}/_emulator/clock/advance", json={"seconds": 600}, timeout=30).raise_for_status()
            proc = subprocess.run(
                [sys.executable, "-m", "intercom_elt.pipelines.cli", *(["--debug"] if args.debug else []), "run",
                 "--base-url", base, "--duckdb-path", str(db), "--pipelines-dir", str(work / "pipelines"),
                 "--no-progress", *(["--streams", ",".join(streams)] if streams else [])],
                cwd=work, env=env, capture_output=True, text=True,
            )
            runs.append(proc.stdout)
            (work / f"run{attempt + 1}.stderr.log").write_text(proc.stderr)  # the whole story of a failure
            log.info("run %d exit %d\n%s%s", attempt + 1, proc.returncode, proc.stdout, proc.stderr[-2000:])
            if proc.returncode != 0:
                raise SystemExit(proc.returncode)
        duration = time.monotonic() - started
        peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        server_log = httpx.get(f"{base}/_emulator/requests", timeout=30).json()
        truth_dir = work / "truth"
        _truth(base, truth_dir, streams)
        compared = _compare(db, "intercom_data", truth_dir, streams)
        numbers = {
            "scale": args.scale,
            "streams": streams or "all",
            "quota_per_minute": args.quota or None,
            "duration_seconds": round(duration, 1),
            "server_requests": server_log,
            "summaries": runs,
            "peak_rss_mb_children": round(peak_rss_mb, 1),
            "rows_compared": compared,
            "rows_compared_total": sum(compared.values()),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(numbers, indent=2))
        log.info("soak OK: %s", json.dumps({k: v for k, v in numbers.items() if k != "summaries"}, indent=2))
        return 0
    finally:
        emu.terminate()
        try:
            emu.wait(30)
        except subprocess.TimeoutExpired:
            emu.kill()


if __name__ == "__main__":
    sys.exit(main())

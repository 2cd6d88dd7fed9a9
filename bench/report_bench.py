"""The report's size and build time for N synthetic runs (default 1,000) in a DuckDB dataset.

    .venv/bin/python bench/report_bench.py [--runs 1000] [--out /tmp/report_1000.html]

The runs are written through `_intercom_runs`' own INSERT (one per run, as syncs do), then
`intercom-sync report` is timed end to end (read, charts, file). Hourly runs, every 20th failed,
11 streams with child tables, five cursors, a 429 now and then.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from intercom_elt.pipelines.cli import main  # noqa: E402
from intercom_elt.pipelines.config import Target  # noqa: E402
from intercom_elt.pipelines.destination import build_pipeline  # noqa: E402
from intercom_elt.pipelines.run_history_table import insert_row  # noqa: E402

TABLES = (
    "contacts", "contacts__tags", "companies", "companies__tags", "conversations", "conversations__contacts",
    "conversation_parts", "activity_logs", "admins", "tags", "teams", "segments", "data_attributes", "tickets",
)
CURSORS = ("contacts", "companies", "conversations", "activity_logs", "tickets")


def synthetic_run(i: int, start: datetime, rng: random.Random) -> dict[str, object]:
    started = start + timedelta(hours=i)
    failed = i % 20 == 7
    duration = rng.uniform(20, 90)
    rows = {} if failed else {t: rng.randint(0, 400) for t in TABLES}
    requests = rng.randint(200, 2_000)
    limited = rng.randint(1, 4) if i % 13 == 0 else 0
    cursors = {s: started - timedelta(minutes=rng.uniform(1, 240)) for s in CURSORS}
    return {
        "run_id": f"{started:%Y%m%dT%H%M%SZ}-{i:08x}",
        "pipeline_name": "intercom",
        "workspace_id": "abc123",
        "workspace_name": "Synthetic workspace",
        "command": "run",
        "started_at": started,
        "ended_at": started + timedelta(seconds=duration),
        "duration_seconds": round(duration, 3),
        "status": "failed" if failed else "succeeded",
        "exit_code": 1 if failed else 0,
        "failure": "the extract step failed in stream conversations: IntercomServerError: HTTP 503" if failed else None,
        "rows_total": sum(rows.values()),
        "rows_by_table": rows,
        "requests_total": requests,
        "requests_by_endpoint": {"POST /contacts/search": requests // 2, "GET /conversations/{id}": requests - requests // 2},
        "retries": limited + rng.randint(0, 2),
        "rate_limited": limited,
        "rate_limit_wait_seconds": round(limited * rng.uniform(2, 9), 3),
        "rate_limit": 1666,
        "quota_share": round(requests / (1666 * max(1, int(duration // 10) + 1)), 4),
        "cursors": {s: c.isoformat() for s, c in cursors.items()},
        "cursor_lag_seconds": {s: round((started - c).total_seconds(), 3) for s, c in cursors.items()},
        "rejected_records": 0,
        "deletes_marked": 0,
        "deletes_by_model": {},
    }


def run(n: int, out: Path) -> None:
    rng = random.Random(20)
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        db = Path(tmp) / "intercom.duckdb"
        target = Target(destination="duckdb", dataset_name="intercom_data", pipeline_name="intercom",
                        duckdb_path=str(db), pipelines_dir=str(Path(tmp) / "dlt"))
        pipeline = build_pipeline(target)
        start = datetime.now(timezone.utc) - timedelta(hours=n)
        t0 = time.monotonic()
        with pipeline.sql_client() as client:
            for i in range(n):
                insert_row(client, synthetic_run(i, start, rng))
        insert_s = time.monotonic() - t0
        t0 = time.monotonic()
        code = main(["report", "--duckdb-path", str(db), "--pipelines-dir", str(Path(tmp) / "dlt"),
                     "--days", "0", "--out", str(out)])
        report_s = time.monotonic() - t0
    assert code == 0
    size = out.stat().st_size
    print(f"{n:,} runs: {n} INSERTs {insert_s:.1f}s ({insert_s / n * 1000:.1f} ms each); "
          f"report {report_s:.2f}s end to end, {size:,} bytes ({size / 1e6:.2f} MB) -> {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "intercom_report_bench.html")
    args = parser.parse_args()
    run(args.runs, args.out)

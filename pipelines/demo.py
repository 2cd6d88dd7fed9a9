"""`intercom-sync demo`: no token, no network. Start the emulator in-process, run a full sync into
a local DuckDB file, show what landed and answer one analyst question from it.
"""

from __future__ import annotations

import logging
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

from intercom_elt.pipelines import config, destination, errors, run_history
from intercom_elt.pipelines import intercom_pipeline as ip
from intercom_elt.pipelines.report import write_report
from intercom_elt.pipelines.summary import format_summary

logger = logging.getLogger(__name__)

DEMO_PIPELINE = "intercom_demo"
DEMO_DATASET = config.DEFAULT_DATASET  # same as `run`, so queries tried on the demo work on real data

# The example query a support-ops analyst asks first; needs conversations.statistics + teams.
FIRST_RESPONSE_SQL = """
select coalesce(t.name, '(no team)') as team,
       count(*) as conversations,
       round(median(c.statistics__time_to_admin_reply) / 60.0, 1) as median_first_response_min
from {ds}.conversations c
left join {ds}.teams t on cast(c.team_assignee_id as varchar) = cast(t.id as varchar)
where c.statistics__time_to_admin_reply is not null
group by 1
order by conversations desc, team
"""
BY_STATE_SQL = "select state, count(*) as conversations from {ds}.conversations group by 1 order by 2 desc, 1"


def table_counts(con: duckdb.DuckDBPyConnection, dataset: str) -> dict[str, int]:
    """Row count of every data table in the dataset (dlt's and our bookkeeping tables, `_*`, left out)."""
    tables = [
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_schema = ? "
            "and table_name not like '\\_%' escape '\\' order by table_name",
            [dataset],
        ).fetchall()
    ]
    return {t: con.execute(f'select count(*) from "{dataset}"."{t}"').fetchone()[0] for t in tables}


def _columns(con: duckdb.DuckDBPyConnection, dataset: str, table: str) -> set[str]:
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
        [dataset, table],
    ).fetchall()
    return {r[0] for r in rows}


def example_query(con: duckdb.DuckDBPyConnection, dataset: str) -> tuple[str, str, list[str], list[tuple]]:
    """(title, sql, column names, rows) of the demo's analyst query, picking one the data supports."""
    conv_cols = _columns(con, dataset, "conversations")
    if {"statistics__time_to_admin_reply", "team_assignee_id"} <= conv_cols and _columns(
        con, dataset, "teams"
    ):
        title, sql = "Median first-response time per team (minutes)", FIRST_RESPONSE_SQL
    else:
        title, sql = "Conversations by state", BY_STATE_SQL
    sql = sql.format(ds=dataset).strip()
    cur = con.execute(sql)
    return title, sql, [d[0] for d in cur.description], cur.fetchall()


def format_rows(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    """A plain fixed-width table."""
    cells = [columns] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    numeric = [
        all(r[i].replace(",", "").replace(".", "").isdigit() for r in cells[1:] if r[i])
        for i in range(len(columns))
    ]

    def line(row: list[str]) -> str:
        return (
            "  "
            + "  ".join(
                c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric, strict=True)
            ).rstrip()
        )

    lines = [line(cells[0]), "  " + "  ".join("-" * w for w in widths)]
    lines += [line(r) for r in cells[1:]]
    return "\n".join(lines)


def run_demo(
    duckdb_path: str = "intercom_demo.duckdb",
    pipelines_dir: str | None = None,
    seed: int = 1,
    profile: str = "demo",
) -> int:
    """Run the whole demo and print its report; returns the exit code."""
    from intercom_emulator.testing import EmulatorServer

    started = time.monotonic()
    path = Path(duckdb_path)
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)  # a demo always starts from an empty file
    with (
        tempfile.TemporaryDirectory(prefix="intercom-demo-") as tmp,
        EmulatorServer(profile=profile, seed=seed) as emu,
    ):
        print(f"Started the Intercom emulator ({profile} profile, seed {seed}) at {emu.base_url}")
        settings = config.SourceSettings(access_token=emu.token, base_url=emu.base_url)
        target = config.Target(
            destination="duckdb",
            dataset_name=DEMO_DATASET,
            pipeline_name=DEMO_PIPELINE,
            duckdb_path=str(path),
            pipelines_dir=pipelines_dir or tmp,
        )
        with run_history.recording(target, "demo", [emu.token]) as rec:
            rec.app = dict(emu.workspace.app)  # the demo skips the /me check
            rec.summary = summary = ip.run_sync(settings, target, preflight=False)
        report = write_report(destination.build_pipeline(target), path.with_name(path.stem + "_report.html"))
    print(format_summary(summary))
    con = duckdb.connect(str(path), read_only=True)
    try:
        counts = table_counts(con, DEMO_DATASET)
        print(f"\nTables in {path} (schema '{DEMO_DATASET}'):")
        print(format_rows(["table", "rows"], [(t, f"{n:,}") for t, n in counts.items()]))
        title, sql, columns, rows = example_query(con, DEMO_DATASET)
    finally:
        con.close()
    print(f"\n{title}:\n  {sql.replace(chr(10), chr(10) + '  ')}\n")
    print(format_rows(columns, rows))
    print(
        f"\nDemo finished in {time.monotonic() - started:.1f}s. Explore it with:\n"
        f"  {shlex.quote(sys.executable)} -c \"import duckdb; print(duckdb.connect('{path}').sql('select * from {DEMO_DATASET}.conversations limit 5'))\""
    )
    print(f"\nThe run is recorded in {DEMO_DATASET}._intercom_runs. {report.describe()}; open it in a browser:")
    print(f"  {report.path}")
    return errors.EXIT_OK

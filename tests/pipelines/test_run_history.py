"""The run history (`_intercom_runs`) and `intercom-sync report`, as a data team meets them.

Six CLI runs against the emulator (a first load, a run that fails after opening the destination,
the run that catches up, one with nothing new, one answered 429 that waits, one with a revoked
token) must leave six rows whose numbers equal what the emulator saw, on DuckDB and Postgres.
The rows are read with the database drivers, not with our reader. Then the report is opened in
headless chromium with networking off and its charts are counted from the page.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from intercom_elt.pipelines import failures
from intercom_elt.pipelines.cli import main
from intercom_elt.pipelines.config import Target
from intercom_elt.pipelines.errors import EXIT_INTERRUPTED
from intercom_elt.pipelines.run_history import RunRecorder
from intercom_elt.pipelines.run_history_table import COLUMNS, readme_table
from intercom_emulator.testing import EmulatorServer
from tests.pipelines.browser import offline_browser, open_page
from tests.resilience.conftest import Warehouse

TOKEN = "hist-secret-token-5f1c9a"  # distinctive, so a leak into the table is found
DETAIL = "GET /conversations/{id}"
COUNTED = ("contacts", "companies", "conversations", "conversation_parts", "admins", "tags", "tickets")
README = Path(__file__).resolve().parents[2] / "README.md"


@dataclass
class Seen:
    """What the emulator saw during one run: the independent witness of the row's counts."""

    exit_code: int
    endpoints: dict[str, int]
    answers_429: int
    truth: dict[str, int]  # rows per stream in the emulator after the run


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(profile="tiny", seed=7, tokens=[TOKEN]) as server:
        yield server


def _run(emu: EmulatorServer, argv: list[str]) -> Seen:
    emu.reset_log()
    code = main(["run", "--base-url", emu.base_url, *argv])
    snap = emu.log.snapshot()
    truth = {t: len(emu.workspace.ground_truth(t)) for t in COUNTED}
    return Seen(code, dict(snap["endpoints"]), int(snap["statuses"].get("429", 0)), truth)


def _six_runs(emu: EmulatorServer, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> list[Seen]:
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", TOKEN)
    ws = emu.workspace
    seen = [_run(emu, argv)]  # 1: first load
    ws.update_contact(ws.ids("contacts")[2], name="Changed Between Runs")
    ws.add_conversation_part(ws.ids("conversations")[4], author_type="admin", body="late reply")
    emu.configure(endpoint_faults={DETAIL: {"error_rate": 1.0, "error_statuses": [400]}})
    seen.append(_run(emu, argv))  # 2: the changed conversation's detail answers 400: the run fails
    emu.configure(endpoint_faults={DETAIL: None})
    seen.append(_run(emu, argv))  # 3: catches up
    seen.append(_run(emu, argv))  # 4: nothing new
    emu.configure(endpoint_faults={"GET /teams": {"burst_429_every": 2, "burst_429_length": 1}})
    seen.append(_run(emu, argv))  # 5: the sync's GET /teams answers 429 once (the preflight's does not)
    emu.configure(endpoint_faults={"GET /teams": None})
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", "revoked-token")
    seen.append(_run(emu, argv))  # 6: a revoked token: fails in the preflight check
    return seen


def _rows(wh: Warehouse) -> list[dict[str, Any]]:
    names = [c.name for c in COLUMNS]
    rows = wh.query(f"select {', '.join(names)} from _intercom_runs order by started_at")
    out = []
    for raw in rows:
        row = dict(zip(names, raw, strict=True))
        for col in COLUMNS:
            if col.kind == "json" and isinstance(row[col.name], str):
                row[col.name] = json.loads(row[col.name])
        out.append(row)
    return out


def _check_rows(rows: list[dict[str, Any]], seen: list[Seen], emu: EmulatorServer) -> None:
    ws = emu.workspace
    assert [r["status"] for r in rows] == ["succeeded", "failed", "succeeded", "succeeded", "succeeded", "failed"]
    assert [r["exit_code"] for r in rows] == [s.exit_code for s in seen] == [0, 1, 0, 0, 0, 3]
    assert len({r["run_id"] for r in rows}) == 6
    assert all(r["command"] == "run" for r in rows)
    first, failed, catch_up, nothing_new, limited, revoked = rows
    # rows per table: the first load is the whole workspace, the catch-up the two changed records
    for table in COUNTED:
        assert first["rows_by_table"][table] == seen[0].truth[table], table
    assert first["rows_total"] == sum(first["rows_by_table"].values())
    assert failed["rows_by_table"] == {} and failed["rows_total"] == 0
    assert catch_up["rows_by_table"]["contacts"] == 1
    assert catch_up["rows_by_table"]["conversations"] == 1
    for run in (nothing_new, limited):
        loaded = {t.split("__")[0] for t in run["rows_by_table"]}
        assert not loaded & {"contacts", "companies", "conversations", "conversation_parts", "tickets"}, run
    # requests: exactly what the emulator answered, endpoint by endpoint, failed runs included
    for row, s in zip(rows, seen, strict=True):
        assert row["requests_by_endpoint"] == s.endpoints, row["run_id"]
        assert row["requests_total"] == sum(s.endpoints.values())
        assert row["rate_limited"] == s.answers_429
    assert failed["failure"].startswith("the extract step failed in stream conversations")
    assert f"{DETAIL}: HTTP 400" in failed["failure"]
    assert revoked["failure"].startswith("Intercom rejected the access token (401 unauthorized)")
    assert revoked["requests_by_endpoint"] == {"GET /me": 1}
    # the 429 and its wait
    assert [r["rate_limited"] for r in rows] == [0, 0, 0, 0, 1, 0]
    assert limited["retries"] == 1
    # summed over workers: every worker waits for the shared window to reset (10 s at most), so
    # how many waited depends on what was in flight; each request waits at most one window
    assert 0.0 < limited["rate_limit_wait_seconds"] <= 11.0 * limited["requests_total"]
    assert all(r["rate_limit_wait_seconds"] == 0.0 for r in rows if r is not limited)
    # quota: the emulator's X-RateLimit-Limit is 10,000/min = 1,666 per 10-second window
    for row in rows[:5]:
        assert row["rate_limit"] == 1666
        windows = max(1, -(-row["duration_seconds"] // 10))
        assert row["quota_share"] == pytest.approx(row["requests_total"] / (1666 * windows), abs=1e-4)
    assert revoked["quota_share"] is None and revoked["rate_limit"] is None
    # cursors: the newest updated_at / created_at in the emulator, and their lag behind the start
    want = {
        "contacts": max(c["updated_at"] for c in ws.ground_truth("contacts")),
        "companies": max(c["updated_at"] for c in ws.ground_truth("companies")),
        "conversations": max(c["updated_at"] for c in ws.ground_truth("conversations")),
        "tickets": max(c["updated_at"] for c in ws.ground_truth("tickets")),
        "activity_logs": max(c["created_at"] for c in ws.ground_truth("activity_logs")),
    }
    last = catch_up["cursors"]
    assert {s: _epoch(v) for s, v in last.items()} == want
    assert failed["cursors"] == first["cursors"]  # a failed run keeps the cursors it found
    for stream, lag in catch_up["cursor_lag_seconds"].items():
        assert lag == pytest.approx(catch_up["started_at"].timestamp() - _epoch(last[stream]), abs=0.01)
    assert revoked["cursors"] == {} and revoked["workspace_name"] is None
    assert all((r["workspace_id"], r["workspace_name"]) == (ws.app["id_code"], ws.app["name"]) for r in rows[:5])
    assert all(r["rejected_records"] == 0 and r["deletes_marked"] == 0 for r in rows)
    # times
    for row in rows:
        assert row["ended_at"] >= row["started_at"]
        assert row["duration_seconds"] == pytest.approx((row["ended_at"] - row["started_at"]).total_seconds(), abs=0.01)
    assert TOKEN not in repr(rows) and "revoked-token" not in repr(rows)


def _epoch(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso).timestamp())


def _column_types(wh: Warehouse) -> dict[str, str]:
    rows = wh.query(
        "select column_name, data_type from information_schema.columns "
        f"where table_schema = '{wh.dataset}' and table_name = '_intercom_runs'"
    )
    return {str(n): str(t).lower() for n, t in rows}


def _check_report(report: Path, rows: list[dict[str, Any]]) -> None:
    """The page as chromium drew it, offline: no error, no request, each chart with its runs."""
    size = report.stat().st_size
    assert 1_000_000 < size < 20_000_000, size
    streams = {t.split("__")[0] for r in rows for t in r["rows_by_table"] if not t.startswith("_")}
    lagged = sorted({s for r in rows for s in r["cursor_lag_seconds"]})
    with offline_browser() as driver:
        page = open_page(driver, report)
        assert page.problems == []
        charts = page.charts
        assert set(charts) == {"chart-status", "chart-rows", "chart-duration", "chart-freshness", "chart-limits"}
        assert all(c["svg"] >= 1 for c in charts.values())
        assert charts["chart-status"]["points"] == [6]  # one bar per run
        assert sorted(charts["chart-rows"]["legend"]) == sorted(streams)
        assert charts["chart-rows"]["points"] == [6] * len(streams)
        assert charts["chart-duration"]["legend"] == ["duration (s)", "quota used (%)"]
        assert charts["chart-duration"]["points"] == [6, 5]  # the revoked run has no quota figure
        assert sorted(charts["chart-freshness"]["legend"]) == lagged
        assert charts["chart-freshness"]["points"] == [5] * len(lagged)  # nor cursors
        assert charts["chart-limits"]["legend"] == ["retries", "429 answers", "rate-limit wait (s)"]
        assert charts["chart-limits"]["points"] == [6, 6, 6]
        assert "Latest failures" in page.text
        assert "Intercom rejected the access token" in page.text
        assert "the extract step failed in stream conversations" in page.text
        # the same checks catch a page that reaches for the network or logs an error
        broken = report.with_name("broken.html")
        broken.write_text(
            report.read_text(encoding="utf-8").replace(
                "<head>", '<head><script src="https://cdn.example.com/x.js"></script>', 1
            ),
            encoding="utf-8",
        )
        problems = open_page(driver, broken).problems
        assert any("network request: https://cdn.example.com/x.js" in p for p in problems), problems
        assert any(p.startswith("console SEVERE") for p in problems), problems


def test_history_and_report_on_duckdb(emu, tmp_path, monkeypatch, capsys):
    db = tmp_path / "intercom.duckdb"
    argv = ["--duckdb-path", str(db), "--pipelines-dir", str(tmp_path / "dlt"), "--no-progress"]
    seen = _six_runs(emu, argv, monkeypatch)
    wh = Warehouse("duckdb", "intercom_data", duckdb_path=db)
    rows = _rows(wh)
    _check_rows(rows, seen, emu)
    types = _column_types(wh)
    assert types["started_at"] == "timestamp with time zone" and types["rows_by_table"] == "json"
    assert types["exit_code"] == "bigint" and types["quota_share"] == "double"
    capsys.readouterr()
    out = tmp_path / "report.html"
    assert main(["report", "--duckdb-path", str(db), "--pipelines-dir", str(tmp_path / "dlt"), "--out", str(out)]) == 0
    assert f"Report of 6 run(s) written to {out}" in capsys.readouterr().out
    _check_report(out, rows)


@pytest.mark.postgres
def test_history_and_report_on_postgres(emu, tmp_path, monkeypatch, capsys, postgres_credentials, postgres_dataset):
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_credentials)
    target = ["--destination", "postgres", "--dataset", postgres_dataset, "--pipelines-dir", str(tmp_path / "dlt")]
    seen = _six_runs(emu, [*target, "--no-progress"], monkeypatch)
    wh = Warehouse("postgres", postgres_dataset, dsn=postgres_credentials)
    rows = _rows(wh)
    _check_rows(rows, seen, emu)
    types = _column_types(wh)
    assert types["started_at"] == "timestamp with time zone" and types["rows_by_table"] == "jsonb"
    assert types["exit_code"] == "bigint" and types["quota_share"] == "double precision"
    out = tmp_path / "report.html"
    assert main(["report", *target, "--out", str(out)]) == 0
    _check_report(out, rows)


def _cli_stopped_mid_extract(tmp_path: Path, sig: signal.Signals) -> tuple[int, Warehouse]:
    """One complete run, then a run stopped by `sig` while it waits for an answer; its exit code."""
    db = tmp_path / "intercom.duckdb"
    argv = ["--duckdb-path", str(db), "--pipelines-dir", str(tmp_path / "dlt"), "--no-progress"]
    wh = Warehouse("duckdb", "intercom_data", duckdb_path=db)
    env = {**os.environ, "INTERCOM_ACCESS_TOKEN": TOKEN, "RUNTIME__DLTHUB_TELEMETRY": "false"}
    with EmulatorServer(profile="tiny", seed=7, tokens=[TOKEN]) as server:

        def cli() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [sys.executable, "-m", "intercom_elt.pipelines.cli", "run", "--base-url", server.base_url, *argv],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )

        assert cli().wait(120) == 0
        assert [r[0] for r in wh.query("select status from _intercom_runs")] == ["succeeded"]
        server.configure(endpoint_faults={"GET /admins/activity_logs": {"latency_ms": 8_000}})
        server.reset_log()
        proc = cli()
        deadline = time.monotonic() + 60
        while server.log.count("GET /admins/activity_logs") == 0 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        time.sleep(0.3)  # the request is in flight: the run is inside the extract step
        proc.send_signal(sig)
        code = proc.wait(120)  # the stopped run still waits for the answer in flight (8 s)
        server.configure(endpoint_faults={"GET /admins/activity_logs": None})
        if sig == signal.SIGKILL:
            assert [r[0] for r in wh.query("select status from _intercom_runs")] == ["succeeded"]
            next_run = cli()  # and the next run does not write one for it either
            assert next_run.wait(120) == 0, next_run.stderr.read() if next_run.stderr else ""
    return code, wh


def test_ctrl_c_in_the_extract_is_recorded_interrupted(tmp_path):
    code, wh = _cli_stopped_mid_extract(tmp_path, signal.SIGINT)
    assert code == EXIT_INTERRUPTED
    rows = wh.query("select status, exit_code, failure from _intercom_runs order by started_at")
    assert rows == [
        ("succeeded", 0, None),
        ("interrupted", 130, "interrupted; the next run resumes from the last saved cursors"),
    ]


def _wrapped_by_a_dlt_step(exc: BaseException, tmp_path: Path) -> BaseException:
    """What a real dlt pipeline raises when `exc` is raised inside its extract step."""

    @dlt.resource
    def stopped() -> Iterator[dict[str, int]]:
        yield {"id": 1}
        raise exc

    pipeline = dlt.pipeline(
        "wrapped",
        pipelines_dir=str(tmp_path),
        destination=dlt.destinations.duckdb(str(tmp_path / "w.duckdb")),
    )
    with pytest.raises(BaseException) as raised:
        pipeline.run(stopped())
    return raised.value


def test_ctrl_c_is_one_outcome_wherever_it_lands(tmp_path):
    """Ctrl-C outside a dlt step arrives bare, inside one wrapped in PipelineStepFailed (which of
    the two a stopped run meets depends on the moment): both are exit 130 and the same row."""
    wrapped = _wrapped_by_a_dlt_step(KeyboardInterrupt(), tmp_path)
    assert isinstance(wrapped, PipelineStepFailed)
    for exc in (KeyboardInterrupt(), wrapped):
        rec = RunRecorder(target=Target(), command="run")
        rec.fail(exc)
        assert (rec.status, rec.exit_code, rec.failure) == ("interrupted", 130, failures.INTERRUPTED)
    other = RunRecorder(target=Target(), command="run")
    other.fail(_wrapped_by_a_dlt_step(RuntimeError("boom"), tmp_path))
    assert (other.status, other.exit_code) == ("failed", 1)
    assert other.failure == "the extract step failed in stream stopped: RuntimeError: boom"


def test_a_run_killed_before_the_destination_leaves_no_row(tmp_path):
    """SIGKILL in the middle of the extract: no row for it, then or after the next run."""
    code, wh = _cli_stopped_mid_extract(tmp_path, signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert [r[0] for r in wh.query("select status from _intercom_runs order by started_at")] == [
        "succeeded",
        "succeeded",
    ]


def test_readme_documents_every_column():
    text = README.read_text(encoding="utf-8")
    section = text.split("### The run history table", 1)[1].split("\n## ", 1)[0]
    assert readme_table() in section, "README's table of _intercom_runs columns: paste run_history_table.readme_table()"


def test_reconcile_backfill_and_full_refresh_rows(emu, tmp_path, monkeypatch):
    """`--reconcile-deletes` records the deletes it marked; a backfill says what it reloaded; a
    full refresh drops the data but keeps the history."""
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", TOKEN)
    db = tmp_path / "intercom.duckdb"
    argv = ["--base-url", emu.base_url, "--duckdb-path", str(db), "--pipelines-dir", str(tmp_path / "dlt"),
            "--no-progress", "--no-views"]
    assert main(["run", *argv]) == 0
    ws = emu.workspace
    contacts = ws.ids("contacts")
    ws.delete_contact(contacts[5])
    ws.archive_contact(contacts[6])
    ws.clock.advance(5)
    assert main(["run", "--reconcile-deletes", "--streams", "contacts,companies", *argv]) == 0
    assert main(["backfill", "--start", "2020-01-01", "--end", "2020-02-01", "--streams", "contacts", *argv]) == 0
    wh = Warehouse("duckdb", "intercom_data", duckdb_path=db)
    marked = wh.query("select count(*) from contacts where _deleted_at is not null")[0][0]
    assert main(["run", "--full-refresh", "--streams", "tags", *argv]) == 0  # drops the source's tables only
    rows = _rows(wh)
    assert [(r["command"], r["status"]) for r in rows] == [
        ("run", "succeeded"),
        ("run --reconcile-deletes --streams contacts,companies", "succeeded"),
        ("backfill --start 2020-01-01 --end 2020-02-01 --streams contacts", "succeeded"),
        ("run --full-refresh --streams tags", "succeeded"),
    ]
    assert "contacts" not in wh.tables()  # the refresh did drop the data
    assert marked == 2
    assert [r["deletes_marked"] for r in rows] == [0, 2, 0, 0]
    assert rows[1]["deletes_by_model"] == {"contacts": {"deleted": 2}, "companies": {}}
    assert rows[2]["rows_total"] == 0  # nothing of the workspace is that old


def test_a_strict_run_with_rejects_is_recorded_failed(emu, tmp_path, monkeypatch):
    """A record kept aside: exit 0 with a warning (succeeded), or exit 6 with --strict (failed)."""
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", TOKEN)
    db = tmp_path / "intercom.duckdb"
    argv = ["--base-url", emu.base_url, "--duckdb-path", str(db), "--pipelines-dir", str(tmp_path / "dlt"),
            "--no-progress", "--no-views", "--streams", "tags"]
    emu.workspace._tags.append({"type": "tag", "name": "no id"})  # a tag Intercom sent without its key
    assert main(["run", *argv]) == 0
    assert main(["run", "--strict", *argv]) == 6
    wh = Warehouse("duckdb", "intercom_data", duckdb_path=db)
    kept = wh.query("select count(*) from _intercom_rejects")[0][0]
    rows = _rows(wh)
    assert kept == 1
    assert [(r["command"], r["status"], r["exit_code"], r["rejected_records"]) for r in rows] == [
        ("run --streams tags", "succeeded", 0, 1),
        ("run --strict --streams tags", "failed", 6, 1),
    ]
    assert rows[0]["failure"] is None
    assert rows[1]["failure"].startswith("1 record(s) could not be stored and were kept aside in _intercom_rejects")
    assert rows[1]["failure"].endswith("Failing because --strict is set.")


def test_report_without_history(tmp_path, capsys):
    """No DuckDB file: a usage error that creates none. A dataset without runs: a page that says so."""
    db = tmp_path / "intercom.duckdb"
    out = tmp_path / "report.html"
    argv = ["report", "--duckdb-path", str(db), "--pipelines-dir", str(tmp_path / "dlt"), "--out", str(out)]
    assert main(argv) == 2
    assert f"no DuckDB file {db}" in capsys.readouterr().err
    assert not db.exists() and not out.exists()
    import duckdb

    duckdb.connect(str(db)).close()
    assert main(argv) == 0
    assert "Report of 0 run(s)" in capsys.readouterr().out
    assert "No run recorded in this period." in out.read_text(encoding="utf-8")

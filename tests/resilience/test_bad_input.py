"""Bad input, one test per row: a clear one-line message naming the fix, a non-zero exit, and
nothing already loaded lost, no saved state changed.

Each test starts from a copy of one good sync (warehouse file + pipeline dir), runs the real CLI
with one bad input and then compares warehouse rows and the pipeline's state file byte for byte.
"""

from __future__ import annotations

import http.server
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from intercom_elt.pipelines.cli import main
from intercom_elt.sources.intercom.specs import STREAMS
from intercom_emulator.testing import EmulatorServer, free_port
from tests.resilience.conftest import (
    DATASET,
    TOKEN,
    Warehouse,
    assert_matches_ground_truth,
    local_state,
)

PIPELINE = "badinput"
RUNS = "_intercom_runs"  # the run history: a failed run is recorded there, and nowhere else
LIMITED = "limited-token"


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(profile="tiny", seed=9, tokens=[TOKEN, f"{LIMITED}:read_admins,read_tags"]) as server:
        yield server


@pytest.fixture(scope="module")
def golden(emu: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One good sync; every test works on its own copy of it."""
    root = tmp_path_factory.mktemp("golden")
    mp = pytest.MonkeyPatch()
    mp.setenv("INTERCOM_ACCESS_TOKEN", TOKEN)
    try:
        rc = main(["run", "--base-url", emu.base_url, *_target(root)])
    finally:
        mp.undo()
    assert rc == 0
    assert_matches_ground_truth(Warehouse("duckdb", DATASET, duckdb_path=root / "w.duckdb"), emu.workspace)
    return root


def _target(root: Path) -> list[str]:
    return ["--duckdb-path", str(root / "w.duckdb"), "--pipelines-dir", str(root / "p"),
            "--pipeline-name", PIPELINE, "--no-progress"]


_GOLDEN_BEFORE: dict[Path, tuple[dict[str, Any], dict[str, Any]]] = {}


def _golden_before(golden: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Snapshot and state of the golden sync, read once: every copy starts byte-identical."""
    if golden not in _GOLDEN_BEFORE:
        before = Warehouse("duckdb", DATASET, duckdb_path=golden / "w.duckdb").snapshot()
        _GOLDEN_BEFORE[golden] = (before, local_state(golden / "p", PIPELINE))
    return _GOLDEN_BEFORE[golden]


class Workdir:
    """A copy of the golden sync plus the before-snapshot to compare with afterwards."""

    def __init__(self, golden: Path, tmp_path: Path) -> None:
        self.root = tmp_path / "copy"
        shutil.copytree(golden, self.root)
        self.wh = Warehouse("duckdb", DATASET, duckdb_path=self.root / "w.duckdb")
        self.before, self.state_before = _golden_before(golden)
        assert self.before and self.state_before

    @property
    def args(self) -> list[str]:
        return _target(self.root)

    def assert_unchanged(self, recorded: bool = False) -> None:
        """Every table as it was; the run history gains one `failed` row when the run got as far as
        Intercom (`recorded`), none when it was refused before (a usage error)."""
        after = self.wh.snapshot()
        runs_before, runs_after = self.before.get(RUNS, []), after.pop(RUNS, [])
        assert after == {t: rows for t, rows in self.before.items() if t != RUNS}, "a failed run changed the warehouse"
        assert set(runs_before) <= set(runs_after), "the run history lost a row"
        statuses = [r[0] for r in self.wh.query(f"select status from {RUNS} order by started_at")]
        assert statuses == (["succeeded", "failed"] if recorded else ["succeeded"]), statuses
        after = local_state(self.root / "p", PIPELINE)
        assert after.get("sources") == self.state_before.get("sources"), "a failed run changed saved cursors"


@pytest.fixture
def wd(golden: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workdir:
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", TOKEN)
    monkeypatch.delenv("DESTINATION__POSTGRES__CREDENTIALS", raising=False)
    monkeypatch.chdir(tmp_path)  # no .dlt/ of the repo
    return Workdir(golden, tmp_path)


def one_line(err: str, *needles: str) -> str:
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{err}"
    assert lines[0].startswith("error: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    rc = main(argv)
    return rc, capsys.readouterr().err


def test_invalid_token(emu, wd, capsys, monkeypatch):
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", "bogus-token-000")
    rc, err = _run(capsys, ["run", "--base-url", emu.base_url, *wd.args])
    assert rc == 3
    one_line(err, "rejected the access token", "INTERCOM_ACCESS_TOKEN")
    wd.assert_unchanged(recorded=True)


def test_token_lacking_scope_names_permission(emu, wd, capsys, monkeypatch):
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", LIMITED)
    rc, err = _run(capsys, ["run", "--base-url", emu.base_url, *wd.args])
    assert rc == 3
    one_line(err, "Read conversations", "Read and list users and companies", "--streams")
    wd.assert_unchanged(recorded=True)


def test_token_lacking_scope_can_skip_denied_streams(emu, wd, capsys, monkeypatch):
    """`--skip-denied-streams`: one warning per stream the token cannot read, naming the
    permission; the allowed streams are synced, the tables of the denied ones are left as they are."""
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", LIMITED)
    ws = emu.workspace
    ws.delete_admin(ws.ground_truth("admins")[-1]["id"])  # allowed streams change: the run must pick it up
    ws.add_activity_log()
    ws.clock.advance(5)
    allowed = {"admins", "tags", "teams", "activity_logs"}  # read_admins, read_tags
    rc, err = _run(capsys, ["run", "--base-url", emu.base_url, "--skip-denied-streams", *wd.args])
    assert rc == 0, err
    warnings = [x for x in err.strip().splitlines() if x.strip()]
    denied = [s for s in STREAMS if s not in allowed]
    assert len(warnings) == len(denied), err
    needs = {"conversations": "Read conversations", "contacts": "Read and list users and companies",
             "tickets": "Read tickets"}
    for stream, line in zip(denied, warnings, strict=True):
        assert "WARNING" in line and f"skipping {stream}: the token lacks '" in line, line
        assert "Developer Hub" in line and "--streams" in line, line
        if stream in needs:
            assert f"'{needs[stream]}'" in line, line
    # the allowed streams were synced (the deleted admin is marked); nothing of the denied ones changed
    assert assert_matches_ground_truth(wd.wh, ws)["admins (deleted)"] == 1
    after = wd.wh.snapshot()
    for table, rows in wd.before.items():
        if table.split("__")[0] not in allowed and not table.startswith("_dlt") and table != RUNS:
            assert after[table] == rows, f"{table} changed although its stream was skipped"


def test_skip_denied_streams_fails_when_every_stream_is_denied(emu, wd, capsys, monkeypatch):
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", LIMITED)
    rc, err = _run(capsys, ["run", "--base-url", emu.base_url, "--skip-denied-streams",
                            "--streams", "contacts,conversations", *wd.args])
    assert rc == 3
    one_line(err, "Read conversations", "Read and list users and companies")
    wd.assert_unchanged(recorded=True)


def test_unknown_stream(emu, wd, capsys):
    rc, err = _run(capsys, ["run", "--base-url", emu.base_url, "--streams", "contacts,contcts", *wd.args])
    assert rc == 2
    one_line(err, "unknown stream contcts", "contacts")
    wd.assert_unchanged()


def test_untested_intercom_version(emu, wd, capsys):
    rc, err = _run(capsys, ["run", "--base-url", emu.base_url, "--intercom-version", "2.9", *wd.args])
    assert rc == 2
    one_line(err, "'2.9'", "2.11, 2.12, 2.13, 2.14, 2.15, 2.16", "--intercom-version")
    wd.assert_unchanged()


@pytest.mark.parametrize(("value", "needle"), [("2023-13-45", "invalid --start"), ("yesterday-ish", "invalid --start"), ("2999-01-01", "future")])
def test_bad_start_date(emu, wd, capsys, value, needle):
    rc, err = _run(capsys, ["backfill", "--start", value, "--base-url", emu.base_url, *wd.args])
    assert rc == 2
    one_line(err, needle)
    wd.assert_unchanged()


def test_end_before_start(emu, wd, capsys):
    rc, err = _run(capsys, ["backfill", "--start", "2024-05-01", "--end", "2024-04-01", "--base-url", emu.base_url, *wd.args])
    assert rc == 2
    one_line(err, "--end", "--start")
    wd.assert_unchanged()


def test_unreachable_host(wd, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    rc, err = _run(capsys, ["run", "--base-url", url, *wd.args])
    assert rc == 4
    one_line(err, "cannot reach", url)
    wd.assert_unchanged(recorded=True)


def test_wrong_region(wd, capsys):
    with EmulatorServer(profile="tiny", seed=9, endpoint_faults={"GET /me": {"error_rate": 1.0, "error_statuses": [404]}}) as other:
        rc, err = _run(capsys, ["run", "--base-url", other.base_url, *wd.args])
    assert rc == 4
    one_line(err, "region")
    wd.assert_unchanged(recorded=True)


@pytest.mark.postgres
def test_wrong_postgres_credentials(emu, wd, capsys, monkeypatch, postgres_credentials):
    bad = postgres_credentials.replace("postgres:postgres@", "no_such_role:wrong@")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", bad)
    # its own pipeline name: the golden one keeps DuckDB's cursors and would be refused (exit 2)
    rc, err = _run(capsys, ["run", "--base-url", emu.base_url, "--destination", "postgres", "--dataset", "res_badcreds",
                            *wd.args, "--pipeline-name", "badcreds"])
    assert rc == 5
    line = one_line(err, "Postgres", "DESTINATION__POSTGRES__CREDENTIALS")
    assert "wrong" not in line.split("no_such_role")[-1][:10], "password echoed"
    wd.assert_unchanged()


def test_duckdb_memory_limit_too_small(emu, wd, capsys, monkeypatch):
    """A DuckDB memory_limit too small for the load: exit 5 naming the setting, nothing loaded is
    lost, and once the limit is raised the next run loads the kept data and the new changes."""
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", '{"memory_limit": "1MB"}')
    emu.workspace.clock.advance(60)
    emu.workspace.update_contact(emu.workspace.ids("contacts")[0], name="Renamed Before The Failed Load")
    rc, err = _run(capsys, ["run", "--base-url", emu.base_url, *wd.args])
    assert rc == 5
    one_line(err, "out of memory", "memory_limit", "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG")
    assert wd.wh.snapshot() == wd.before, "a failed load changed the warehouse"
    monkeypatch.delenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG")
    rc, err = _run(capsys, ["run", "--base-url", emu.base_url, *wd.args])
    assert rc == 0, err
    assert_matches_ground_truth(wd.wh, emu.workspace)


def test_duckdb_file_open_in_another_process(emu, wd, capsys):
    """A DuckDB file another process holds (an analyst's session, an overlapping cron run): exit 5
    with one line naming the file and the way out; nothing loaded or saved changes, and the next run,
    once the file is free, syncs."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('open', flush=True); "
         "time.sleep(120)", str(wd.root / "w.duckdb")],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        emu.workspace.clock.advance(60)
        emu.workspace.update_contact(emu.workspace.ids("contacts")[2], name="Renamed While The File Was Busy")
        rc, err = _run(capsys, ["run", "--base-url", emu.base_url, *wd.args])
    finally:
        holder.kill()
        holder.wait()
    assert rc == 5, err
    one_line(err, str(wd.root / "w.duckdb"), "open in another process", f"(PID {holder.pid})", "--duckdb-path")
    wd.assert_unchanged()
    rc, err = _run(capsys, ["run", "--base-url", emu.base_url, *wd.args])
    assert rc == 0, err
    assert_matches_ground_truth(wd.wh, emu.workspace)


def test_companies_scroll_that_keeps_breaking(emu, wd, capsys):
    """Intercom's scroll cannot resume after a 500: one that breaks at the same page every time
    ends the run with exit 4 and one line naming the scroll and the way around it, and changes
    nothing loaded or saved."""
    emu.configure(scroll_page_size=3, faults={"scroll_error_on_page": 2, "scroll_error_times": 100})
    try:
        emu.workspace.clock.advance(60)  # a changed contact: a run that saved cursors would move them
        emu.workspace.update_contact(emu.workspace.ids("contacts")[1], name="Renamed Before The Broken Scroll")
        rc, err = _run(capsys, ["run", "--base-url", emu.base_url, *wd.args])
    finally:
        emu.configure(scroll_page_size=50, faults={"scroll_error_on_page": 0, "scroll_error_times": 0})
    assert rc == 4, err
    *restarts, last = err.strip().splitlines()
    assert restarts and all("companies scroll broke" in line and "restarting" in line for line in restarts), err
    one_line(last, "GET /companies/scroll failed", "cannot resume", "saved no cursor", "--streams")
    wd.assert_unchanged(recorded=True)


def test_same_pipeline_other_dataset_is_refused(emu, wd, capsys):
    """The saved cursors belong to the golden dataset: reused for another one they would load
    only recent changes there (silent data loss)."""
    rc, err = _run(capsys, ["run", "--base-url", emu.base_url, "--dataset", "other_data", *wd.args])
    assert rc == 2
    one_line(err, "'intercom_data'", "'other_data'", "--pipeline-name", "--full-refresh")
    wd.assert_unchanged()
    assert not Warehouse("duckdb", "other_data", duckdb_path=wd.root / "w.duckdb").tables()


@pytest.mark.postgres
def test_same_pipeline_other_destination_is_refused(emu, wd, capsys, monkeypatch, postgres_credentials, postgres_dataset):
    """DuckDB first, then Postgres with the same pipeline name: refused, nothing changed anywhere;
    `--full-refresh` (the advertised fix) then loads everything into Postgres."""
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_credentials)
    argv = ["run", "--base-url", emu.base_url, "--destination", "postgres", "--dataset", postgres_dataset,
            "--no-views", *wd.args]
    rc, err = _run(capsys, argv)
    assert rc == 2
    one_line(err, "duckdb", "postgres", f"'{postgres_dataset}'", "--pipeline-name", "--full-refresh")
    wd.assert_unchanged()
    pg = Warehouse("postgres", postgres_dataset, dsn=postgres_credentials)
    assert not pg.tables(), "a refused run created tables in Postgres"

    rc, err = _run(capsys, [*argv, "--full-refresh"])
    assert rc == 0, err
    assert_matches_ground_truth(pg, emu.workspace)


@pytest.mark.parametrize("name", ["my-data", "1data", "drop table;", "x" * 64])
def test_invalid_dataset_name(emu, wd, capsys, name):
    rc, err = _run(capsys, ["run", "--base-url", emu.base_url, "--dataset", name, *wd.args])
    assert rc == 2
    one_line(err, "invalid --dataset")
    wd.assert_unchanged()


class _HtmlHandler(http.server.BaseHTTPRequestHandler):
    """A proxy/captive portal answering an HTML page (status set per server)."""

    status = 200

    def _answer(self) -> None:
        body = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer  # noqa: N815
    do_POST = _answer  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture(params=[200, 502])
def html_server(request: pytest.FixtureRequest) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HtmlHandler)
    server.status = request.param  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_html_error_page_instead_of_json(html_server, wd, capsys):
    rc, err = _run(capsys, ["run", "--base-url", html_server, *wd.args])
    assert rc != 0
    line = one_line(err)
    assert "HTML" in line and "JSON" in line, line
    assert "--base-url" in line or "proxy" in line, line
    wd.assert_unchanged(recorded=True)


def test_plain_http_to_non_loopback_host_is_refused(wd, capsys):
    rc, err = _run(capsys, ["run", "--base-url", "http://api.example.com", *wd.args])
    assert rc == 2
    one_line(err, "https")
    wd.assert_unchanged()

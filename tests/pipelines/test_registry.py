"""The workspace registry end to end: `workspaces list|check`, `run --workspace`, `run --all`
against several in-process emulators (one per workspace, own port), into real DuckDB files / Postgres."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from intercom_elt.pipelines.fleet import fleet_exit_code
from intercom_elt.pipelines.registry import validate_schedule
from intercom_emulator.testing import EmulatorServer
from tests.pipelines.test_cli import assert_one_line_error

STREAMS = ("contacts", "companies", "conversations", "admins", "tags")
STREAM_LIST = "[" + ", ".join(f'"{s}"' for s in STREAMS) + "]"


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, EmulatorServer]]:
    """Three workspaces: alpha (token in env), beta (token in .dlt/secrets.toml), gamma (a token
    that may read admins and tags only)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("INTERCOM_ACCESS_TOKEN", raising=False)
    with (
        EmulatorServer(profile="tiny", seed=3, tokens=["alpha-secret-token"]) as alpha,
        EmulatorServer(profile="tiny", seed=5, tokens=["beta-secret-token"]) as beta,
        EmulatorServer(profile="tiny", seed=9, tokens=["gamma-secret-token:read_admins,read_tags"]) as gamma,
    ):
        monkeypatch.setenv("ALPHA_TOKEN", "alpha-secret-token")
        monkeypatch.setenv("GAMMA_TOKEN", "gamma-secret-token")
        (tmp_path / ".dlt").mkdir()
        (tmp_path / ".dlt" / "secrets.toml").write_text('[workspaces.beta]\naccess_token = "beta-secret-token"\n')
        write_registry(tmp_path / "workspaces.toml", alpha.base_url, beta.base_url, gamma.base_url)
        yield {"alpha": alpha, "beta": beta, "gamma": gamma}


def write_registry(path: Path, alpha_url: str, beta_url: str, gamma_url: str, extra: str = "") -> None:
    path.write_text(
        f"""
[workspaces.alpha]
base_url = "{alpha_url}"
token_env = "ALPHA_TOKEN"
destination = "duckdb"
duckdb_path = "alpha.duckdb"
dataset = "intercom_alpha"
streams = {STREAM_LIST}
schedule = "15 * * * *"

[workspaces.beta]
base_url = "{beta_url}"
token_secret = "workspaces.beta.access_token"
destination = "duckdb"
duckdb_path = "beta.duckdb"
dataset = "intercom_beta"
streams = {STREAM_LIST}
schedule = "*/30 6-18 * * mon-fri"

[workspaces.gamma]
base_url = "{gamma_url}"
token_env = "GAMMA_TOKEN"
destination = "duckdb"
duckdb_path = "gamma.duckdb"
dataset = "intercom_gamma"
streams = {STREAM_LIST}
{extra}"""
    )


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real `intercom-sync` in its own process from tmp_path, as a scheduler runs it (dlt reads
    .dlt/ of the working directory once per process, so each registry gets a fresh one)."""
    command = [sys.executable, "-m", "intercom_elt.pipelines.cli", *args]
    return subprocess.run(command, cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True, timeout=120)


def _ids(path: Path, dataset: str, table: str) -> set[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {str(r[0]) for r in con.execute(f"select id from {dataset}.{table}").fetchall()}


def _truth(emu: EmulatorServer, stream: str) -> set[str]:
    return {str(r["id"]) for r in emu.workspace.ground_truth(stream)}


def test_run_all_lands_each_workspace_alone_and_one_failure_stops_no_other(fleet, tmp_path):
    done = cli(tmp_path, "run", "--all", "--parallel", "2", "--pipelines-dir", str(tmp_path / "p"), "--no-progress")
    rc, out = done.returncode, done.stdout
    assert rc == 3, out  # gamma's token lacks read_contacts: exit 3, the only failure
    summary = out.split("== summary", 1)[1].strip().splitlines()
    assert summary[0] == "alpha: ok"
    assert summary[1] == "beta: ok"
    assert summary[2].startswith("gamma: failed (exit 3): error: "), summary
    assert summary[3] == "3 workspaces: 2 ok, 1 failed"
    assert len(summary) == 4
    # each block is printed as its workspace ends, headed with its exit code and duration
    assert re.search(r"^== workspace gamma \(exit 3, \d+\.\d s\)$", out, re.M), out
    for name in ("alpha", "beta"):
        emu = fleet[name]
        for stream in STREAMS:
            assert _ids(tmp_path / f"{name}.duckdb", f"intercom_{name}", stream) == _truth(emu, stream), (name, stream)
    # each workspace is its own data: the seeds differ, so do the contacts
    assert _truth(fleet["alpha"], "contacts") != _truth(fleet["beta"], "contacts")
    assert "secret-token" not in out


def _run_all_with_alpha_under_way(fleet: dict[str, EmulatorServer], tmp_path: Path) -> subprocess.Popen[str]:
    """`run --all --parallel 1` in its own session, returned once alpha's run is requesting (each
    request takes 400 ms: time to signal it mid-run)."""
    fleet["alpha"].configure(faults={"latency_ms": 400})
    command = [sys.executable, "-m", "intercom_elt.pipelines.cli", "run", "--all", "--parallel", "1",
               "--pipelines-dir", str(tmp_path / "p"), "--no-progress"]
    proc = subprocess.Popen(command, cwd=tmp_path, env=dict(os.environ), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while fleet["alpha"].log.total == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc


def _assert_requests_stopped(emu: EmulatorServer) -> None:
    """No sync of this workspace goes on (an orphaned one would still be requesting)."""
    time.sleep(0.6)  # requests already in flight are counted when their 400 ms have passed
    seen = emu.log.total
    time.sleep(1.5)
    assert emu.log.total == seen


def test_ctrl_c_during_run_all_starts_no_further_workspace(fleet, tmp_path):
    """Ctrl-C (SIGINT to the foreground process group) stops the running workspace and starts none
    of the queued ones; the summary names what did not run."""
    proc = _run_all_with_alpha_under_way(fleet, tmp_path)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "error: interrupted" in err
    assert out.rstrip().endswith(
        "alpha: failed (exit 130): error: interrupted; the next run resumes from the last saved cursors\n"
        "beta: not run (interrupted)\ngamma: not run (interrupted)\n3 workspaces: 1 failed, 2 not run"
    ), out
    time.sleep(1)  # an executor that went on would be syncing beta by now
    assert fleet["beta"].log.total == 0 and fleet["gamma"].log.total == 0
    assert not (tmp_path / "beta.duckdb").exists()


def test_sigterm_to_run_all_alone_stops_its_runs_too(fleet, tmp_path):
    """A scheduler's timeout sends SIGTERM to the process it started, not its group: `run --all`
    passes it on, so the running workspace stops (no orphan syncing on) and no queued one starts."""
    proc = _run_all_with_alpha_under_way(fleet, tmp_path)
    proc.terminate()  # the parent alone
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "error: interrupted" in err
    assert out.rstrip().endswith("beta: not run (interrupted)\ngamma: not run (interrupted)\n3 workspaces: 1 failed, 2 not run"), out
    assert re.search(r"^alpha: failed \(exit -15\)", out, re.M), out  # the run ended by the SIGTERM passed on
    _assert_requests_stopped(fleet["alpha"])
    assert fleet["beta"].log.total == 0 and fleet["gamma"].log.total == 0


def test_workspaces_sharing_a_duckdb_file_run_one_after_another(fleet, tmp_path):
    """DuckDB allows one writing process per file: two workspaces with their own datasets in one
    file both land (under --parallel 2 they would otherwise collide on the file's lock)."""
    registry = tmp_path / "workspaces.toml"
    text = registry.read_text().replace('duckdb_path = "beta.duckdb"', 'duckdb_path = "alpha.duckdb"')
    registry.write_text(text.split("[workspaces.gamma]")[0])
    done = cli(tmp_path, "run", "--all", "--parallel", "2", "--pipelines-dir", str(tmp_path / "p"), "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("alpha: ok\nbeta: ok\n2 workspaces: 2 ok"), done.stdout
    for name in ("alpha", "beta"):
        for stream in STREAMS:
            assert _ids(tmp_path / "alpha.duckdb", f"intercom_{name}", stream) == _truth(fleet[name], stream), (name, stream)
    assert not (tmp_path / "beta.duckdb").exists()


def test_run_one_workspace_is_a_plain_run(fleet, tmp_path):
    done = cli(tmp_path, "run", "--workspace", "beta", "--pipelines-dir", str(tmp_path / "p"), "--no-progress")
    rc, out = done.returncode, done.stdout
    assert rc == 0, out
    assert "Rows loaded per table:" in out
    assert _ids(tmp_path / "beta.duckdb", "intercom_beta", "contacts") == _truth(fleet["beta"], "contacts")
    assert not (tmp_path / "alpha.duckdb").exists()


def test_run_one_workspace_is_the_run_process_itself(fleet, tmp_path):
    """`run --workspace` execs the workspace's run: a scheduler's SIGTERM to the pid it started
    stops the sync (a waiting parent died alone and left the sync running, orphaned)."""
    fleet["alpha"].configure(faults={"latency_ms": 400})
    command = [sys.executable, "-m", "intercom_elt.pipelines.cli", "run", "--workspace", "alpha",
               "--pipelines-dir", str(tmp_path / "p"), "--no-progress"]
    proc = subprocess.Popen(command, cwd=tmp_path, env=dict(os.environ), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while fleet["alpha"].log.total == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_text().split("\0")
    assert "--base-url" in cmdline and fleet["alpha"].base_url in cmdline, cmdline  # the run's own flags
    proc.terminate()
    proc.communicate(timeout=30)
    _assert_requests_stopped(fleet["alpha"])


def test_run_workspace_unknown_name(fleet, tmp_path):
    done = cli(tmp_path, "run", "--workspace", "delta")
    assert done.returncode == 2
    assert_one_line_error(done.stderr, "no workspace 'delta'", "alpha, beta, gamma")


def test_per_workspace_flag_with_all_is_refused(fleet, tmp_path):
    done = cli(tmp_path, "run", "--all", "--dataset", "other")
    assert done.returncode == 2
    assert_one_line_error(done.stderr, "--dataset is set per workspace")


def test_workspaces_list_names_token_sources_never_tokens(fleet, tmp_path):
    done = cli(tmp_path, "workspaces", "list")
    assert done.returncode == 0, done.stderr
    out = done.stdout + done.stderr
    lines = out.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"alpha: {fleet['alpha'].base_url}  ->  duckdb:intercom_alpha (alpha.duckdb)")
    assert "schedule 15 * * * *" in lines[0] and lines[0].endswith("token from env ALPHA_TOKEN")
    assert lines[1].endswith("token from secret workspaces.beta.access_token")
    assert "pipeline intercom_gamma" in lines[2]  # the default pipeline name
    assert "secret-token" not in out


def test_workspaces_check_shows_what_each_token_may_read(fleet, tmp_path):
    done = cli(tmp_path, "workspaces", "check")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    gamma = [line for line in out.splitlines() if line.startswith("gamma: ")]
    assert any(line.startswith("gamma: not allowed: ") and "contacts" in line for line in gamma), out
    assert any(line.startswith("gamma: allowed (") and "admins" in line and "tags" in line for line in gamma), out
    assert any(line.startswith("alpha: allowed (") for line in out.splitlines()), out
    assert "alpha: not allowed" not in out
    assert "secret-token" not in out


@pytest.mark.parametrize(
    ("extra", "unset", "needles"),
    [
        ('colour = "blue"', None, ["workspace 'gamma' key 'colour'", "unknown key"]),
        ('schedule = "15 * * *"', None, ["workspace 'gamma' key 'schedule'", "has 4 fields"]),
        ('schedule = "61 * * * *"', None, ["workspace 'gamma' key 'schedule'", "minute 61 is outside 0-59"]),
    ],
)
def test_bad_registry_is_one_line_and_changes_nothing(fleet, tmp_path, monkeypatch, extra, unset, needles):
    if unset:
        monkeypatch.delenv(unset)
    write_registry(tmp_path / "workspaces.toml", *(fleet[n].base_url for n in ("alpha", "beta", "gamma")), extra)
    _assert_refused(tmp_path, needles)


def test_unknown_stream_is_refused(fleet, tmp_path):
    registry = tmp_path / "workspaces.toml"
    registry.write_text(registry.read_text().replace('"tags"]', '"tagz"]', 1))
    _assert_refused(tmp_path, ["workspace 'alpha' key 'streams'", "unknown stream 'tagz'"])


def test_a_workspace_without_its_token_fails_alone(fleet, tmp_path, monkeypatch):
    """A workspace whose token is not in place yet (added, not connected) fails alone with the line
    that says where to put it; the others sync. `run --workspace` and `check` say the same."""
    monkeypatch.delenv("GAMMA_TOKEN")
    (tmp_path / ".dlt" / "secrets.toml").write_text("")  # beta's secret is gone too
    done = cli(tmp_path, "run", "--all", "--parallel", "2", "--pipelines-dir", str(tmp_path / "p"), "--no-progress")
    assert done.returncode == 2, done.stdout + done.stderr
    summary = done.stdout.split("== summary", 1)[1].strip().splitlines()
    assert summary[0] == "alpha: ok", summary
    assert summary[1].startswith("beta: failed (exit 2): error: workspaces.toml: workspace 'beta' key 'token_secret'")
    assert summary[1].endswith("no secret workspaces.beta.access_token in .dlt/secrets.toml"), summary
    assert summary[2].startswith("gamma: failed (exit 2): error: workspaces.toml: workspace 'gamma' key 'token_env'")
    assert summary[2].endswith("environment variable GAMMA_TOKEN is not set"), summary
    assert summary[3] == "3 workspaces: 1 ok, 2 failed"
    for stream in STREAMS:
        assert _ids(tmp_path / "alpha.duckdb", "intercom_alpha", stream) == _truth(fleet["alpha"], stream), stream
    assert fleet["beta"].log.total == 0 and fleet["gamma"].log.total == 0
    assert not (tmp_path / "beta.duckdb").exists() and not (tmp_path / "gamma.duckdb").exists()

    one = cli(tmp_path, "run", "--workspace", "gamma", "--pipelines-dir", str(tmp_path / "p"))
    assert one.returncode == 2 and one.stdout == ""
    assert_one_line_error(one.stderr, "workspaces.toml: workspace 'gamma' key 'token_env'", "GAMMA_TOKEN is not set")

    check = cli(tmp_path, "workspaces", "check")
    assert check.returncode == 2, check.stdout + check.stderr
    assert any(line.startswith("alpha: allowed (") for line in check.stdout.splitlines()), check.stdout
    assert "gamma: error: workspaces.toml: workspace 'gamma' key 'token_env'" in check.stdout
    assert "secret-token" not in done.stdout + done.stderr + check.stdout + check.stderr


def test_two_workspaces_writing_one_dataset_are_refused(fleet, tmp_path):
    registry = tmp_path / "workspaces.toml"
    text = registry.read_text().replace('duckdb_path = "beta.duckdb"\ndataset = "intercom_beta"',
                                        'duckdb_path = "alpha.duckdb"\ndataset = "intercom_alpha"')
    registry.write_text(text.replace("[workspaces.beta]", '[workspaces.beta]\npipeline_name = "intercom_alpha"'))
    _assert_refused(tmp_path, ["workspace 'beta' key 'dataset'", "workspace 'alpha' already writes"])


def _assert_refused(tmp_path: Path, needles: list[str]) -> None:
    before = sorted(p.name for p in tmp_path.iterdir())
    done = cli(tmp_path, "run", "--all", "--pipelines-dir", str(tmp_path / "p"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert_one_line_error(done.stderr, "workspaces.toml: ", *needles)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no DuckDB file, no pipeline state


@pytest.mark.parametrize(
    ("expr", "ok"),
    [("15 * * * *", True), ("*/5 0-6,22 1 jan-mar sun", True), ("0 0 * * 7", True), ("@hourly", False),
     ("0 24 * * *", False), ("0 0 0 * *", False), ("*/0 * * * *", False), ("0 0 * foo *", False)],
)
def test_schedule_shape(expr, ok):
    assert (validate_schedule(expr) is None) == ok


def test_fleet_exit_code_priority():
    assert fleet_exit_code([0, 0]) == 0
    assert fleet_exit_code([0, 1, 6]) == 1
    assert fleet_exit_code([4, 5, 2]) == 5
    assert fleet_exit_code([130, 6]) == 1
    assert fleet_exit_code([2, 3, 4]) == 3


@pytest.mark.postgres
def test_run_all_into_postgres_matches_ground_truth(
    fleet, tmp_path, monkeypatch, postgres_credentials, postgres_dataset
):
    import psycopg2

    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_credentials)
    (tmp_path / "workspaces.toml").write_text(
        f"""
[workspaces.alpha]
base_url = "{fleet['alpha'].base_url}"
token_env = "ALPHA_TOKEN"
destination = "postgres"
dataset = "{postgres_dataset}"
streams = {STREAM_LIST}
"""
    )
    done = cli(tmp_path, "run", "--all", "--pipelines-dir", str(tmp_path / "p"), "--no-progress")
    rc, out = done.returncode, done.stdout
    assert rc == 0, out
    assert out.rstrip().endswith("== summary\nalpha: ok\n1 workspace: 1 ok")
    with psycopg2.connect(postgres_credentials) as con, con.cursor() as cur:
        for stream in STREAMS:
            cur.execute(f"select id from {postgres_dataset}.{stream}")
            assert {str(r[0]) for r in cur.fetchall()} == _truth(fleet["alpha"], stream), stream


REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("source", ["workspaces.toml.example", "README.md"])
def test_the_shipped_registry_examples_load(source, tmp_path, monkeypatch):
    """The tracked example and the README's registry block are valid registries (no untested recipe)."""
    text = (REPO / source).read_text(encoding="utf-8")
    if source == "README.md":
        text = text.split("## Many workspaces", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "workspaces.toml").write_text(text)
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "secrets.toml").write_text('[workspaces.eu]\naccess_token = "eu-token-value"\n')
    monkeypatch.setenv("INTERCOM_US_TOKEN", "us-token-value")
    done = cli(tmp_path, "workspaces", "list")
    assert done.returncode == 0, done.stderr
    assert "eu: region eu  ->  duckdb:intercom_eu (intercom_eu.duckdb)" in done.stdout
    assert "token-value" not in done.stdout + done.stderr

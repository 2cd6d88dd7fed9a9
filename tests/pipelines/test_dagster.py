"""Dagster as the orchestrator: the registry's workspaces as assets, materialized by a real Dagster
(in-process `materialize`, and in a subprocess that is SIGKILLed mid-load) into the real Postgres.

Three emulator workspaces side by side: an EU one, an AU one and one whose token lacks
`read_conversations`. Each must equal its own ground truth; a second materialization is
incremental; a run killed between a load job's commit and dlt's record of it is finished by the
next one with no row lost or doubled, and a second run of a busy workspace fails at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster
import pytest
import yaml
from dagster import AssetKey, AssetSelection, DagsterInstance, RetryPolicy, materialize

from intercom_elt.pipelines.dagster_defs import build_definitions
from intercom_emulator.testing import EmulatorServer, free_port
from tests.conftest import POSTGRES_DSN, drop_schemas
from tests.resilience.conftest import Warehouse, assert_matches_ground_truth, pending_packages, wait_until

REPO = Path(__file__).resolve().parents[2]
STREAMS = ("contacts", "companies", "conversations", "conversation_parts", "admins", "tags")
NO_CONVERSATIONS = ("contacts", "companies", "admins", "tags")
# a token without read_conversations: its conversations and parts are skipped, the rest lands
LIMITED_SCOPES = "read_users_companies,read_admins,read_tags,read_tickets"


class Fleet:
    """Three emulators, their tokens in the environment, a registry naming them, one Postgres schema each."""

    def __init__(self, tmp_path: Path, servers: dict[str, EmulatorServer]) -> None:
        self.tmp_path = tmp_path
        self.servers = servers
        self.suffix = uuid.uuid4().hex[:8]
        self.registry = tmp_path / "workspaces.toml"
        self.pipelines_dir = tmp_path / "pipelines"

    def dataset(self, name: str) -> str:
        return f"dg_{self.suffix}_{name}"

    def warehouse(self, name: str) -> Warehouse:
        return Warehouse("postgres", self.dataset(name), dsn=POSTGRES_DSN)

    def write_registry(self) -> None:
        streams = "[" + ", ".join(f'"{s}"' for s in STREAMS) + "]"
        self.registry.write_text(
            "".join(
                f'[workspaces.{name}]\nbase_url = "{emu.base_url}"\ntoken_env = "DG_{name.upper()}_TOKEN"\n'
                f'destination = "postgres"\ndataset = "{self.dataset(name)}"\nstreams = {streams}\n'
                f'schedule = "{cron}"\n\n'
                for (name, emu), cron in zip(self.servers.items(), ("15 * * * *", "*/30 6-18 * * mon-fri", "0 3 * * *"), strict=True)
            )
        )

    def definitions(self, **kwargs: Any) -> dagster.Definitions:
        return build_definitions(self.registry, pipelines_dir=self.pipelines_dir, **kwargs)


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_credentials: str) -> Iterator[Fleet]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("INTERCOM_ACCESS_TOKEN", raising=False)
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_credentials)
    with (
        EmulatorServer(profile="tiny", seed=3, timezone="Europe/Dublin", tokens=["dg-eu-secret"]) as eu,
        EmulatorServer(profile="tiny", seed=5, timezone="Australia/Sydney", tokens=["dg-au-secret"]) as au,
        EmulatorServer(profile="tiny", seed=9, tokens=[f"dg-limited-secret:{LIMITED_SCOPES}"]) as limited,
    ):
        eu.workspace.app["region"], au.workspace.app["region"] = "EU", "AU"
        for name in ("eu", "au", "limited"):
            monkeypatch.setenv(f"DG_{name.upper()}_TOKEN", f"dg-{name}-secret")
        fleet = Fleet(tmp_path, {"eu": eu, "au": au, "limited": limited})
        fleet.write_registry()
        try:
            yield fleet
        finally:
            for name in fleet.servers:
                dataset = fleet.dataset(name)
                drop_schemas(postgres_credentials, f"{dataset}_fivetran", dataset, f"{dataset}_staging")


def _metadata(result: Any, workspace: str) -> dict[str, dict[str, Any]]:
    """{table: {metadata key: value}} of the workspace's materializations in `result`."""
    return {
        m.asset_key.path[-1]: {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node(f"intercom_{workspace}")
    }


def _assert_exact(fleet: Fleet) -> None:
    for name, emu in fleet.servers.items():
        streams = NO_CONVERSATIONS if name == "limited" else STREAMS
        assert_matches_ground_truth(fleet.warehouse(name), emu.workspace, streams)
    assert "conversations" not in fleet.warehouse("limited").tables()


@pytest.mark.postgres
def test_three_workspaces_exact_then_incremental(fleet: Fleet) -> None:
    defs = fleet.definitions()
    assert sorted(s.name for s in defs.schedules) == [f"intercom_{n}_schedule" for n in ("au", "eu", "limited")]
    assert {s.cron_schedule for s in defs.schedules} == {"15 * * * *", "*/30 6-18 * * mon-fri", "0 3 * * *"}
    instance = DagsterInstance.ephemeral()

    first = materialize(defs.assets, instance=instance)
    assert first.success
    _assert_exact(fleet)
    for name in ("eu", "au"):
        meta = _metadata(first, name)
        assert sorted(meta) == sorted(STREAMS)
        truth = {s: len(fleet.servers[name].workspace.ground_truth(s)) for s in ("contacts", "companies", "admins")}
        for stream, count in truth.items():
            assert meta[stream]["rows_by_table"][stream] == count, (name, stream)
        assert meta["contacts"]["rows"] == sum(meta["contacts"]["rows_by_table"].values())
        assert meta["contacts"]["requests"] > 0 and meta["contacts"]["duration_seconds"] > 0
        assert meta["contacts"]["rate_limited_429"] == 0 and meta["contacts"]["skipped_streams"] == {}
    # the limited token: its readable streams materialized, the others observed as skipped, run green
    limited = _metadata(first, "limited")
    assert sorted(limited) == sorted(NO_CONVERSATIONS)
    assert limited["contacts"]["skipped_streams"] == {
        "conversations": "Read conversations", "conversation_parts": "Read conversations",
    }
    skipped = {o.asset_key: o.metadata["skipped"].value for o in first.asset_observations_for_node("intercom_limited")}
    assert skipped == {AssetKey(["limited", s]): "the token lacks 'Read conversations'" for s in ("conversations", "conversation_parts")}
    # each run is in the workspace's run history, like `intercom-sync run`
    runs = fleet.warehouse("au").query("select command, status from _intercom_runs")
    assert runs == [(f"dagster run {first.run_id}", "succeeded")]

    # a second materialization is incremental: a change lands, far fewer requests and rows
    eu = fleet.servers["eu"].workspace
    eu.clock.advance(60)
    renamed = eu.ids("contacts")[0]
    eu.update_contact(renamed, name="Renamed Between Runs")
    second = materialize(defs.assets, instance=instance)
    assert second.success
    _assert_exact(fleet)
    assert fleet.warehouse("eu").query(f"select name from contacts where id = '{renamed}'") == [("Renamed Between Runs",)]
    for name in fleet.servers:
        before, after = _metadata(first, name)["contacts"], _metadata(second, name)["contacts"]
        assert after["requests"] < before["requests"] / 2, (name, before["requests"], after["requests"])
        assert after["run_rows_total"] < before["run_rows_total"] / 2, (name, before["run_rows_total"], after["run_rows_total"])
    assert _metadata(second, "eu")["contacts"]["rows_by_table"]["contacts"] >= 1


# The subprocess: Dagster's `materialize` of one workspace, with dlt's record of a load job's
# commit held back at the PARK-th job (rows committed, dlt not told: the hardest moment to die,
# resume must undo that job's rows). The sentinel says the run is parked there.
PARKED_MATERIALIZE = """
import sys, time
from pathlib import Path
from dlt.common.storages.load_package import PackageStorage
save = PackageStorage.save_pending_transition
calls = []
def parked_save(self, load_id, file_name, *args, **kwargs):
    calls.append(file_name)
    if len(calls) == {park}:
        Path({sentinel!r}).write_text(file_name)
        time.sleep(600)
    return save(self, load_id, file_name, *args, **kwargs)
PackageStorage.save_pending_transition = parked_save
from dagster import AssetSelection, DagsterInstance, materialize
from intercom_elt.pipelines.dagster_defs import build_definitions
defs = build_definitions(Path({registry!r}), pipelines_dir=Path({pipelines!r}))
materialize(defs.assets, selection=AssetSelection.groups({group!r}), instance=DagsterInstance.ephemeral())
"""


@pytest.mark.postgres
def test_killed_materialization_is_finished_by_the_next(fleet: Fleet) -> None:
    sentinel = fleet.tmp_path / "parked"
    script = PARKED_MATERIALIZE.format(
        park=3, sentinel=str(sentinel), registry=str(fleet.registry), pipelines=str(fleet.pipelines_dir), group="eu"
    )
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=fleet.tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        parked = wait_until(lambda: sentinel.exists() or proc.poll() is not None, 180)
        assert parked and proc.poll() is None, f"the run never reached its load step: {proc.communicate()[0][-3000:]}"
        assert pending_packages(fleet.pipelines_dir, "intercom_eu"), "killed outside the load step"
        defs = fleet.definitions()

        # one run per workspace: a second materialization of eu fails at once, no retry, one line
        t0 = time.monotonic()
        busy = materialize(defs.assets, selection=AssetSelection.groups("eu"), instance=DagsterInstance.ephemeral(),
                           raise_on_error=False)
        assert not busy.success and time.monotonic() - t0 < 60
        failures = [e for e in busy.all_events if e.is_step_failure]
        assert len(failures) == 1
        failure = failures[0].step_failure_data
        assert failure.user_failure_data is not None
        line = failure.user_failure_data.description
        assert line.startswith("another sync of pipeline 'intercom_eu' is already running") and "\n" not in line
        assert not [e for e in busy.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
        assert proc.poll() is None, "the busy run must not disturb the running one"

        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)
    assert pending_packages(fleet.pipelines_dir, "intercom_eu"), "the killed run left nothing to resume"

    # new data after the crash too; then every workspace at once: eu resumes, the others load
    eu = fleet.servers["eu"].workspace
    eu.clock.advance(60)
    eu.create_contact(role="user", email="after-the-kill@example.com", name="Created After The Kill")
    eu.update_company(eu.ids("companies")[0], name="Renamed After The Kill")
    # no retry: a resume that failed must fail this test now, not after Dagster's back-off
    resumed = materialize(fleet.definitions(retry_policy=None).assets, instance=DagsterInstance.ephemeral())
    assert resumed.success
    _assert_exact(fleet)
    assert not pending_packages(fleet.pipelines_dir, "intercom_eu")
    assert fleet.warehouse("eu").query("select count(*) from contacts where name = 'Created After The Kill'") == [(1,)]


def test_the_shipped_examples_load_in_dagster(tmp_path: Path) -> None:
    """`dagster definitions validate` on workspaces.toml.example (no token needed to load), the
    one-line error without a registry, and dagster.yaml.example's one-run-per-workspace limits."""
    (tmp_path / "workspaces.toml").write_text((REPO / "workspaces.toml.example").read_text(encoding="utf-8"))
    env = {k: v for k, v in os.environ.items() if k not in ("INTERCOM_REGISTRY", "DAGSTER_HOME")}
    command = [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "intercom_elt.pipelines.dagster_defs"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful" in done.stdout + done.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(command, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert (
        "no workspace registry for Dagster: INTERCOM_REGISTRY is not set and there is no workspaces.toml in "
        f"{elsewhere}; set INTERCOM_REGISTRY=path/to/workspaces.toml (start from workspaces.toml.example)"
    ) in done.stdout + done.stderr

    home = tmp_path / "dagster_home"
    home.mkdir()
    example = (REPO / "dagster.yaml.example").read_text(encoding="utf-8")
    (home / "dagster.yaml").write_text(example)
    readme = (REPO / "README.md").read_text(encoding="utf-8").split("## Dagster\n", 1)[1]
    assert yaml.safe_load(readme.split("```yaml\n", 1)[1].split("```", 1)[0]) == yaml.safe_load(example)
    with DagsterInstance.from_config(str(home)) as instance:
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None
        assert {"key": "intercom/workspace", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in queue.tag_concurrency_limits
        pools = instance.get_concurrency_config().pool_config
        assert pools.default_pool_limit == 1 and pools.pool_granularity.value == "run"


def test_workspaces_sharing_a_duckdb_file_share_a_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB lets one process write a file: two workspaces writing one file are in one pool, which
    dagster.yaml.example limits to one run, so they take turns; every other workspace has its own."""
    monkeypatch.chdir(tmp_path)
    entry = 'base_url = "http://127.0.0.1:9"\ntoken_env = "T"\ndataset = "intercom_{0}"\n'
    (tmp_path / "workspaces.toml").write_text(
        '[workspaces.a]\ndestination = "duckdb"\nduckdb_path = "shared.duckdb"\n' + entry.format("a")
        + '\n[workspaces.b]\ndestination = "duckdb"\nduckdb_path = "./shared.duckdb"\n' + entry.format("b")
        + '\n[workspaces.c]\ndestination = "duckdb"\nduckdb_path = "own.duckdb"\n' + entry.format("c")
        + '\n[workspaces.d]\ndestination = "postgres"\n' + entry.format("d")
    )
    defs = build_definitions(tmp_path / "workspaces.toml", pipelines_dir=tmp_path / "p")
    pools = {a.op.name: a.op.pool for a in defs.assets}
    assert pools["intercom_a"] == pools["intercom_b"] and pools["intercom_a"].startswith("intercom_duckdb_shared_")
    assert pools["intercom_c"].startswith("intercom_duckdb_own_")
    assert pools["intercom_d"] == "intercom_d"
    assert len(set(pools.values())) == 3


def test_failures_retry_only_when_a_later_try_can_succeed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Intercom unreachable is retried (exit 4); a rejected token (exit 3) or an unset one (exit 2,
    found when that workspace runs: the definitions loaded without it) is not; each step fails with
    the CLI's one error line, never the token."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DG_WRONG_TOKEN", "dg-wrong-secret")
    monkeypatch.delenv("DG_UNSET_TOKEN", raising=False)
    with EmulatorServer(profile="tiny", seed=3, tokens=["dg-right-secret"]) as emu:
        (tmp_path / "workspaces.toml").write_text(
            f'[workspaces.down]\nbase_url = "http://127.0.0.1:{free_port()}"\ntoken_env = "DG_WRONG_TOKEN"\n'
            'destination = "duckdb"\nduckdb_path = "down.duckdb"\ndataset = "intercom_down"\n\n'
            f'[workspaces.rejected]\nbase_url = "{emu.base_url}"\ntoken_env = "DG_WRONG_TOKEN"\n'
            'destination = "duckdb"\nduckdb_path = "rejected.duckdb"\ndataset = "intercom_rejected"\n\n'
            f'[workspaces.unset]\nbase_url = "{emu.base_url}"\ntoken_env = "DG_UNSET_TOKEN"\n'
            'destination = "duckdb"\nduckdb_path = "unset.duckdb"\ndataset = "intercom_unset"\n'
        )
        defs = build_definitions(
            tmp_path / "workspaces.toml", pipelines_dir=tmp_path / "p", retry_policy=RetryPolicy(max_retries=1, delay=0)
        )
        result = materialize(defs.assets, instance=DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success
    retried = {e.step_key for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"}
    assert retried == {"intercom_down"}
    failed = {e.step_key: e.step_failure_data.user_failure_data for e in result.all_events if e.is_step_failure}
    assert set(failed) == {"intercom_down", "intercom_rejected", "intercom_unset"}
    assert failed["intercom_down"].metadata["exit_code"].value == 4
    assert failed["intercom_rejected"].metadata["exit_code"].value == 3
    assert failed["intercom_unset"].metadata["exit_code"].value == 2
    assert failed["intercom_unset"].description.endswith(
        "workspaces.toml: workspace 'unset' key 'token_env': environment variable DG_UNSET_TOKEN is not set"
    )
    for failure in failed.values():
        assert "\n" not in failure.description and "dg-wrong-secret" not in failure.description, failure.description
    assert not (tmp_path / "rejected.duckdb").exists() and not (tmp_path / "down.duckdb").exists()

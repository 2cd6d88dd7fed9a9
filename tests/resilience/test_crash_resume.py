"""Crash and resume: SIGKILL the real CLI at seeded moments in extract, normalize and load.

After every kill the saved cursors must not point past loaded data (unless dlt kept the package
that carries it); after the final rerun the warehouse must equal ground truth with no duplicate
key. Mutations happen between kills, so a resumed run also has new data to pick up. A second
sync of the same pipeline started while one runs must be refused, not allowed to corrupt.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from intercom_emulator.testing import EmulatorServer
from tests.resilience.conftest import (
    TOKEN,
    Target,
    assert_cursors_not_past_loaded,
    assert_matches_ground_truth,
    pending_packages,
    subprocess_env,
    wait_until,
)

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
PIPELINE = "crashy"
PHASES = ("extract", "normalize", "load")
LOAD_COMMIT_GAP = 0.3  # seconds a load campaign's jobs wait between commit and dlt's record of it


# The CLI's `main` with dlt's marker write delayed: dlt commits a load job's rows, then records
# that in `.pending_transitions`; a kill in between makes the next load run the job again
# (pipelines/resume.py). That gap lasts milliseconds, so a seeded kill would almost never land in it:
# the wrapper holds each job there for `gap` seconds with a sentinel file in `gap_dir`, and the
# harness kills while one exists. The data path is untouched; only dlt's note comes later.
WIDE_COMMIT_GAP = """
import sys, time
from pathlib import Path
from dlt.common.storages.load_package import PackageStorage
save = PackageStorage.save_pending_transition
def slow_save(self, load_id, file_name, *args, **kwargs):
    sentinel = Path({gap_dir!r}) / file_name
    sentinel.touch()
    time.sleep({gap})
    save(self, load_id, file_name, *args, **kwargs)
    sentinel.unlink(missing_ok=True)
PackageStorage.save_pending_transition = slow_save
from intercom_elt.pipelines.cli import main
sys.exit(main(sys.argv[1:]))
"""


class CliRunner:
    """Starts `python -m intercom_elt.pipelines.cli run` against the emulator, into the test's target.

    `commit_gap` (seconds) widens dlt's gap between a load job's commit and its record of it.
    """

    def __init__(self, emu: EmulatorServer, target: Target, workdir: Path, commit_gap: float = 0.0) -> None:
        self.emu = emu
        self.target = target
        self.workdir = workdir
        self.commit_gap = commit_gap
        self.pipelines_dir = workdir / "pipelines"
        self.last_requests = 150  # API requests of the last run that finished on its own
        self.gap_kills = 0  # kills that landed while a job was in the (widened) commit gap
        self.env = subprocess_env({"INTERCOM_ACCESS_TOKEN": TOKEN, "PYTHONPATH": str(REPO), **target.env})

    @property
    def gap_dir(self) -> Path:
        return self.workdir / "in_commit_gap"

    def in_commit_gap(self) -> bool:
        """A load job's rows are committed and dlt has not recorded it yet (needs `commit_gap`)."""
        return self.gap_dir.is_dir() and any(self.gap_dir.iterdir())

    def argv(self) -> list[str]:
        wrapper = WIDE_COMMIT_GAP.format(gap=self.commit_gap, gap_dir=str(self.gap_dir))
        cli = ["-c", wrapper] if self.commit_gap else ["-m", "intercom_elt.pipelines.cli"]
        return [
            sys.executable, *cli, "run",
            "--base-url", self.emu.base_url,
            "--pipelines-dir", str(self.pipelines_dir),
            "--pipeline-name", PIPELINE,
            "--no-progress",
            *self.target.cli_args,
        ]

    def start(self) -> subprocess.Popen[str]:
        shutil.rmtree(self.gap_dir, ignore_errors=True)  # sentinels a killed run left behind
        self.gap_dir.mkdir(parents=True)
        return subprocess.Popen(
            self.argv(), cwd=self.workdir, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def run_to_completion(self, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        shutil.rmtree(self.gap_dir, ignore_errors=True)
        self.gap_dir.mkdir(parents=True)
        return subprocess.run(self.argv(), cwd=self.workdir, env=self.env, capture_output=True, text=True, timeout=timeout)

    def phase(self) -> str:
        """Where a run is now, read from dlt's package folders (new packages only)."""
        root = self.pipelines_dir / PIPELINE
        if _has_pkg(root / "load" / "normalized"):
            return "load"
        if _has_pkg(root / "normalize" / "extracted") or _has_pkg(root / "load" / "new"):
            return "normalize"
        return "extract"


def _has_pkg(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_dir() for p in folder.iterdir())


def _mutate(emu: EmulatorServer, rng: random.Random) -> None:
    ws = emu.workspace
    ws.clock.advance(rng.randint(5, 120))
    contacts = ws.ids("contacts")
    ws.update_contact(rng.choice(contacts), name=f"Crash Rename {rng.randint(0, 10**6)}")
    ws.create_contact(role="user", email=f"p{rng.randint(0, 10**6)}@example.com", name="Created Between Kills")
    convs = ws.ids("conversations")
    ws.add_conversation_part(rng.choice(convs), author_type="user", body="written between two crashes")
    ws.update_company(rng.choice(ws.ids("companies")), name=f"Co {rng.randint(0, 10**6)}")
    ws.add_activity_log()


def _kill_at(runner: CliRunner, rng: random.Random, want: str) -> str | None:
    """Start a run and SIGKILL it in phase `want` at a seeded moment; the phase hit, or None.

    A run that resumes a package left by an earlier kill first loads it ("load" phase); the
    extract kill is armed only once that package is gone, and then after a seeded number of API
    requests (only extract sends any), so every phase gets its share. With a widened commit gap,
    a seeded coin arms half the load kills instead while a job sits between its commit and dlt's
    record of it (leftover packages included); the others in the first 50 ms of the load step.
    A kill that would land past its wanted phase is not made: the run finishes instead.
    """
    leftover = set(pending_packages(runner.pipelines_dir, PIPELINE))
    runner.emu.reset_log()
    proc = runner.start()
    t0 = time.monotonic()
    # only extract talks to Intercom: killing after the N-th API request lands inside it; an
    # incremental run makes far fewer requests than the first load, so stay below what the last
    # complete run made (otherwise the run ends before the kill and the attempt is wasted)
    extract_after = rng.randint(3, max(4, min(150, runner.last_requests - 2)))
    # an incremental load step of the tiny workspace lasts about 0.1 s: a longer tail let half the
    # load kills land after it (counted then as "extract", and the campaign missed its load kills)
    tail = rng.uniform(0.0, 0.05 if want == "load" else 0.04)
    in_gap = want == "load" and runner.commit_gap > 0 and rng.random() < 0.5
    armed_at: float | None = None
    resumed_at: float | None = None if leftover else t0
    try:
        while proc.poll() is None:
            now = time.monotonic()
            phase = runner.phase()
            if resumed_at is None and not leftover & set(pending_packages(runner.pipelines_dir, PIPELINE)):
                resumed_at = now
            if armed_at is None and in_gap:
                if runner.in_commit_gap():
                    armed_at = now
                    tail = min(tail, runner.commit_gap / 2)  # still inside the gap when the kill lands
            elif armed_at is None and resumed_at is not None:
                if want == "extract":
                    due = sum(runner.emu.request_log.values()) >= extract_after
                else:  # in the wanted phase, or past it (overshot: kill as soon as possible)
                    due = PHASES.index(phase) >= PHASES.index(want)
                if due:
                    armed_at = now
            if armed_at is not None and now - armed_at >= tail:
                hit = runner.phase()
                if hit != want:
                    armed_at = float("inf")  # moved past the wanted phase: let this run finish
                    continue
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
                runner.gap_kills += runner.in_commit_gap()
                return hit
            if now - t0 > 90:
                raise AssertionError("sync did not finish nor reach the wanted phase in 90 s")
            time.sleep(0.002)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, f"a run that finished on its own failed: {err[-3000:]}"
        runner.last_requests = sum(runner.emu.request_log.values())
        return None  # finished before the kill
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def _crash_campaign(
    emu: EmulatorServer, target: Target, tmp_path: Path, kills: int, seed: int, phases: tuple[str, ...] = PHASES,
    commit_gap: float = 0.0, mutate_every: int = 4,
) -> Counter[str]:
    runner = CliRunner(emu, target, tmp_path, commit_gap=commit_gap)
    wh = target.warehouse
    rng = random.Random(seed)
    hit: Counter[str] = Counter()
    attempts = 0
    while sum(hit.values()) < kills:
        attempts += 1
        assert attempts < kills * 3, f"could not place the kills: {hit}"
        want = phases[attempts % len(phases)]
        phase = _kill_at(runner, rng, want)
        if phase is None:
            log.info("run finished before the %s kill", want)
            assert_matches_ground_truth(wh, emu.workspace)
        else:
            hit[phase] += 1
            log.info("kill %d in %s (wanted %s); pending %s", sum(hit.values()), phase, want,
                     pending_packages(runner.pipelines_dir, PIPELINE))
        assert_cursors_not_past_loaded(wh, runner.pipelines_dir, PIPELINE)
        if attempts % mutate_every == 0:
            _mutate(emu, rng)
        if attempts % 7 == 0:  # a full run in between: the warehouse must be exact right then
            done = runner.run_to_completion()
            assert done.returncode == 0, done.stderr[-3000:]
            assert_matches_ground_truth(wh, emu.workspace)
    _mutate(emu, rng)
    done = runner.run_to_completion()
    assert done.returncode == 0, done.stderr[-3000:]
    assert_cursors_not_past_loaded(wh, runner.pipelines_dir, PIPELINE)
    assert_matches_ground_truth(wh, emu.workspace)
    assert not pending_packages(runner.pipelines_dir, PIPELINE)
    hit["commit gap"] = runner.gap_kills  # of the load kills (counted apart from the phases)
    log.info("kills per phase: %s", dict(hit))
    return hit


@pytest.fixture
def slow_emu() -> EmulatorServer:
    """Tiny workspace with a little latency so a run lasts long enough to be killed mid-flight.

    A run killed mid-scroll leaves the workspace's one companies scroll open: the next run waits
    for it to expire. A 2-second idle timeout instead of Intercom's 60 keeps that wait (the
    behaviour under test) without spending a minute on it.
    """
    with EmulatorServer(profile="tiny", seed=5, faults={"latency_ms": 4}, scroll_idle_timeout=2.0) as server:
        yield server


def _duckdb_target(tmp_path: Path) -> Target:
    from tests.resilience.conftest import DATASET, Warehouse

    path = tmp_path / "warehouse.duckdb"
    return Target("duckdb", DATASET, Warehouse("duckdb", DATASET, duckdb_path=path), None, {}, ["--duckdb-path", str(path)])


def test_sigkill_20_times_duckdb(slow_emu: EmulatorServer, tmp_path: Path) -> None:
    """20 seeded SIGKILLs in extract and normalize on DuckDB, mutations in between."""
    hit = _crash_campaign(slow_emu, _duckdb_target(tmp_path), tmp_path, kills=20, seed=20240601,
                          phases=("extract", "normalize"))
    assert hit["extract"] >= 5 and hit["normalize"] >= 5, hit


def test_sigkill_during_load_duckdb(slow_emu: EmulatorServer, tmp_path: Path) -> None:
    """SIGKILLs aimed at DuckDB's load step, half of them between a job's commit and dlt's record of it
    (rows committed, job re-run on resume): no row twice, equal to ground truth."""
    hit = _crash_campaign(slow_emu, _duckdb_target(tmp_path), tmp_path, kills=8, seed=20240602, phases=("load",),
                          commit_gap=LOAD_COMMIT_GAP, mutate_every=1)
    assert hit["load"] >= 6 and hit["commit gap"] >= 2, hit


def _postgres_target() -> Target:
    import uuid

    from tests.conftest import POSTGRES_DSN
    from tests.resilience.conftest import Warehouse

    dataset = f"crash_{uuid.uuid4().hex[:10]}"
    return Target(
        "postgres", dataset, Warehouse("postgres", dataset, dsn=POSTGRES_DSN), None,
        {"DESTINATION__POSTGRES__CREDENTIALS": POSTGRES_DSN}, ["--destination", "postgres", "--dataset", dataset],
    )


@pytest.mark.postgres
def test_sigkill_postgres(slow_emu: EmulatorServer, tmp_path: Path) -> None:
    """The same campaign, shorter, into Postgres (transactions and staging schema differ)."""
    from tests.conftest import POSTGRES_DSN, drop_schemas

    target = _postgres_target()
    try:
        hit = _crash_campaign(slow_emu, target, tmp_path, kills=6, seed=7)
        assert all(hit[p] >= 1 for p in PHASES), hit
    finally:
        drop_schemas(POSTGRES_DSN, target.dataset, f"{target.dataset}_staging")


@pytest.mark.postgres
def test_sigkill_during_load_postgres(slow_emu: EmulatorServer, tmp_path: Path) -> None:
    """The load-step campaign into Postgres: the resume code is shared, the staging schema is not."""
    from tests.conftest import POSTGRES_DSN, drop_schemas

    target = _postgres_target()
    try:
        hit = _crash_campaign(slow_emu, target, tmp_path, kills=6, seed=20240603, phases=("load",),
                              commit_gap=LOAD_COMMIT_GAP, mutate_every=1)
        assert hit["load"] >= 4 and hit["commit gap"] >= 2, hit
    finally:
        drop_schemas(POSTGRES_DSN, target.dataset, f"{target.dataset}_staging")


def test_concurrent_run_is_refused(tmp_path: Path) -> None:
    """A second sync of the same pipeline while one runs exits non-zero with a clear message."""
    from tests.resilience.conftest import DATASET, Warehouse

    # slow answers keep the first run busy while the second one starts; no fixed sleep: the
    # second starts once the first holds the pipeline lock, and the first speeds up afterwards
    with EmulatorServer(profile="tiny", seed=5, faults={"latency_ms": 60}) as emu:
        path = tmp_path / "warehouse.duckdb"
        target = Target("duckdb", DATASET, Warehouse("duckdb", DATASET, duckdb_path=path), None, {}, ["--duckdb-path", str(path)])
        runner = CliRunner(emu, target, tmp_path)
        lock = runner.pipelines_dir / f".{PIPELINE}.lock"
        first = runner.start()
        try:
            assert wait_until(lambda: lock.is_file() and lock.read_text().strip() != "", 60), "the first run never locked"
            assert first.poll() is None, "the first run ended too early to test concurrency"
            second = runner.run_to_completion(timeout=60)
            assert first.poll() is None, "the second run should have been refused while the first ran"
            emu.configure(faults={"latency_ms": 0})
        finally:
            out, err = first.communicate(timeout=120)
        assert first.returncode == 0, err[-3000:]
        assert second.returncode != 0, "a concurrent second run was allowed"
        lines = [x for x in second.stderr.strip().splitlines() if x.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), second.stderr
        assert "already running" in lines[0] or "another" in lines[0], lines[0]
        assert_matches_ground_truth(target.warehouse, emu.workspace)


def test_extracted_package_already_normalized_is_dropped(tmp_path: Path) -> None:
    """A kill between normalize's hand-over and its clean-up leaves the package twice; only the
    normalized copy may stay, or every later normalize fails on the existing target folder."""
    from intercom_elt.pipelines.resume import drop_stale_extracted_packages

    for folder in ("normalize/extracted/111", "load/new/111", "load/normalized/111", "normalize/extracted/222"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "job.parquet").write_text("x")
    assert drop_stale_extracted_packages(tmp_path) == ["111"]
    assert not (tmp_path / "normalize/extracted/111").exists()
    assert not (tmp_path / "load/new/111").exists()
    assert (tmp_path / "load/normalized/111/job.parquet").is_file()
    assert (tmp_path / "normalize/extracted/222/job.parquet").is_file()  # not normalized yet: kept

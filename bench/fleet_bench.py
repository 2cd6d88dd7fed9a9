"""Benchmark: a fleet of small workspaces synced one by one, with `run --all --parallel N`, and under Dagster.

Intercom's quota is per app and workspace, so workspaces scale out side by side; what limits a fleet
on one machine is CPU and memory. This starts COUNT emulator processes (one workspace each, its own
port, token, latency and quota), writes a throwaway `workspaces.toml` (token_env per workspace),
and measures, each from empty destinations:

* single: `intercom-sync run --workspace NAME` for every workspace, one after the other (the sum);
* all-N: `intercom-sync run --all --parallel N` for each N of --parallel;
* dagster-N: every workspace's assets of `intercom_elt.pipelines.dagster_defs.build_definitions`
  materialized by bench/fleet_dagster.py, one Dagster run per workspace (what a run launcher does),
  at most N at once; dagster-job-N: one run of all assets on the multiprocess executor.

Per measurement: wall time, CPU seconds of the whole process tree (user+sys from wait4) and of the
emulators, peak RSS of the largest process (wait4) and of the whole tree at once (polling /proc),
requests and 429 answers (the emulators' request logs). After every measurement each workspace's
tables are compared with its emulator's ground truth (ids per stream); one wrong row fails the
bench with the workspace and table named.

    python bench/fleet_bench.py                                   # 20 workspaces, N = 1,4,8,20, 3 rounds
    python bench/fleet_bench.py --count 5 --runs 1 --parallel 4   # quick
    python bench/fleet_bench.py --scenarios dagster --dagster-parallel 4,8
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import httpx

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.run_bench import DEFAULT_PG, cpu_check_ms  # noqa: E402
from intercom_emulator.testing import EmulatorProcess  # noqa: E402

SCENARIOS = ("single", "all", "dagster", "dagster-job")
# every stream a default run reads, and the key that identifies a row of it in the ground truth
TRUTH_KEYS: dict[str, tuple[str, ...]] = {
    "contacts": ("id",), "companies": ("id",), "conversations": ("id",), "conversation_parts": ("id",),
    "admins": ("id",), "tags": ("id",), "teams": ("id",), "segments": ("id",), "activity_logs": ("id",),
    "tickets": ("id",), "ticket_parts": ("id",), "data_attributes": ("model", "full_name"),
}
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024


class BenchFailure(SystemExit):
    """A run failed or a workspace landed wrong rows: the bench stops and says which."""


# ----------------------------------------------------------------------------- the fleet
@dataclass
class Member:
    """One workspace: its emulator process, token and where it lands."""

    name: str
    emulator: EmulatorProcess
    token: str
    dataset: str
    duckdb_path: Path | None
    truth: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)

    @property
    def token_env(self) -> str:
        return f"FLEET_{self.name.upper()}_TOKEN"


@dataclass
class Fleet:
    members: list[Member]
    workdir: Path
    destination: str
    pg_url: str

    @property
    def registry(self) -> Path:
        return self.workdir / "workspaces.toml"

    @property
    def pipelines_dir(self) -> Path:
        return self.workdir / "pipelines"

    def env(self) -> dict[str, str]:
        """The children's environment: every workspace's token, dlt's and Dagster's homes in workdir."""
        env = {k: v for k, v in os.environ.items() if k != "INTERCOM_ACCESS_TOKEN"}
        env.update({m.token_env: m.token for m in self.members})
        env["RUNTIME__DLTHUB_TELEMETRY"] = "false"
        env["DLT_DATA_DIR"] = str(self.workdir / "dlt")  # where a run without --pipelines-dir keeps state
        env["DAGSTER_HOME"] = str(self.workdir / "dagster_home")
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        if self.destination == "postgres":
            env["DESTINATION__POSTGRES__CREDENTIALS"] = self.pg_url
        return env


def _control(emu: EmulatorProcess, method: str, path: str, payload: object = None) -> httpx.Response:
    resp = httpx.request(method, f"{emu.base_url}/_emulator/{path}", json=payload, timeout=60)
    resp.raise_for_status()
    return resp


def _truth(emu: EmulatorProcess) -> dict[str, set[tuple[str, ...]]]:
    truth = {}
    for stream, key in TRUTH_KEYS.items():
        rows = [json.loads(line) for line in _control(emu, "GET", f"ground_truth/{stream}").text.splitlines() if line]
        truth[stream] = {tuple(str(r[k]) for k in key) for r in rows}
    return truth


def _start_member(args: argparse.Namespace, index: int, workdir: Path) -> Member:
    name = f"ws{index + 1:02d}"
    token = f"fleet-{name}-{secrets.token_hex(8)}"
    emu = EmulatorProcess(profile=args.profile, seed=args.seed + index, args=[
        "--scale", str(args.scale), "--latency-ms", str(args.latency_ms),
        "--latency-jitter-ms", str(args.jitter_ms), "--rate-limit-per-minute", str(args.quota),
        "--workspace-rate-limit-per-minute", str(args.workspace_quota), "--token", token,
        "--log-level", "WARNING",
    ])
    emu.token = token
    emu.start(timeout=300)
    member = Member(
        name=name, emulator=emu, token=token,
        dataset=f"fleetbench_{name}" if args.destination == "postgres" else f"intercom_{name}",
        duckdb_path=workdir / "db" / f"{name}.duckdb" if args.destination == "duckdb" else None,
    )
    member.truth = _truth(emu)
    return member


@contextmanager
def fleet(args: argparse.Namespace, workdir: Path) -> Iterator[Fleet]:
    """COUNT emulator processes (started a few at a time) and the registry that names them."""
    members: list[Member] = []
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            for future in [pool.submit(_start_member, args, i, workdir) for i in range(args.count)]:
                members.append(future.result())
        the_fleet = Fleet(members, workdir, args.destination, args.pg_url)
        write_registry(the_fleet)
        yield the_fleet
    finally:
        for m in members:
            m.emulator.stop()


def write_registry(the_fleet: Fleet) -> None:
    blocks = []
    for m in the_fleet.members:
        lines = [
            f"[workspaces.{m.name}]", f'base_url = "{m.emulator.base_url}"', f'token_env = "{m.token_env}"',
            f'destination = "{the_fleet.destination}"', f'dataset = "{m.dataset}"',
        ]
        if m.duckdb_path is not None:
            lines.append(f'duckdb_path = "{m.duckdb_path}"')
        blocks.append("\n".join(lines))
    the_fleet.registry.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")


def reset(the_fleet: Fleet) -> None:
    """Empty destinations, no pipeline state, zeroed request logs and fresh rate-limit windows."""
    for sub in ("db", "pipelines", "dlt", "dagster_home"):
        shutil.rmtree(the_fleet.workdir / sub, ignore_errors=True)
    (the_fleet.workdir / "db").mkdir()
    (the_fleet.workdir / "dagster_home").mkdir()
    if the_fleet.destination == "postgres":
        import psycopg2

        with psycopg2.connect(the_fleet.pg_url) as conn, conn.cursor() as cur:
            cur.execute("select schema_name from information_schema.schemata where schema_name like 'fleetbench\\_%'")
            for (schema,) in cur.fetchall():
                cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    for m in the_fleet.members:
        quota = _control(m.emulator, "GET", "config").json()["rate_limit_per_minute"]
        _control(m.emulator, "POST", "config", {"rate_limit_per_minute": quota})  # restarts the window
        _control(m.emulator, "POST", "requests/reset")


def traffic(the_fleet: Fleet) -> tuple[int, int]:
    """(requests, 429 answers) summed over every emulator since the last reset."""
    total = limited = 0
    for m in the_fleet.members:
        log = _control(m.emulator, "GET", "requests").json()
        total += int(log["total"])
        limited += int(log["statuses"].get("429", 0))
    return total, limited


def _landed(the_fleet: Fleet, member: Member, stream: str) -> set[tuple[str, ...]]:
    columns = ", ".join(TRUTH_KEYS[stream])
    sql = f"select {columns} from {member.dataset}.{stream}"
    if the_fleet.destination == "duckdb":
        import duckdb

        with duckdb.connect(str(member.duckdb_path), read_only=True) as con:
            rows = con.execute(sql).fetchall()
    else:
        import psycopg2

        with psycopg2.connect(the_fleet.pg_url) as conn, conn.cursor() as cur:
            cur.execute(sql)
            rows = cur.fetchall()
    keys = [tuple(str(v) for v in r) for r in rows]
    if len(keys) != len(set(keys)):
        return set(keys) | {("<duplicate rows>",)}
    return set(keys)


def verify(the_fleet: Fleet, label: str) -> int:
    """Every workspace's tables hold exactly its emulator's ground truth; returns the rows checked."""
    problems, checked = [], 0
    for m in the_fleet.members:
        for stream, expected in m.truth.items():
            try:
                got = _landed(the_fleet, m, stream)
            except Exception as exc:  # noqa: BLE001 - a missing table is a wrong landing, named below
                problems.append(f"{m.name}.{stream}: cannot read ({type(exc).__name__}: {str(exc).splitlines()[0]})")
                continue
            checked += len(got)
            if got != expected:
                problems.append(f"{m.name}.{stream}: {len(got)} rows landed, ground truth {len(expected)} "
                                f"({len(expected - got)} missing, {len(got - expected)} unexpected)")
    if problems:
        raise BenchFailure(f"{label}: WRONG ROWS in {len(problems)} table(s):\n  " + "\n  ".join(problems))
    return checked


# ----------------------------------------------------------------------------- measuring a process tree
def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = defaultdict(list)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        kids[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry.name))
    return kids


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def cpu_seconds(pid: int) -> float:
    """user+sys seconds a live process has used so far (its own, not its children's)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _sockets_to_port(port: int) -> set[str]:
    """Inodes of the established TCP sockets whose far end is `port` (this network namespace)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "01" and int(cols[2].rsplit(":", 1)[1], 16) == port:
                inodes.add(cols[9])
    return inodes


def _open_sockets(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in os.scandir(f"/proc/{pid}/fd"):
            target = os.readlink(fd.path)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


class TreeSampler(threading.Thread):
    """Polls /proc: the largest sum of RSS over a process and its descendants at one moment, and the
    most connections they held at once to the Postgres port (the warehouse's connection budget)."""

    def __init__(self, root: int, interval: float = 0.2, pg_port: int | None = None) -> None:
        super().__init__(daemon=True)
        self.root, self.interval, self.pg_port = root, interval, pg_port
        self.peak_bytes = 0
        self.peak_processes = 0
        self.peak_pg_connections = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            kids, stack, total, pids = _children(), [self.root], 0, []
            while stack:
                pid = stack.pop()
                total += _rss(pid)
                pids.append(pid)
                stack.extend(kids.get(pid, ()))
            self.peak_bytes = max(self.peak_bytes, total)
            self.peak_processes = max(self.peak_processes, len(pids))
            if self.pg_port is not None:
                to_pg = _sockets_to_port(self.pg_port)
                held = sum(len(_open_sockets(pid) & to_pg) for pid in pids)
                self.peak_pg_connections = max(self.peak_pg_connections, held)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


@dataclass
class Measured:
    """One command: its wall time and what its whole process tree used."""

    wall_s: float
    cpu_s: float  # user+sys of the process and every descendant it waited for
    max_rss_mb: float  # the largest single process of the tree
    tree_peak_mb: float  # the whole tree at its fullest moment (sampled every 0.2 s)
    tree_peak_processes: int
    exit_code: int
    log: str
    peak_pg_connections: int = 0


def run_measured(cmd: list[str], env: dict[str, str], cwd: Path, log_path: Path, pg_port: int | None) -> Measured:
    with open(log_path, "w", encoding="utf-8") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid, pg_port=pg_port)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop()
    return Measured(
        wall_s=wall, cpu_s=usage.ru_utime + usage.ru_stime, max_rss_mb=usage.ru_maxrss / 1024,
        tree_peak_mb=sampler.peak_bytes / MB, tree_peak_processes=sampler.peak_processes,
        exit_code=proc.returncode, log=str(log_path), peak_pg_connections=sampler.peak_pg_connections,
    )


def _fail_run(label: str, m: Measured) -> BenchFailure:
    tail = Path(m.log).read_text(encoding="utf-8", errors="replace").splitlines()[-30:]
    return BenchFailure(f"{label}: exit {m.exit_code} (log {m.log}):\n" + "\n".join(tail))


# ----------------------------------------------------------------------------- the scenarios
@dataclass
class Result:
    """One scenario in one round, all workspaces."""

    scenario: str
    round: int
    wall_s: float
    cpu_s: float
    emulator_cpu_s: float
    max_rss_mb: float
    tree_peak_mb: float
    tree_peak_processes: int
    requests: int
    rate_limited: int
    rows_checked: int
    peak_pg_connections: int = 0
    per_workspace_wall_s: dict[str, float] = field(default_factory=dict)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "intercom_elt.pipelines.cli", *args]


def measure(the_fleet: Fleet, scenario: str, round_: int) -> Result:
    """Reset, run one scenario over the whole fleet, check every workspace's rows."""
    reset(the_fleet)
    env, wd = the_fleet.env(), the_fleet.workdir
    logs = wd / "logs"
    logs.mkdir(exist_ok=True)
    common = ["--registry", str(the_fleet.registry), "--pipelines-dir", str(the_fleet.pipelines_dir), "--no-progress"]
    pg_port = (urlsplit(the_fleet.pg_url).port or 5432) if the_fleet.destination == "postgres" else None
    emu_cpu_before = sum(cpu_seconds(m.emulator.proc.pid) for m in the_fleet.members if m.emulator.proc)
    per_ws: dict[str, float] = {}
    if scenario == "single":
        runs = []
        for m in the_fleet.members:
            done = run_measured(_cli("run", "--workspace", m.name, *common), env, wd, logs / f"single-{m.name}.log", pg_port)
            if done.exit_code != 0:
                raise _fail_run(f"single {m.name}", done)
            runs.append(done)
            per_ws[m.name] = round(done.wall_s, 2)
        total = Measured(
            wall_s=sum(r.wall_s for r in runs), cpu_s=sum(r.cpu_s for r in runs),
            max_rss_mb=max(r.max_rss_mb for r in runs), tree_peak_mb=max(r.tree_peak_mb for r in runs),
            tree_peak_processes=max(r.tree_peak_processes for r in runs), exit_code=0, log=str(logs),
            peak_pg_connections=max(r.peak_pg_connections for r in runs),
        )
    else:
        kind, n = scenario.rsplit("-", 1)
        if kind == "all":
            cmd = _cli("run", "--all", "--parallel", n, *common)
        else:
            mode = "job" if kind == "dagster-job" else "per-workspace"
            cmd = [sys.executable, "-m", "bench.fleet_dagster", "--registry", str(the_fleet.registry),
                   "--mode", mode, "--parallel", n]
        total = run_measured(cmd, env, wd, logs / f"{scenario}-r{round_}.log", pg_port)
        if total.exit_code != 0:
            raise _fail_run(scenario, total)
        if kind == "all":
            _check_summary(the_fleet, total)
    emu_cpu = sum(cpu_seconds(m.emulator.proc.pid) for m in the_fleet.members if m.emulator.proc) - emu_cpu_before
    requests, limited = traffic(the_fleet)
    checked = verify(the_fleet, f"{scenario} round {round_}")
    return Result(
        scenario=scenario, round=round_, wall_s=total.wall_s, cpu_s=total.cpu_s, emulator_cpu_s=emu_cpu,
        max_rss_mb=total.max_rss_mb, tree_peak_mb=total.tree_peak_mb,
        tree_peak_processes=total.tree_peak_processes, requests=requests, rate_limited=limited,
        rows_checked=checked, peak_pg_connections=total.peak_pg_connections, per_workspace_wall_s=per_ws,
    )


def _check_summary(the_fleet: Fleet, done: Measured) -> None:
    """`--all` ends with one `NAME: ok` line per workspace, and no token in its output."""
    text = Path(done.log).read_text(encoding="utf-8")
    summary = text.split("== summary", 1)[-1]
    missing = [m.name for m in the_fleet.members if f"\n{m.name}: ok" not in summary]
    leaked = [m.name for m in the_fleet.members if m.token in text]
    if missing or leaked:
        raise BenchFailure(f"--all summary: not ok {missing}, token printed {leaked} (log {done.log})")


# ----------------------------------------------------------------------------- reporting
def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(results: list[Result], scenarios: list[str]) -> list[str]:
    """One markdown row per scenario: medians over rounds."""
    single = [r.wall_s for r in results if r.scenario == "single"]
    base = med(single) if single else float("nan")
    pg = any(r.peak_pg_connections for r in results)
    lines = [
        "| how | wall s (median) | wall / sum(single) | CPU s (sync tree) | CPU s (emulators) | "
        "peak RSS, whole tree at once | largest process | requests | 429 | rows checked |"
        + (" Postgres connections at once |" if pg else ""),
        "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if pg else ""),
    ]
    for scenario in scenarios:
        rs = [r for r in results if r.scenario == scenario]
        if not rs:
            continue
        walls = ", ".join(f"{r.wall_s:.1f}" for r in rs)
        ratio = med([r.wall_s for r in rs]) / base if base == base else float("nan")
        name = "sum of single runs" if scenario == "single" else scenario
        lines.append(
            f"| {name} | {med([r.wall_s for r in rs]):.1f} ({walls}) | {ratio:.2f} | {med([r.cpu_s for r in rs]):.1f} | "
            f"{med([r.emulator_cpu_s for r in rs]):.1f} | {med([r.tree_peak_mb for r in rs]):.0f} MB "
            f"({max(r.tree_peak_processes for r in rs)} processes) | {med([r.max_rss_mb for r in rs]):.0f} MB | "
            f"{med([float(r.requests) for r in rs]):.0f} | {max(r.rate_limited for r in rs)} | {rs[-1].rows_checked:,} |"
            + (f" {max(r.peak_pg_connections for r in rs)} |" if pg else "")
        )
    return lines


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=20, help="workspaces (one emulator process each)")
    p.add_argument("--profile", default="tiny", choices=("tiny", "demo", "bench"))
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=11, help="workspace i gets seed + i")
    p.add_argument("--latency-ms", type=float, default=75.0)
    p.add_argument("--jitter-ms", type=float, default=25.0)
    p.add_argument("--quota", type=int, default=10_000, help="per-app calls per minute, per workspace")
    p.add_argument("--workspace-quota", type=int, default=25_000)
    p.add_argument("--destination", default="duckdb", choices=("duckdb", "postgres"))
    p.add_argument("--pg-url", default=DEFAULT_PG)
    p.add_argument("--scenarios", default="single,all,dagster", help=f"comma list of {', '.join(SCENARIOS)}")
    p.add_argument("--parallel", default="1,4,8,20", help="N for run --all --parallel N")
    p.add_argument("--dagster-parallel", default="4,8", help="N concurrent Dagster runs (or steps, dagster-job)")
    p.add_argument("--runs", type=int, default=3, help="rounds; medians are printed")
    p.add_argument("--tmp", default=None, help="work directory (default: a fresh temporary one, removed)")
    p.add_argument("--json-out", default=None)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    wanted = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(wanted) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    scenarios = [s for s in ("single",) if s in wanted]
    scenarios += [f"all-{n}" for n in _ints(args.parallel)] if "all" in wanted else []
    scenarios += [f"dagster-{n}" for n in _ints(args.dagster_parallel)] if "dagster" in wanted else []
    scenarios += [f"dagster-job-{n}" for n in _ints(args.dagster_parallel)] if "dagster-job" in wanted else []
    meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average": os.getloadavg(),
        "command": " ".join(["fleet_bench.py", *(argv if argv is not None else sys.argv[1:])]),
        "cpu_check_ms": round(cpu_check_ms(), 1),
    }
    print(f"# {meta['date']} {meta['machine']}; load {meta['load_average'][0]:.1f}; CPU check {meta['cpu_check_ms']} ms",
          flush=True)
    workdir = Path(args.tmp) if args.tmp else Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    try:
        started = time.perf_counter()
        with fleet(args, workdir) as the_fleet:
            print(f"# {args.count} emulators ({args.profile} x{args.scale}, {args.latency_ms:g}+-{args.jitter_ms:g} ms, "
                  f"{args.quota}/min per app) up in {time.perf_counter() - started:.1f} s; {args.destination}; "
                  f"work dir {workdir}", flush=True)
            for round_ in range(1, args.runs + 1):
                for scenario in scenarios:
                    r = measure(the_fleet, scenario, round_)
                    results.append(r)
                    print(f"round {round_} {scenario}: wall {r.wall_s:.1f} s, CPU {r.cpu_s:.1f} s "
                          f"(emulators {r.emulator_cpu_s:.1f} s), peak tree {r.tree_peak_mb:.0f} MB / "
                          f"{r.tree_peak_processes} processes, largest {r.max_rss_mb:.0f} MB, "
                          f"{r.requests} requests, {r.rate_limited} x 429, {r.rows_checked:,} rows exact"
                          + (f", {r.peak_pg_connections} Postgres connections at once" if r.peak_pg_connections else "")
                          + "; "
                          f"load {os.getloadavg()[0]:.1f}", flush=True)
        print("\n".join(["", *table(results, scenarios)]))
    finally:
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(
                {"meta": meta, "args": vars(args), "results": [asdict(r) for r in results]}, indent=2))
        if not args.tmp:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`workspaces list|check` and `run --workspace NAME | --all`: the registry's workspaces, each alone.

Each workspace syncs in its own `python -m intercom_elt.pipelines.cli run ...` process with its own
token in the environment, so cursors, dataset, memory and failures stay apart and the single-run
path (lock, resume, run history) is the one that runs. One failure never stops the others.
`run --workspace` becomes that process (exec): no second interpreter, and a scheduler's SIGTERM
reaches the sync itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from intercom_elt.pipelines import config, errors, preflight, registry
from intercom_elt.pipelines.registry import Workspace

# which failure decides `--all`'s exit status, most urgent first: a token to fix beats a destination
# down, beats Intercom unreachable, beats a bad setting, beats an unexpected crash, beats --strict
# rejects. Any other code (a signal, 130) counts as 1.
EXIT_PRIORITY = (
    errors.EXIT_AUTH, errors.EXIT_DESTINATION, errors.EXIT_NETWORK, errors.EXIT_USAGE,
    errors.EXIT_FAILURE, errors.EXIT_REJECTS,
)


def fleet_exit_code(codes: Sequence[int]) -> int:
    """0 when every workspace succeeded, else the most urgent failure's code (EXIT_PRIORITY)."""
    failed = {c if c in EXIT_PRIORITY else errors.EXIT_FAILURE for c in codes if c != errors.EXIT_OK}
    return next((c for c in EXIT_PRIORITY if c in failed), errors.EXIT_OK)


def list_workspaces(workspaces: dict[str, Workspace]) -> int:
    """One line per workspace: where it reads, where it writes, when, and where its token comes from."""
    for ws in workspaces.values():
        target = f"{ws.destination}:{ws.dataset}" + (f" ({ws.duckdb_path})" if ws.duckdb_path else "")
        print(
            f"{ws.name}: {ws.where}  ->  {target}  pipeline {ws.pipeline_name}  "
            f"schedule {ws.schedule or '-'}  token from {ws.token_source}"
        )
    return errors.EXIT_OK


def check_workspaces(
    workspaces: dict[str, Workspace], path: str | Path, redact: Callable[[list[str]], None]
) -> int:
    """Per workspace what its token may read (the `check` preflight); a failing one (a token not yet
    in place among them) does not stop the rest. `redact` keeps each token out of the logs."""
    codes = []
    for ws in workspaces.values():
        try:
            ws = registry.with_token(ws, path)
            redact([ws.token])
            settings = config.resolve_source_settings(
                access_token=ws.token, region=ws.region, base_url=ws.base_url, intercom_version=ws.intercom_version
            )
            report = preflight.check_workspace(settings)
        except errors.UserError as exc:
            print(f"{ws.name}: error: {str(exc).replace(ws.token, '***') if ws.token else exc}")
            codes.append(exc.exit_code)
            continue
        allowed = [s for s, ok in report.allowed.items() if ok]
        denied = [
            s + (f" (needs {report.missing[s]})" if report.missing.get(s) else "")
            for s, ok in report.allowed.items() if not ok
        ]
        app = report.app
        print(f"{ws.name}: workspace {app.get('name', '?')} (id_code {app.get('id_code', '?')})")
        print(f"{ws.name}: allowed ({len(allowed)}): {', '.join(allowed) or 'none'}")
        if denied:
            print(f"{ws.name}: not allowed: {', '.join(denied)}")
        codes.append(errors.EXIT_OK)
    return fleet_exit_code(codes)


@dataclass
class Outcome:
    name: str
    exit_code: int
    error: str | None  # the child's last "error: ..." line
    seconds: float


def _command(ws: Workspace, passthrough: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "intercom_elt.pipelines.cli", "run", *ws.run_args(), *passthrough]


def _env(ws: Workspace) -> dict[str, str]:
    return {**os.environ, config.TOKEN_ENV: ws.token}


def run_one(ws: Workspace, passthrough: Sequence[str]) -> NoReturn:
    """`run --workspace NAME`: this process becomes the workspace's `run`, so its output, exit code
    and signals are the run's own (a waiting parent held its memory for the whole run, and a
    SIGTERM sent to it alone orphaned the sync)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, _command(ws, passthrough), _env(ws))


class _Children:
    """The workspace runs under way, so a SIGTERM sent to `run --all` alone (a scheduler's timeout)
    reaches them too: Ctrl-C reaches the whole process group, a SIGTERM only its target."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[str]] = set()
        self.stopping = False

    def run(self, command: list[str], env: dict[str, str]) -> tuple[int, str]:
        """The command's exit code and its output (stdout, then stderr); not started once stopping."""
        with self._lock:
            if self.stopping:
                return errors.EXIT_INTERRUPTED, "error: interrupted before it started\n"
            proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self._running.add(proc)
        try:
            out, err = proc.communicate()
        finally:
            with self._lock:
                self._running.discard(proc)
        return proc.returncode, out + err

    def stop(self, *, terminate: bool) -> None:
        """Start no more; with `terminate`, SIGTERM the running ones (Ctrl-C reached them itself)."""
        with self._lock:
            self.stopping = True
            for proc in self._running if terminate else ():
                proc.terminate()


def _run_captured(ws: Workspace, passthrough: Sequence[str], children: _Children) -> tuple[Outcome, str]:
    started = time.monotonic()
    code, output = children.run(_command(ws, passthrough), _env(ws))
    output = output.replace(ws.token, "***")
    error = next((line for line in reversed(output.splitlines()) if line.startswith("error: ")), None)
    return Outcome(ws.name, code, error, time.monotonic() - started), output


def _duckdb_file(ws: Workspace) -> str | None:
    """The DuckDB file a workspace writes (resolved), None for other destinations."""
    if ws.destination != "duckdb":
        return None
    return str(Path(ws.duckdb_path or config.DEFAULT_DUCKDB_PATH).resolve())


def run_all(workspaces: dict[str, Workspace], path: str | Path, passthrough: Sequence[str], parallel: int) -> int:
    """Every workspace, at most `parallel` at once; workspaces that share a DuckDB file run one after
    another (DuckDB allows one writing process per file). Each one's output is printed as one block
    the moment it ends (never interleaved, never held back by a slower one), then a summary in
    registry order. Ctrl-C, or a SIGTERM to this process alone (passed on to the running ones),
    starts no further workspace: the summary names those that did not run.
    Each token is looked up when its workspace starts: a missing one fails that workspace alone."""
    if parallel < 1:
        raise errors.UserError(f"--parallel {parallel}: give 1 or more", errors.EXIT_USAGE)
    writers = {f: threading.Lock() for f in map(_duckdb_file, workspaces.values()) if f is not None}
    children = _Children()

    def run(ws: Workspace) -> tuple[Outcome, str]:
        try:
            ws = registry.with_token(ws, path)
        except errors.UserError as exc:
            line = f"error: {exc}"
            return Outcome(ws.name, exc.exit_code, line, 0.0), line
        file = _duckdb_file(ws)
        if file is None:
            return _run_captured(ws, passthrough, children)
        with writers[file]:
            return _run_captured(ws, passthrough, children)

    outcomes: dict[str, Outcome] = {}
    reported: set[Future[tuple[Outcome, str]]] = set()

    def report(future: Future[tuple[Outcome, str]]) -> None:
        reported.add(future)
        outcome, output = future.result()
        print(f"== workspace {outcome.name} (exit {outcome.exit_code}, {outcome.seconds:.1f} s)")
        print(output.rstrip(), flush=True)
        outcomes[outcome.name] = outcome

    def terminated(signum: int, frame: object) -> None:
        children.stop(terminate=True)
        raise KeyboardInterrupt

    in_main_thread = threading.current_thread() is threading.main_thread()  # where signals are handled
    previous = signal.signal(signal.SIGTERM, terminated) if in_main_thread else None
    pool = ThreadPoolExecutor(max_workers=parallel)
    futures = [pool.submit(run, ws) for ws in workspaces.values()]
    try:
        for future in as_completed(futures):
            report(future)
    except KeyboardInterrupt:
        children.stop(terminate=False)
        pool.shutdown(wait=True, cancel_futures=True)  # the running ones got the Ctrl-C or SIGTERM: they end now
        for future in futures:
            if future.done() and not future.cancelled() and future not in reported:
                report(future)
        _print_summary(workspaces, outcomes)
        raise
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    pool.shutdown()
    _print_summary(workspaces, outcomes)
    return fleet_exit_code([o.exit_code for o in outcomes.values()])


def _print_summary(workspaces: dict[str, Workspace], outcomes: dict[str, Outcome]) -> None:
    print("== summary")
    for name in workspaces:
        o = outcomes.get(name)
        if o is None:
            print(f"{name}: not run (interrupted)")
        elif o.exit_code == errors.EXIT_OK:
            print(f"{name}: ok")
        else:
            print(f"{name}: failed (exit {o.exit_code}): {o.error or 'no error line'}")
    ok = sum(o.exit_code == errors.EXIT_OK for o in outcomes.values())
    tally = [f"{ok} ok", f"{len(outcomes) - ok} failed", f"{len(workspaces) - len(outcomes)} not run"]
    noun = "workspace" if len(workspaces) == 1 else "workspaces"
    print(f"{len(workspaces)} {noun}: " + ", ".join(t for t in tally if not t.startswith("0 ")), flush=True)

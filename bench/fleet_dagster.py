"""Bench (c): every workspace of a registry materialized under Dagster, as bench/fleet_bench.py measures it.

The Definitions come from `intercom_elt.pipelines.dagster_defs.build_definitions(registry_path)`
(one multi_asset per workspace, grouped by workspace); FLEET_BENCH_DEFS=module:function names
another factory with that signature.

* `--mode per-workspace`: one Dagster run per workspace group, each in its own process (what the
  DefaultRunLauncher does: one run, one process), at most N at once: how a fleet runs in production.
* `--mode job`: ONE run of every asset on the multiprocess executor, at most N steps at once.
* `--mode group --group G`: one run of group G's assets in this process (what per-workspace starts).

Exit 0 when every run succeeded; else 1, with the failed groups named.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg

DEFS_ENV = "FLEET_BENCH_DEFS"
DEFAULT_DEFS = "intercom_elt.pipelines.dagster_defs:build_definitions"
REGISTRY_ENV = "FLEET_BENCH_REGISTRY"


def load_definitions(registry: str | Path) -> dg.Definitions:
    module, function = os.environ.get(DEFS_ENV, DEFAULT_DEFS).split(":")
    return getattr(importlib.import_module(module), function)(Path(registry))


def fleet_job() -> dg.JobDefinition:
    """A job of every asset; module level so the multiprocess executor's step processes rebuild it."""
    defs = load_definitions(os.environ[REGISTRY_ENV])
    every = dg.define_asset_job("fleet_bench_all", selection=dg.AssetSelection.all())
    return dg.Definitions.merge(defs, dg.Definitions(jobs=[every])).resolve_job_def("fleet_bench_all")


def groups(defs: dg.Definitions) -> dict[str, list[dg.AssetKey]]:
    """Asset keys per group, groups in the order their first asset appears (the registry's)."""
    keys: dict[str, list[dg.AssetKey]] = {}
    for spec in defs.resolve_all_asset_specs():
        keys.setdefault(spec.group_name or "default", []).append(spec.key)
    return keys


def run_group(registry: str, group: str) -> int:
    defs = load_definitions(registry)
    keys = groups(defs).get(group)
    if not keys:
        print(f"error: no asset group {group!r} (groups: {', '.join(groups(defs))})", file=sys.stderr)
        return 2
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), asset_selection=keys, raise_on_error=False,
        tags={"intercom/workspace": group},  # as the workspace's own job tags its runs
    )
    return 0 if result.success else 1


def run_per_workspace(registry: str, parallel: int) -> int:
    names = list(groups(load_definitions(registry)))

    def one(group: str) -> tuple[str, int, float]:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "bench.fleet_dagster", "--registry", registry, "--mode", "group", "--group", group],
            check=False, capture_output=True, text=True,
        )
        if done.returncode != 0:
            print(f"== {group} (exit {done.returncode})\n{(done.stdout + done.stderr)[-3000:]}", flush=True)
        return group, done.returncode, time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        outcomes = list(pool.map(one, names))
    for group, code, seconds in outcomes:
        print(f"{group}: {'ok' if code == 0 else f'failed (exit {code})'} in {seconds:.1f} s")
    return 0 if all(code == 0 for _, code, _ in outcomes) else 1


def run_job(registry: str, parallel: int) -> int:
    os.environ[REGISTRY_ENV] = str(Path(registry).resolve())
    result = dg.execute_job(
        dg.reconstructable(fleet_job), instance=dg.DagsterInstance.get(),
        run_config={"execution": {"config": {"multiprocess": {"max_concurrent": parallel}}}},
    )
    failed = [e.step_key for e in result.all_events if e.is_step_failure]
    print(f"one run, {len(result.all_events)} events: {'ok' if result.success else f'failed steps {failed}'}")
    return 0 if result.success else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--registry", required=True)
    p.add_argument("--mode", choices=("per-workspace", "job", "group"), default="per-workspace")
    p.add_argument("--parallel", type=int, default=4)
    p.add_argument("--group")
    args = p.parse_args(argv)
    if args.mode == "group":
        return run_group(args.registry, args.group)
    if args.mode == "job":
        return run_job(args.registry, args.parallel)
    return run_per_workspace(args.registry, args.parallel)


if __name__ == "__main__":
    sys.exit(main())

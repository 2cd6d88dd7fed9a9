"""Dagster definitions built from the workspace registry (`workspaces.toml`).

Per workspace: one `multi_asset` whose assets are the tables its streams land (key
`<workspace>/<table>`, group `<workspace>`), a job and, when the registry gives a `schedule`, a
schedule. A materialization is one `run_sync` (the product's own run path: pipeline lock, crash
resume of what a killed run left, run history), so a run killed mid-load is finished by the next
one exactly as with `intercom-sync run`; dagster-dlt is not used because it drops the local
pipeline state that resume needs. The run summary becomes the assets' metadata.

    INTERCOM_REGISTRY=workspaces.toml dagster dev -m intercom_elt.pipelines.dagster_defs

Building the definitions reads and validates the file but resolves no token: a workspace's token
is looked up when it runs, so one missing token fails that workspace only.
"""

# no `from __future__ import annotations`: Dagster reads the `context` annotation at definition time
import hashlib
import os
import re
import traceback
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    AssetsDefinition,
    AssetSelection,
    AssetSpec,
    Backoff,
    DefaultScheduleStatus,
    Definitions,
    Failure,
    Jitter,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    ScheduleDefinition,
    define_asset_job,
    multi_asset,
)

from intercom_elt.pipelines import config, errors, failures, registry, run_history
from intercom_elt.pipelines.intercom_pipeline import run_sync
from intercom_elt.pipelines.lock import PipelineBusy
from intercom_elt.pipelines.registry import Workspace
from intercom_elt.pipelines.summary import RunSummary
from intercom_elt.sources.intercom import settings as source_settings
from intercom_elt.sources.intercom.specs import SPECS, STREAMS, permission

REGISTRY_ENV = "INTERCOM_REGISTRY"
WORKSPACE_TAG = "intercom/workspace"  # on every job run; dagster.yaml.example limits it to 1 per value
# a failed sync is retried after about 1, 2 and 4 minutes: long enough for a rate-limit window, a
# destination restart or a network blip to pass. A wrong token or setting is never retried.
RETRY_POLICY = RetryPolicy(max_retries=3, delay=60, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)
RETRIED_EXIT_CODES = frozenset({errors.EXIT_FAILURE, errors.EXIT_NETWORK, errors.EXIT_DESTINATION})
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def dagster_name(workspace: str) -> str:
    """The workspace's name as Dagster spells asset key parts, groups, jobs and pools."""
    return _UNSAFE.sub("_", workspace)


def pool_of(ws: Workspace) -> str:
    """The Dagster pool a workspace's runs take (dagster.yaml.example gives each pool 1 run): its
    own, or for DuckDB its file's, since DuckDB lets one process write a file, so workspaces that
    share one take turns (as `run --all` does)."""
    if ws.destination != "duckdb":
        return f"intercom_{dagster_name(ws.name)}"
    file = Path(ws.duckdb_path or config.DEFAULT_DUCKDB_PATH).resolve()
    digest = hashlib.sha256(str(file).encode()).hexdigest()[:8]
    return f"intercom_duckdb_{dagster_name(file.stem)}_{digest}"


def landed_streams(ws: Workspace) -> list[str]:
    """The streams whose tables a sync of `ws` lands: those it names (all when none) and their
    companions, where its Intercom-Version has the endpoint."""
    selected = list(ws.streams) or list(STREAMS)
    version = ws.intercom_version or source_settings.DEFAULT_VERSION
    return [
        name for name, spec in SPECS.items()
        if (name in selected or spec.companion_of in selected) and spec.available(version, False)
    ]


def build_definitions(
    registry_path: Path, *, pipelines_dir: Path | None = None, retry_policy: RetryPolicy | None = RETRY_POLICY
) -> Definitions:
    """Assets, jobs and schedules of every workspace in the registry (validated; no token read).

    `pipelines_dir`: where dlt keeps each pipeline's state (default dlt's, ~/.dlt/pipelines or
    $DLT_DATA_DIR/pipelines); it must outlive a run for a killed run to be resumed.
    `retry_policy`: how a failed sync is retried (None: not at all).
    """
    path = Path(registry_path).resolve()
    workspaces = registry.load_registry(path)
    seen: dict[str, str] = {}
    for name in workspaces:
        other = seen.setdefault(dagster_name(name), name)
        if other != name:
            raise errors.UserError(
                f"{path}: workspaces '{other}' and '{name}' have the same Dagster name "
                f"'{dagster_name(name)}' (letters, digits, _): rename one",
                errors.EXIT_USAGE,
            )
    assets, jobs, schedules = [], [], []
    for ws in workspaces.values():
        asset = _workspace_asset(ws, path, pipelines_dir, retry_policy)
        key = dagster_name(ws.name)
        job = define_asset_job(
            f"intercom_{key}_job", selection=AssetSelection.assets(asset), tags={WORKSPACE_TAG: key},
            description=f"Sync Intercom workspace {ws.name} ({ws.where}) into {ws.destination}:{ws.dataset}",
        )
        assets.append(asset)
        jobs.append(job)
        if ws.schedule:
            schedules.append(
                ScheduleDefinition(
                    name=f"intercom_{key}_schedule", job=job, cron_schedule=ws.schedule,
                    execution_timezone="UTC", default_status=DefaultScheduleStatus.RUNNING,
                    description=f"workspaces.toml: schedule = \"{ws.schedule}\" (UTC)",
                )
            )
    return Definitions(assets=assets, jobs=jobs, schedules=schedules)


def _workspace_asset(
    ws: Workspace, registry_path: Path, pipelines_dir: Path | None, retry_policy: RetryPolicy | None
) -> AssetsDefinition:
    key = dagster_name(ws.name)
    kinds = {"intercom", ws.destination}
    specs = [
        AssetSpec(
            AssetKey([key, stream]), group_name=key, kinds=kinds, skippable=True,
            description=f"Intercom {stream} of workspace {ws.name}: table {ws.dataset}.{stream} "
            f"(and its child tables {stream}__*) in {ws.destination}",
            metadata={"dataset": ws.dataset, "pipeline": ws.pipeline_name, "source": ws.where},
        )
        for stream in landed_streams(ws)
    ]

    @multi_asset(
        name=f"intercom_{key}", specs=specs, can_subset=False, retry_policy=retry_policy, pool=pool_of(ws),
        op_tags={WORKSPACE_TAG: key},
        description=f"One `intercom-sync run` of workspace {ws.name}: every table at once, incremental.",
    )
    def sync_workspace(context: AssetExecutionContext) -> Iterator[MaterializeResult | AssetObservation]:
        yield from _materialize(context, ws, registry_path, pipelines_dir)

    return sync_workspace


def _materialize(
    context: AssetExecutionContext, ws: Workspace, registry_path: Path, pipelines_dir: Path | None
) -> Iterator[MaterializeResult | AssetObservation]:
    """Run the workspace's sync; one result per landed table, an observation per skipped one."""
    token = ""
    try:
        token = registry.with_token(ws, registry_path).token
        settings = config.resolve_source_settings(
            access_token=token, region=ws.region, base_url=ws.base_url,
            streams=list(ws.streams) or None, intercom_version=ws.intercom_version,
        )
        settings.history = ws.history or config.history_configured()
        settings.reconcile_deletes = ws.reconcile_deletes
        settings.skip_denied_streams = True  # a permission the token lacks skips its streams, says so
        wanted = settings.selected
        target = config.Target(
            destination=ws.destination, dataset_name=ws.dataset, pipeline_name=ws.pipeline_name,
            duckdb_path=ws.duckdb_path or config.DEFAULT_DUCKDB_PATH,
            pipelines_dir=str(pipelines_dir) if pipelines_dir else None,
        )
        with run_history.recording(target, f"dagster run {context.run.run_id}", [token]) as rec:
            rec.summary = summary = run_sync(settings, target)
    except Exception as exc:
        raise _failure(context, exc, token) from None
    synced = settings.streams or wanted
    skipped = {s: permission(s) or f"read {s}" for s in wanted if s not in synced}
    for stream, perm in skipped.items():
        context.log.warning(f"{ws.name}: skipped {stream}: the token lacks '{perm}'")
    run = _run_metadata(summary, skipped)
    for stream in landed_streams(ws):
        asset_key = AssetKey([dagster_name(ws.name), stream])
        companion = SPECS[stream].companion_of
        if stream in skipped or (companion is not None and companion in skipped):
            yield AssetObservation(
                asset_key=asset_key, metadata={"skipped": f"the token lacks '{skipped.get(stream) or skipped[companion]}'"}
            )
            continue
        yield MaterializeResult(asset_key=asset_key, metadata={**_table_metadata(summary, stream), **run})


def _table_metadata(summary: RunSummary, stream: str) -> dict[str, MetadataValue]:
    """The rows this run loaded into the stream's table and its child tables (`<stream>__*`)."""
    tables = {t: n for t, n in summary.rows.items() if t == stream or t.startswith(f"{stream}__")}
    return {
        "rows": MetadataValue.int(sum(tables.values())),
        "rows_by_table": MetadataValue.json(dict(sorted(tables.items()))),
        "rejected": MetadataValue.int(summary.rejected.get(stream, 0)),
    }


def _run_metadata(summary: RunSummary, skipped: Mapping[str, str]) -> dict[str, MetadataValue]:
    """What the whole workspace run loaded and cost (the same on each of its tables)."""
    return {
        "run_rows_total": MetadataValue.int(summary.total_rows),
        "run_rows_by_table": MetadataValue.json(dict(sorted(summary.rows.items()))),
        "requests": MetadataValue.int(summary.requests),
        "requests_by_endpoint": MetadataValue.json(dict(sorted(summary.requests_by_endpoint.items()))),
        "retries": MetadataValue.int(summary.retries),
        "rate_limited_429": MetadataValue.int(summary.rate_limited),
        "rate_limit_wait_seconds": MetadataValue.float(round(summary.rate_limit_wait_seconds, 3)),
        "duration_seconds": MetadataValue.float(round(summary.duration_seconds, 3)),
        "skipped_streams": MetadataValue.json(dict(skipped)),
        "destination": MetadataValue.text(f"{summary.destination}:{summary.dataset_name}"),
    }


def _failure(context: AssetExecutionContext, exc: Exception, token: str) -> Failure:
    """The CLI's one error line as a Dagster Failure; retried only when a later try can succeed.

    The traceback goes to the debug log only, redacted: an exception may carry a request's headers.
    """
    def redact(text: str) -> str:
        return text.replace(token, "***") if token else text

    context.log.debug(redact(traceback.format_exc()))
    mapped = exc if isinstance(exc, errors.UserError) else failures.explain(exc)
    if failures.interrupted(exc):
        line, code = failures.INTERRUPTED, errors.EXIT_INTERRUPTED
    elif mapped is None:
        line, code = failures.describe_failure(exc), errors.EXIT_FAILURE
    else:
        line, code = str(mapped), mapped.exit_code
    # a busy pipeline is another run of this workspace: fail now, the next tick catches up
    retry = code in RETRIED_EXIT_CODES and not isinstance(exc, PipelineBusy)
    return Failure(description=redact(line), metadata={"exit_code": code}, allow_retries=retry)


@cache
def _module_definitions() -> Definitions:
    """`defs` for `dagster dev -m intercom_elt.pipelines.dagster_defs`: $INTERCOM_REGISTRY, else
    ./workspaces.toml; neither is a one-line error saying what to do."""
    given = os.environ.get(REGISTRY_ENV, "").strip()
    path = Path(given or registry.DEFAULT_REGISTRY)
    if not path.is_file():
        where = f"{REGISTRY_ENV}={given} does not exist" if given else (
            f"{REGISTRY_ENV} is not set and there is no {registry.DEFAULT_REGISTRY} in {Path.cwd()}"
        )
        raise errors.UserError(
            f"no workspace registry for Dagster: {where}; set {REGISTRY_ENV}=path/to/workspaces.toml "
            "(start from workspaces.toml.example)",
            errors.EXIT_USAGE,
        )
    return build_definitions(path)


def __getattr__(name: str) -> Definitions:
    """`defs` is built on first use, so importing `build_definitions` never needs a registry."""
    if name == "defs":
        return _module_definitions()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "defs"])

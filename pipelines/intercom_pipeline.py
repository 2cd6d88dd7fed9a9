"""Run a sync: the source into the destination, under the pipeline's lock, and its summary.

The rooms it wires together: `config` (settings and token), `preflight` (token and permissions),
`destination` (the dlt pipeline and its settings), `resume` (what an interrupted run left),
`lock`, `packages` (rows loaded), `failures` (failures as one-line errors) and the analyst views.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import dlt
from dlt.extract import DltSource

from intercom_elt.pipelines import run_history
from intercom_elt.pipelines.config import SourceSettings, Target, dlt_setting
from intercom_elt.pipelines.destination import (
    build_pipeline,
    guard_destination,
    pipeline_run_kwargs,
    saved_target,
)
from intercom_elt.pipelines.failures import describe_failure, translate_errors
from intercom_elt.pipelines.first_load import empty_tables
from intercom_elt.pipelines.lock import pipeline_lock
from intercom_elt.pipelines.packages import count_then_clean, run_load_ids
from intercom_elt.pipelines.preflight import (
    CheckReport,
    check_workspace,
    close_client,
    make_client,
    require_permissions,
    skip_denied_streams,
)
from intercom_elt.pipelines.reconcile import describe as describe_reconciliation
from intercom_elt.pipelines.reconcile import reconcile_deletes
from intercom_elt.pipelines.rejects import REJECTS_TABLE, settle_rejects
from intercom_elt.pipelines.resume import finish_pending_packages
from intercom_elt.pipelines.summary import RunSummary, stats_to_summary
from intercom_elt.sources.intercom import FirstLoad, intercom_source, windows
from intercom_elt.sources.intercom.api import IntercomClient
from intercom_elt.sources.intercom.settings import MAX_RETRIES
from intercom_elt.sources.intercom.specs import SPECS

logger = logging.getLogger(__name__)


def build_source(
    settings: SourceSettings, client: IntercomClient | None = None, empty_tables: Mapping[str, FirstLoad] | None = None,
) -> DltSource:
    """The dlt source with every setting passed explicitly (no second config lookup).

    Passing our own `client` lets the summary read exactly this run's request counters;
    `empty_tables`: see first_load.py.
    """
    return intercom_source(
        access_token=settings.access_token,
        region=settings.region,
        base_url=settings.base_url,
        intercom_version=settings.intercom_version,
        start_date=settings.start_date,
        end_date=settings.end_date,
        lookback_seconds=settings.lookback_seconds,
        streams=settings.streams,
        max_workers=settings.max_workers,
        checkpoint_records=settings.checkpoint_records,
        client=client,
        history=settings.history,
        empty_tables=empty_tables,
    )


def run_sync(
    settings: SourceSettings,
    target: Target,
    *,
    full_refresh: bool = False,
    preflight: bool = True,
    views: bool = True,
) -> RunSummary:
    """Check the token, run the source into the destination and return the summary.

    With `views` (the default) the analyst views are re-created after the load (`pipelines/views/`);
    the outcome line is in `summary.views`.
    """
    started = time.monotonic()
    # one client for the whole run: the preflight's small retry budget first (a wrong host fails in
    # seconds), then the sync's full one; /me is asked once and cached
    client = make_client(settings) if preflight else make_client(settings, max_retries=None)
    try:
        report = check_workspace(settings, settings.streams, client) if preflight else None
        run_history.observe(preflight=report)
        if report is not None:
            if settings.skip_denied_streams:
                settings.streams = skip_denied_streams(report, settings.streams)
            require_permissions(report, settings.streams)
        client.max_retries = MAX_RETRIES
        if not full_refresh:  # before dlt opens the pipeline (it would warn about the mismatch)
            guard_destination(target, saved_target(target))
        pipeline = build_pipeline(target)
        with pipeline_lock(pipeline):
            return _locked_run(
                settings, target, pipeline, client, report, started, full_refresh=full_refresh, views=views
            )
    finally:
        close_client(client)


def _locked_run(
    settings: SourceSettings,
    target: Target,
    pipeline: dlt.Pipeline,
    client: IntercomClient,
    report: CheckReport | None,
    started: float,
    *,
    full_refresh: bool,
    views: bool,
) -> RunSummary:
    """The body of `run_sync`, run while this process holds the pipeline's lock."""
    run_history.observe(pipeline=pipeline)
    if full_refresh:  # Postgres refuses to drop tables our views read
        _drop_views_quietly(pipeline)
    with translate_errors(settings, target):
        resumed = finish_pending_packages(pipeline)
        read_from = time.time()  # update notifications received before this are read by this run
        loaded = run_until_caught_up(
            pipeline, settings, client, refresh="drop_sources" if full_refresh else None,
            **pipeline_run_kwargs(target),
        )
        reconciled = reconcile(pipeline, client, settings) if settings.reconcile_deletes else None
        workspace = report.app.get("id_code") if report is not None else None  # the inbox's app_id
        deletes_applied = apply_pushed_deletes(pipeline, target, read_from, str(workspace) if workspace else None)
    load_ids = [*resumed, *loaded]
    rejected = settle_rejects(pipeline, settings.streams, load_ids)
    rows = count_then_clean(pipeline, load_ids, dlt_setting("load.delete_completed_jobs", bool))
    if rejected is None:  # not settled: count them unsorted from the files loaded
        rejected = {"all streams": rows[REJECTS_TABLE]} if rows.get(REJECTS_TABLE) else {}
    summary = RunSummary(
        pipeline_name=target.pipeline_name,
        destination=target.destination,
        dataset_name=target.dataset_name,
        rows=rows,
        location=target.location,
        rejected=rejected,
    )
    stats_to_summary(summary, client.stats.as_dict())  # the preflight's requests included: one client
    summary.reconciled = "\n".join(filter(None, [reconciled, deletes_applied])) or None
    summary.views = refresh_views(pipeline) if views else None
    summary.duration_seconds = time.monotonic() - started
    return summary


def run_until_caught_up(
    pipeline: dlt.Pipeline, settings: SourceSettings, client: IntercomClient, **run_kwargs: Any
) -> list[str]:
    """`pipeline.run` of the source, then again for the streams whose split search stopped at a
    checkpoint (windows.py: a long search commits its progress every `checkpoint_records`), until
    none is left. Returns the load ids of every part. Streams whose tables are empty when the run
    begins are appended into (first_load.py); a full refresh empties them all."""
    empty = settings.selected if run_kwargs.get("refresh") else empty_tables(pipeline, settings.selected)
    first_loads = {name: FirstLoad() for name in empty}  # one for all the run's packages
    pipeline.run(build_source(settings, client, first_loads), **run_kwargs)
    load_ids = run_load_ids(pipeline)
    run_kwargs.pop("refresh", None)
    seen: list[Any] = []
    while left := unfinished_streams(pipeline, settings.selected):
        progress = [pipeline.state.get("sources", {}).get("intercom", {}).get("resources", {})]
        if progress == seen:  # nothing moved: never loop on a search that does not advance
            logger.warning("split search of %s made no progress; the next run goes on", ", ".join(left))
            break
        seen = copy.deepcopy(progress)
        still = {name: first for name, first in first_loads.items() if name in left}
        pipeline.run(build_source(replace(settings, streams=left), client, still), **run_kwargs)
        load_ids += run_load_ids(pipeline)
    return load_ids


def unfinished_streams(pipeline: dlt.Pipeline, selected: list[str]) -> list[str]:
    """The selected streams whose split search (or whose parent's) stopped at a checkpoint."""
    resources = pipeline.state.get("sources", {}).get("intercom", {}).get("resources", {})
    left = set(windows.unfinished(resources))
    return [s for s in selected if s in left or SPECS[s].parent in left]


def refresh_views(pipeline: dlt.Pipeline, fivetran_schema: str | None = None) -> str:
    """Re-create the analyst views; a failure is reported, never fails the finished load."""
    from intercom_elt.pipelines import views

    try:
        return views.create_views_for_pipeline(pipeline, fivetran_schema=fivetran_schema).describe()
    except Exception as exc:
        logger.debug("analyst views failed", exc_info=True)
        logger.warning("analyst views were not refreshed: %s", describe_failure(exc))
        return f"Views: not refreshed ({describe_failure(exc)}); retry with: intercom-sync views"


def _drop_views_quietly(pipeline: dlt.Pipeline) -> None:
    from intercom_elt.pipelines import views

    try:
        views.drop_views_for_pipeline(pipeline)
    except Exception:  # nothing to drop yet (first run, no dataset): the load decides
        logger.debug("dropping analyst views before a full refresh failed", exc_info=True)


def reconcile(pipeline: dlt.Pipeline, client: IntercomClient, settings: SourceSettings) -> str:
    """`run --reconcile-deletes`: mark vanished contacts/companies/conversations (reconcile.py)."""
    results = reconcile_deletes(pipeline, client, streams=settings.streams, max_workers=settings.max_workers)
    run_history.observe(deletes=results)
    return describe_reconciliation(results)


def apply_pushed_deletes(pipeline: dlt.Pipeline, target: Target, read_from: float, app_id: str | None) -> str | None:
    """Deletes Intercom told us about: the 2.16 feed's conversations and, when a webhook receiver
    is configured, its inbox (pipelines/webhooks/)."""
    from intercom_elt.pipelines.marks import apply_deleted_conversations
    from intercom_elt.pipelines.webhooks.commands import drain_after_run

    try:
        apply_deleted_conversations(pipeline)
        return drain_after_run(pipeline, target, read_from, app_id)
    except Exception as exc:  # the load is done and stays; the next run or a drain retries
        logger.debug("applying pushed deletes failed", exc_info=True)
        logger.warning("deletes from webhooks/feed not applied: %s", describe_failure(exc))
        return f"Deletes from webhooks/feed: not applied ({describe_failure(exc)}); retry with: intercom-sync webhooks drain"


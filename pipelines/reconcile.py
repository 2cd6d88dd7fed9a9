"""After the load: mark contacts, companies and conversations that no longer exist in Intercom.

The one post-load job that writes to the destination (`run --reconcile-deletes`). What Intercom
can tell about a vanished record, and what listing every live id costs, is the source's
knowledge (`sources/intercom/deletes.py`); comparing with the destination and updating its rows
is this room's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import dlt
from dlt.destinations.sql_client import SqlClientBase

from intercom_elt.pipelines import marks
from intercom_elt.sources.intercom.api import IntercomClient
from intercom_elt.sources.intercom.deletes import DELETED_AT, contact_reason, list_live_ids
from intercom_elt.sources.intercom.specs import RECONCILED_STREAMS

logger = logging.getLogger(__name__)



@dataclass
class ReconcileResult:
    """What one model's reconciliation found."""

    model: str
    known: int = 0
    listed: int = 0
    marked: dict[str, int] = field(default_factory=dict)
    skipped: str | None = None

    @property
    def total_marked(self) -> int:
        return sum(self.marked.values())


def reconcile_deletes(
    pipeline: dlt.Pipeline,
    client: IntercomClient,
    streams: Sequence[str] | None = None,
    noticed_at: datetime | None = None,
    max_workers: int = 8,
) -> list[ReconcileResult]:
    """Mark contacts, companies and conversations that no longer exist in Intercom as deleted.

    Run after a load, with the run's client (so the companies scroll is reused). Only rows that
    are not marked yet (and, in history mode, only current versions) are updated.
    """
    noticed = noticed_at or datetime.now(tz=timezone.utc)
    models = [m for m in RECONCILED_STREAMS if streams is None or m in streams]
    with pipeline.sql_client() as sql:
        return [_reconcile_model(sql, model, client, noticed, max_workers) for model in models]


def _reconcile_model(sql: SqlClientBase[Any], model: str, client: IntercomClient, noticed: datetime, max_workers: int) -> ReconcileResult:
    result = ReconcileResult(model)
    columns = marks.table_columns(sql, model)
    table = marks.table_info(sql, model, columns)
    if table is None:
        result.skipped = "table not loaded yet" if "id" not in columns else (
            f"no {DELETED_AT} column yet: run a sync of {model} first")
        return result
    known = {str(r[0]) for r in sql.execute_sql(f"SELECT id FROM {table.qualified} WHERE {DELETED_AT} IS NULL{table.current}") or []}
    result.known = len(known)
    live = list_live_ids(client, model)
    result.listed = len(live)
    vanished = sorted(known - live)
    if not vanished:
        return result
    for reason, ids in _reasons(client, model, vanished, max_workers).items():
        marks.mark_deleted(sql, table, ids, noticed, reason)
        result.marked[reason] = len(ids)
    logger.info("%s: %d of %d known ids no longer exist in Intercom: %s", model,
                result.total_marked, result.known, result.marked)
    return result


def _reasons(client: IntercomClient, model: str, vanished: list[str], max_workers: int) -> dict[str, list[str]]:
    """{reason: ids}: contacts are asked one by one (deleted, merged, archived); others are deleted."""
    if model == "contacts":
        with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(vanished)))) as pool:
            reasons = list(pool.map(lambda cid: contact_reason(client, cid), vanished))
    else:
        reasons = ["deleted"] * len(vanished)
    by_reason: dict[str, list[str]] = {}
    for cid, reason in zip(vanished, reasons, strict=True):
        by_reason.setdefault(reason, []).append(cid)
    return by_reason


def describe(results: Sequence[ReconcileResult]) -> str:
    """The summary line of one reconciliation."""
    parts = []
    for r in results:
        if r.skipped:
            parts.append(f"{r.model} skipped ({r.skipped})")
        else:
            marks = ", ".join(f"{n} {reason}" for reason, n in sorted(r.marked.items())) or "none vanished"
            parts.append(f"{r.model} {r.listed:,} listed, {marks}")
    return "Deletes reconciled: " + "; ".join(parts)

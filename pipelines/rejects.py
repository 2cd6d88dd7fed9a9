"""After each load: settle the rejects table and say how many records were kept aside.

The source yields one row per rejected record per run (`sources/intercom/rejects.py`). This
post-load step keeps the table what an analyst expects:
* one row per rejected record: its newest reason and JSON, the first time it was seen;
* no row for a record that has landed since: a later run that could read it cleared it.
It runs SQL on the destination, so it lives here with the other post-load jobs, never in the
source. A failure here is reported and never fails the finished load: the next run settles again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import dlt
from dlt.destinations.sql_client import SqlClientBase

from intercom_elt.sources.intercom.rejects import REJECTS_TABLE
from intercom_elt.sources.intercom.specs import CLEARED_BY

__all__ = ["REJECTS_TABLE", "settle_rejects"]

logger = logging.getLogger(__name__)


def _table_exists(sql: SqlClientBase[object], table: str) -> bool:
    rows = sql.execute_sql(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
        sql.dataset_name, table,
    )
    return bool(rows)


def _compact(sql: SqlClientBase[object], rejects: str) -> None:
    """One row per (stream, reject_key): the newest, carrying the earliest `first_seen`."""
    sql.execute_sql(
        f"UPDATE {rejects} AS r SET first_seen = (SELECT MIN(o.first_seen) FROM {rejects} AS o "
        "WHERE o.stream = r.stream AND o.reject_key = r.reject_key)"
    )
    sql.execute_sql(
        f"DELETE FROM {rejects} AS r WHERE EXISTS (SELECT 1 FROM {rejects} AS o "
        "WHERE o.stream = r.stream AND o.reject_key = r.reject_key AND (o.last_seen > r.last_seen "
        "OR (o.last_seen = r.last_seen AND o._dlt_id > r._dlt_id)))"
    )


def _clear_landed(sql: SqlClientBase[object], rejects: str, streams: Iterable[str], load_ids: Sequence[str]) -> None:
    """Remove the rejects whose record has landed since (see `CLEARED_BY`)."""
    for stream in streams:
        rule, table = CLEARED_BY.get(stream, ("", ""))
        if rule == "listing" and load_ids:
            sql.execute_sql(
                f"DELETE FROM {rejects} WHERE stream = %s AND _dlt_load_id < %s", stream, min(load_ids)
            )
        elif rule in ("record", "parent") and _table_exists(sql, table):
            column = "record_id" if rule == "record" else "parent_id"
            sql.execute_sql(
                f"DELETE FROM {rejects} AS r WHERE r.stream = %s AND r.{column} IS NOT NULL AND EXISTS "
                f"(SELECT 1 FROM {sql.make_qualified_table_name(table)} AS t "
                f"WHERE t.id = r.{column} AND t._dlt_load_id > r._dlt_load_id)",
                stream,
            )


def settle_rejects(
    pipeline: dlt.Pipeline, streams: Iterable[str] | None, load_ids: Sequence[str]
) -> dict[str, int] | None:
    """Settle `_intercom_rejects` after a load of `streams` (None: every stream, as a run without
    `--streams`); the records `load_ids` kept aside, by stream (after settling: one per record);
    None when settling failed."""
    try:
        with pipeline.sql_client() as sql:
            if not _table_exists(sql, REJECTS_TABLE):
                return {}
            rejects = sql.make_qualified_table_name(REJECTS_TABLE)
            _compact(sql, rejects)
            _clear_landed(sql, rejects, CLEARED_BY if streams is None else streams, load_ids)
            if not load_ids:
                return {}
            marks = ", ".join(["%s"] * len(load_ids))
            rows = sql.execute_sql(
                f"SELECT stream, COUNT(*) FROM {rejects} WHERE _dlt_load_id IN ({marks}) GROUP BY stream", *load_ids
            )
            return {str(stream): int(n) for stream, n in rows or []}
    except Exception as exc:  # never fail a finished load: the next run settles again
        logger.debug("settling %s failed", REJECTS_TABLE, exc_info=True)
        logger.warning("the rejects table was not settled (%s: %s); the next run tries again", type(exc).__name__, exc)
        return None

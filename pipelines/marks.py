"""Marking warehouse rows deleted (and un-marking restored ones): the reconciliation, the webhook
drain and the 2.16 feed.

Why one place: all three must mark rows the same way (`_deleted_at`, `_deleted_reason`; in history mode only the
current version, which is closed with `_dlt_valid_to`), through dlt's SQL client so DuckDB and
Postgres take the same statements. Every update skips rows already marked, so applying the same
marks twice, or after a crash half-way, ends in the same warehouse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dlt
from dlt.destinations.sql_client import SqlClientBase

from intercom_elt.sources.intercom.deletes import DELETED_AT, DELETED_REASON

VALID_TO = "_dlt_valid_to"
_BATCH = 500


@dataclass(frozen=True)
class TableInfo:
    """What a table offers for marks (None when it cannot be marked yet)."""

    qualified: str
    history: bool
    current: str = ""  # in history mode: the filter that picks the current versions


def table_columns(sql: SqlClientBase[Any], table: str) -> set[str]:
    """The columns a table of the dataset has (empty when it does not exist)."""
    rows = sql.execute_sql(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
        sql.dataset_name, table,
    )
    return {str(r[0]) for r in rows or []}


def table_info(sql: SqlClientBase[Any], table: str, columns: set[str] | None = None) -> TableInfo | None:
    """How to mark `table` (its `columns` when already read), or None when it cannot be marked yet."""
    columns = table_columns(sql, table) if columns is None else columns
    if "id" not in columns or DELETED_AT not in columns:
        return None
    history = VALID_TO in columns
    current = f" AND {sql.escape_column_name(VALID_TO)} IS NULL" if history else ""
    return TableInfo(sql.make_qualified_table_name(table), history, current)


def mark_deleted(sql: SqlClientBase[Any], info: TableInfo, ids: Sequence[str], at: datetime, reason: str) -> None:
    """Set `_deleted_at = at` and the reason on the live (current) rows of these ids."""
    set_to, args = f"{DELETED_AT} = %s, {DELETED_REASON} = %s", [at, reason]
    if info.history:
        set_to += f", {sql.escape_column_name(VALID_TO)} = %s"
        args.append(at)
    for start in range(0, len(ids), _BATCH):
        batch = list(ids[start : start + _BATCH])
        marks = ", ".join(["%s"] * len(batch))
        sql.execute_sql(
            f"UPDATE {info.qualified} SET {set_to} WHERE id IN ({marks}) AND {DELETED_AT} IS NULL{info.current}",
            *args, *batch,
        )


def unmark(sql: SqlClientBase[Any], info: TableInfo, ids: Sequence[str], reason: str) -> None:
    """Clear a mark of this reason (an unarchived contact is live again). History mode keeps the
    closed version: the next run loads the contact as a new version."""
    if info.history:
        return
    for start in range(0, len(ids), _BATCH):
        batch = list(ids[start : start + _BATCH])
        marks = ", ".join(["%s"] * len(batch))
        sql.execute_sql(
            f"UPDATE {info.qualified} SET {DELETED_AT} = NULL, {DELETED_REASON} = NULL "
            f"WHERE id IN ({marks}) AND {DELETED_REASON} = %s",
            *batch, reason,
        )


def apply_deleted_conversations(pipeline: dlt.Pipeline, feed_table: str = "deleted_conversations") -> int:
    """Mark the conversations the 2.16 feed lists as deleted (`_deleted_reason` conversation.deleted).

    Returns how many conversations the feed table lists; 0 when either table is missing.
    """
    with pipeline.sql_client() as sql:
        info = table_info(sql, "conversations")
        feed_rows = sql.execute_sql(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            sql.dataset_name, feed_table,
        )
        if info is None or not feed_rows or not feed_rows[0][0]:
            return 0
        feed = sql.make_qualified_table_name(feed_table)
        valid_to = sql.escape_column_name(VALID_TO)
        set_to = f"{DELETED_AT} = d.deleted_at, {DELETED_REASON} = 'conversation.deleted'"
        current = ""
        if info.history:
            set_to += f", {valid_to} = d.deleted_at"
            current = f" AND {info.qualified}.{valid_to} IS NULL"
        sql.execute_sql(
            f"UPDATE {info.qualified} SET {set_to} FROM {feed} AS d "
            f"WHERE {info.qualified}.id = d.id AND {info.qualified}.{DELETED_AT} IS NULL{current}"
        )
        return int(sql.execute_sql(f"SELECT count(*) FROM {feed}")[0][0])

"""Apply the inbox to the warehouse: delete-like notifications become `_deleted_at` marks.

Why it is order- and duplicate-proof: the drain never replays notifications one by one. It reads
every kept delete-like notification, takes per record the newest one by Intercom's `created_at`
(ties: notification id), and asserts that final state on the warehouse with Intercom's time as
`_deleted_at` and the topic as `_deleted_reason`. A duplicate is the same row in the inbox; a late
delivery loses to a newer event; a drain killed half-way is finished by the next one.

Updates (every other topic) are not applied: the API stays the source of truth for content, and
the next `run` reads those records through its incremental cursor, then marks them read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from intercom_elt.pipelines import marks
from intercom_elt.pipelines.webhooks.inbox import Event, Inbox

logger = logging.getLogger(__name__)

DELETE_TOPICS = {
    "contact.deleted": "contacts",
    "contact.archived": "contacts",
    "contact.merged": "contacts",
    "company.deleted": "companies",
    "conversation.deleted": "conversations",
}
RESTORE_TOPICS = {"contact.unarchived": ("contacts", "contact.archived")}  # clears that mark
NOT_UPDATES = frozenset({*DELETE_TOPICS, *RESTORE_TOPICS, "ping"})


class SeveralWorkspacesError(ValueError):
    def __init__(self, apps: list[str]) -> None:
        super().__init__(
            f"the inbox holds notifications of {len(apps)} workspaces ({', '.join(apps)}): drain each "
            "warehouse with --app-id <its workspace id_code> (intercom-sync check shows it)"
        )


@dataclass
class DrainResult:
    events: int = 0
    deleted: dict[str, int] = field(default_factory=dict)  # table -> records whose final event is a delete
    restored: dict[str, int] = field(default_factory=dict)
    skipped_tables: list[str] = field(default_factory=list)  # not loaded yet: applied by a later drain
    queued_updates: int = 0
    pruned: int = 0  # applied notifications older than the inbox's retention, forgotten

    def describe(self) -> str:
        parts = [f"{n} {t}" for t, n in sorted(self.deleted.items())] or ["nothing"]
        line = f"Webhooks drained: {self.events} delete-like notification(s); marked deleted: {', '.join(parts)}"
        if self.restored:
            line += "; restored: " + ", ".join(f"{n} {t}" for t, n in sorted(self.restored.items()))
        if self.skipped_tables:
            line += f"; waiting for a first sync of {', '.join(self.skipped_tables)}"
        if self.queued_updates:
            line += f"; {self.queued_updates} update(s) queued for the next run"
        return line


def final_events(events: list[Event]) -> dict[tuple[str, str], Event]:
    """The newest delete-like or restoring event per (table, id)."""
    latest: dict[tuple[str, str], Event] = {}
    for event in events:
        table = DELETE_TOPICS.get(event.topic) or RESTORE_TOPICS[event.topic][0]
        if not event.item_id:
            continue
        key = (table, event.item_id)
        seen = latest.get(key)
        if seen is None or (event.created_at, event.notification_id) > (seen.created_at, seen.notification_id):
            latest[key] = event
    return latest


def drain(pipeline: Any, inbox: Inbox, app_id: str | None = None) -> DrainResult:
    """Mark in the warehouse what the inbox says was deleted (run under the pipeline's lock).

    One warehouse holds one workspace: an inbox shared by several (one app installed in many
    workspaces) must be drained per `app_id`, or ids of one workspace would mark rows of another.
    """
    if app_id is None:
        apps = inbox.app_ids()
        if len(apps) > 1:
            raise SeveralWorkspacesError(apps)
    events = inbox.events([*DELETE_TOPICS, *RESTORE_TOPICS], app_id)
    result = DrainResult(events=len(events))
    by_table: dict[str, list[Event]] = {}
    for (table, _), event in final_events(events).items():
        by_table.setdefault(table, []).append(event)
    with pipeline.sql_client() as sql:
        for table, finals in sorted(by_table.items()):
            info = marks.table_info(sql, table)
            if info is None:
                result.skipped_tables.append(table)
                continue
            groups: dict[tuple[str, int], list[str]] = {}
            for event in finals:
                groups.setdefault((event.topic, event.created_at), []).append(str(event.item_id))
            for (topic, created_at), ids in sorted(groups.items()):
                if topic in RESTORE_TOPICS:
                    marks.unmark(sql, info, ids, RESTORE_TOPICS[topic][1])
                    result.restored[table] = result.restored.get(table, 0) + len(ids)
                else:
                    marks.mark_deleted(sql, info, ids, datetime.fromtimestamp(created_at, tz=timezone.utc), topic)
                    result.deleted[table] = result.deleted.get(table, 0) + len(ids)
    applied = [e.notification_id for e in events
               if (DELETE_TOPICS.get(e.topic) or RESTORE_TOPICS[e.topic][0]) not in result.skipped_tables]
    inbox.mark_applied(applied)
    result.pruned = inbox.prune()
    result.queued_updates = inbox.unapplied(exclude=NOT_UPDATES)
    logger.info("%s", result.describe())
    return result


def updates_read_by_run(inbox: Inbox, run_started_at: float) -> int:
    """After a successful run: the update notifications received before it started were read."""
    topics = [t for t in inbox.topic_counts() if t not in NOT_UPDATES]
    return inbox.mark_topics_applied(topics, run_started_at) if topics else 0

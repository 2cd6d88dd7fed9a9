"""The inbox: every verified notification, kept durably before the receiver answers 200.

Why a separate store and not the warehouse: DuckDB allows one writing process, and a sync may
hold it for minutes, while Intercom waits only seconds for an answer. So DuckDB users get a SQLite
file in WAL mode (one writer at a time, readers never blocked, `synchronous=FULL` so a committed
row survives a power cut) and Postgres users a table beside their data. One code path for both:
SQLAlchemy Core. Idempotent on the notification id: a retried or duplicated delivery is one row.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

TABLE = "_intercom_webhook_inbox"
RETENTION_DAYS = 30  # applied notifications older than this are pruned (receiver.MAX_EVENT_AGE_DAYS < this)
_BATCH = 500


@dataclass(frozen=True)
class Event:
    """One notification as the inbox keeps it."""

    notification_id: str
    app_id: str
    topic: str
    item_type: str | None
    item_id: str | None
    created_at: int
    received_at: float


def _table(schema: str | None) -> sa.Table:
    return sa.Table(
        TABLE, sa.MetaData(schema=schema),
        sa.Column("notification_id", sa.String(200), primary_key=True),
        sa.Column("app_id", sa.String(100), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("item_type", sa.String(100)),
        sa.Column("item_id", sa.String(200)),
        sa.Column("created_at", sa.BigInteger, nullable=False),  # Intercom's notification time
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("applied_at", sa.Float),  # set by the drain (deletes) or by the run that read the update
        sa.Column("body", sa.Text, nullable=False),
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Inbox:
    """`Inbox(url, schema)`: `sqlite:///path` (DuckDB users) or `postgresql://...` (+ a schema)."""

    def __init__(self, url: str, schema: str | None = None, create: bool = True) -> None:
        parsed = sa.make_url(url)
        if parsed.drivername in ("postgres", "postgresql"):  # the driver this product ships (psycopg2-binary)
            parsed = parsed.set(drivername="postgresql+psycopg2")
        self.engine: Engine = sa.create_engine(parsed, pool_pre_ping=True)
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            schema = None  # a SQLite file has one schema
        elif self.dialect != "postgresql":
            raise ValueError(f"the webhook inbox supports sqlite and postgresql, not {self.dialect}")
        self.table = _table(schema)
        if create:
            with self.engine.begin() as conn:
                if schema:
                    conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
                self.table.create(conn, checkfirst=True)

    def exists(self) -> bool:
        return sa.inspect(self.engine).has_table(TABLE, schema=self.table.schema)

    def close(self) -> None:
        self.engine.dispose()

    def put(self, event: Event, body: str) -> bool:
        """Store a notification; False when its id was stored before (a retry or a duplicate)."""
        insert = (sqlite.insert if self.dialect == "sqlite" else postgresql.insert)(self.table)
        stmt = insert.values(
            notification_id=event.notification_id, app_id=event.app_id, topic=event.topic,
            item_type=event.item_type, item_id=event.item_id, created_at=event.created_at,
            received_at=event.received_at, body=body,
        ).on_conflict_do_nothing(index_elements=["notification_id"])
        with self.engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def events(self, topics: Iterable[str], app_id: str | None = None) -> list[Event]:
        """Every kept notification of these topics (applied or not), oldest first."""
        t = self.table
        query = sa.select(t.c.notification_id, t.c.app_id, t.c.topic, t.c.item_type, t.c.item_id,
                          t.c.created_at, t.c.received_at).where(t.c.topic.in_(list(topics)))
        if app_id:
            query = query.where(t.c.app_id == app_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.c.created_at, t.c.notification_id)).all()
        return [Event(*row) for row in rows]

    def unapplied(self, exclude: Iterable[str] = (), received_before: float | None = None) -> int:
        """Notifications not applied yet, but those of the `exclude` topics."""
        t = self.table
        query = sa.select(sa.func.count()).select_from(t).where(t.c.applied_at.is_(None))
        if exclude:
            query = query.where(t.c.topic.not_in(list(exclude)))
        if received_before is not None:
            query = query.where(t.c.received_at < received_before)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def mark_applied(self, notification_ids: Sequence[str], at: float | None = None) -> None:
        t, at = self.table, at or time.time()
        with self.engine.begin() as conn:
            for start in range(0, len(notification_ids), _BATCH):
                batch = list(notification_ids[start : start + _BATCH])
                conn.execute(t.update().where(t.c.notification_id.in_(batch), t.c.applied_at.is_(None))
                             .values(applied_at=at))

    def mark_topics_applied(self, topics: Iterable[str], received_before: float, at: float | None = None) -> int:
        """Update notifications a finished run has read through the API (the queue is emptied)."""
        t = self.table
        with self.engine.begin() as conn:
            result = conn.execute(t.update().where(
                t.c.applied_at.is_(None), t.c.topic.in_(list(topics)), t.c.received_at < received_before,
            ).values(applied_at=at or time.time()))
        return int(result.rowcount or 0)

    def prune(self, days: float = RETENTION_DAYS, now: float | None = None) -> int:
        """Forget applied notifications received more than `days` ago (their marks stay in the warehouse)."""
        t, cutoff = self.table, (now or time.time()) - days * 86400
        with self.engine.begin() as conn:
            result = conn.execute(t.delete().where(t.c.applied_at.is_not(None), t.c.received_at < cutoff))
        return int(result.rowcount or 0)

    def app_ids(self) -> list[str]:
        """The workspaces (app_id = id_code) the inbox holds notifications of, ping aside."""
        t = self.table
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.app_id).where(t.c.topic != "ping").distinct()).all()
        return sorted(str(r[0]) for r in rows)

    def topic_counts(self) -> dict[str, int]:
        t = self.table
        with self.engine.connect() as conn:
            return {str(topic): int(n) for topic, n in
                    conn.execute(sa.select(t.c.topic, sa.func.count()).group_by(t.c.topic)).all()}

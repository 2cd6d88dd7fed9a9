"""Deleted conversations from Intercom's own feed: GET /conversations/deleted (Intercom-Version 2.16+).

Why: Intercom's lists never show what was deleted; before 2.16 only listing every id
(`run --reconcile-deletes`) finds deleted conversations. The feed lists `{id, deleted_at,
metrics_retained}`, newest first by default, `page`d, at most 60 a page. Read newest first and
stop at the first page that reaches back past the cursor: a run with no new delete costs one call.
Rows land in `deleted_conversations` (merged on id); the run then marks `conversations` from it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import dlt
from dlt.common.schema.typing import TTableSchemaColumns
from dlt.extract.incremental import Incremental
from dlt.sources import DltResource

from .api import IntercomClient
from .pagers import PageNumber, PageRequest, RecordsAt

FIRST_VERSION = (2, 16)
PER_PAGE = 60  # the feed's maximum
COLUMNS: TTableSchemaColumns = {
    "id": {"data_type": "text", "nullable": False},
    "deleted_at": {"data_type": "timestamp", "nullable": False},
    "metrics_retained": {"data_type": "bool", "nullable": True},
}


def has_feed(version: str) -> bool:
    """True for Intercom-Version 2.16 and newer."""
    major, _, minor = str(version).partition(".")
    return major.isdigit() and minor.isdigit() and (int(major), int(minor)) >= FIRST_VERSION


def shape(item: object) -> dict[str, Any] | None:
    """A feed item as a row; None for one without an id or a readable `deleted_at`."""
    if not isinstance(item, Mapping) or item.get("id") in (None, ""):
        return None
    try:
        at = datetime.fromtimestamp(int(item.get("deleted_at")), tz=timezone.utc)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    retained = item.get("metrics_retained")
    return {"id": str(item["id"]), "deleted_at": at, "metrics_retained": retained if isinstance(retained, bool) else None}


def feed_pages(client: IntercomClient, cursor: Incremental[Any]) -> Iterator[list[dict[str, Any]]]:
    """The feed's raw pages, newest first, until a page reaches back past `cursor.start_value`."""
    since = cursor.start_value
    first = PageRequest(params={"per_page": PER_PAGE, "order": "desc", "page": 1})
    pages = client.paginate("conversations_deleted", PageNumber(), first, records=RecordsAt(("conversations",)))
    for items in pages:
        if not items:
            return
        yield items
        times = [r["deleted_at"] for r in map(shape, items) if r is not None]
        if since is not None and times and min(times) < since:
            return


def resource(client: IntercomClient, start: datetime | None, lookback_seconds: int) -> DltResource:
    """The `deleted_conversations` resource (merged on id), its cursor on `deleted_at`."""
    lag = float(lookback_seconds) if lookback_seconds else None
    cursor = dlt.sources.incremental("deleted_at", initial_value=start, lag=lag, range_start="closed")
    feed = dlt.resource(deleted_conversations, name="deleted_conversations", primary_key="id",
                        write_disposition="merge", columns=COLUMNS)
    return feed(client, deleted_at=cursor)


def deleted_conversations(
    client: IntercomClient,
    deleted_at: dlt.sources.incremental[datetime] = dlt.sources.incremental("deleted_at"),  # noqa: B008
) -> Iterator[list[dict[str, Any]]]:
    """The `deleted_conversations` resource: feed pages as rows, down to the cursor (lag applied)."""
    for items in feed_pages(client, deleted_at):
        rows = [r for r in map(shape, items) if r is not None]
        if rows:
            yield rows

"""Deleted conversations from Intercom's own feed: GET /conversations/deleted (Intercom-Version 2.16+).

Why: Intercom's lists never show what was deleted; before 2.16 only listing every id
(`run --reconcile-deletes`) finds deleted conversations. The feed lists `{id, deleted_at,
metrics_retained}`, newest first by default, `page`d, at most 60 a page. Read newest first and
stop at the first page that reaches back past the cursor: a run with no new delete costs one call.
Rows land in `deleted_conversations` (merged on id; its spec in specs.py reads it with
`conversations` from 2.16 on); the run then marks `conversations` from it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from dlt.common.schema.typing import TTableSchemaColumns
from dlt.extract.incremental import Incremental

from . import settings
from .pagers import PageNumber, PageRequest, RecordsAt

if TYPE_CHECKING:
    from .streams import StreamContext

FIRST_VERSION = (2, 16)
PER_PAGE = 60  # the feed's maximum
COLUMNS: TTableSchemaColumns = {
    "id": {"data_type": "text", "nullable": False},
    "deleted_at": {"data_type": "timestamp", "nullable": False},
    "metrics_retained": {"data_type": "bool", "nullable": True},
}


def has_feed(version: str) -> bool:
    """True for Intercom-Version 2.16 and newer."""
    return settings.version_at_least(version, FIRST_VERSION)


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


def shape_row(raw: Mapping[str, Any], how: object) -> dict[str, Any]:
    """The spec's shape: a feed item as a row (its id and `deleted_at` were screened before)."""
    row = shape(raw)
    if row is None:
        raise ValueError("not a deleted-conversation item")
    return row


def feed_pages(ctx: StreamContext, cursor: Incremental[Any]) -> Iterator[list[dict[str, Any]]]:
    """The feed's raw pages, newest first, until a page reaches back past `cursor.start_value`."""
    client = ctx.client
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

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


def _row(item: object) -> dict[str, Any] | None:
    if not isinstance(item, Mapping) or item.get("id") in (None, ""):
        return None
    try:
        at = datetime.fromtimestamp(int(item.get("deleted_at")), tz=timezone.utc)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    retained = item.get("metrics_retained")
    return {"id": str(item["id"]), "deleted_at": at, "metrics_retained": retained if isinstance(retained, bool) else None}


def deleted_conversations(
    client: Any,
    deleted_at: dlt.sources.incremental[datetime] = dlt.sources.incremental("deleted_at"),  # noqa: B008
) -> Iterator[list[dict[str, Any]]]:
    """Pages of deleted conversations, newest first, down to the incremental cursor (lag applied)."""
    since = deleted_at.start_value
    params: dict[str, Any] | None = {"per_page": PER_PAGE, "order": "desc", "page": 1}
    url: str | None = None
    while True:
        body = client.request("conversations_deleted", params=params if url is None else None, url=url)
        items = body.get("conversations")
        rows = [r for r in map(_row, items if isinstance(items, list) else []) if r is not None]
        if rows:
            yield rows
        if not rows or (since is not None and min(r["deleted_at"] for r in rows) < since):
            return
        pages = body.get("pages")
        nxt = pages.get("next") if isinstance(pages, Mapping) else None
        if isinstance(nxt, str) and nxt:
            url = nxt
        elif isinstance(pages, Mapping) and isinstance(pages.get("page"), int) and \
                isinstance(pages.get("total_pages"), int) and pages["page"] < pages["total_pages"]:
            params, url = {"per_page": PER_PAGE, "order": "desc", "page": pages["page"] + 1}, None
        else:
            return

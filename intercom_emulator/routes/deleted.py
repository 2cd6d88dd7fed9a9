"""GET /conversations/deleted: the ids of deleted conversations (Intercom-Version 2.16 and newer).

As the 2.16 OpenAPI description says: `page` (from 1), `per_page` (default 20, at most 60),
`order` asc|desc by deletion time (default desc); items `{type, id, metrics_retained,
deleted_at}`; `pages.next` is a URL while more pages follow; older versions answer 400
`intercom_version_invalid`.
"""

from __future__ import annotations

import math

from aiohttp import web

from intercom_emulator.routes.common import int_param, per_page_of, self_url, state_of
from intercom_emulator.state import DEFAULT_VERSION, ApiError, json_response

FIRST_VERSION = (2, 16)
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 60


def version_has_feed(version: str) -> bool:
    """2.16 and newer numbered versions, and the unnumbered Preview/Unstable (newer than all)."""
    major, _, minor = version.partition(".")
    if not (major.isdigit() and minor.isdigit()):
        return version in ("Preview", "Unstable")
    return (int(major), int(minor)) >= FIRST_VERSION


async def deleted_conversations(request: web.Request) -> web.Response:
    if not version_has_feed(request.headers.get("Intercom-Version", DEFAULT_VERSION)):
        raise ApiError(400, "intercom_version_invalid", "Requested resource is not available in current API version.")
    q = request.query
    page = int_param(q.get("page"), "page", 1)
    if page < 1:
        raise ApiError(400, "parameter_invalid", "page must be positive")
    per_page = per_page_of(q.get("per_page"), DEFAULT_PER_PAGE, cap=MAX_PER_PAGE)
    order = q.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise ApiError(400, "parameter_invalid", "order must be asc or desc")
    deleted = sorted(state_of(request).ws.deleted_conversations(), key=lambda d: (d[1], int(d[0])),
                     reverse=order == "desc")
    total_pages = math.ceil(len(deleted) / per_page)
    chunk = deleted[(page - 1) * per_page : page * per_page]
    next_url = None
    if page < total_pages:
        params = {"per_page": str(per_page), "order": order, "page": str(page + 1)}
        next_url = self_url(request, "/conversations/deleted", params)
    return json_response({
        "type": "conversations.list",
        "total_count": len(deleted),
        "pages": {"type": "pages", "next": next_url, "page": page, "per_page": per_page,
                  "total_pages": total_pages},
        "conversations": [{"type": "conversation", "id": cid, "metrics_retained": False, "deleted_at": at}
                          for cid, at in chunk],
    })

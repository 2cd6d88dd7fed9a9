"""Small workspace lists and lookups: me, admins, activity logs, teams, tags, segments, data attributes."""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from intercom_emulator.generator import admin_avatar_url
from intercom_emulator.routes.common import (
    apply_data_faults,
    int_param,
    not_found,
    one_record,
    self_url,
    state_of,
)
from intercom_emulator.state import ApiError, json_response


async def get_me(request: web.Request) -> web.Response:
    return json_response(state_of(request).ws.me())


async def list_admins(request: web.Request) -> web.Response:
    """GET /admins: no `avatar` (real responses); with `display_avatar=true` (a 2.15 parameter) the
    object /me sends, `{type, image_url}`."""
    admins = list(state_of(request).ws.iter("admins"))
    if request.query.get("display_avatar", "false").lower() == "true":
        for admin in admins:
            admin["avatar"] = {"type": "avatar", "image_url": admin_avatar_url(admin["id"])}
    return json_response({"type": "admin.list", "admins": admins})


async def get_admin(request: web.Request) -> web.Response:
    admin = state_of(request).ws.get("admins", request.match_info["id"])
    if admin is None:
        raise not_found("Admin not found", "admin_not_found")  # exactly the spec example's message
    return one_record(request, admin)


async def activity_logs(request: web.Request) -> web.Response:
    state = state_of(request)
    q = request.query
    if not q.get("created_at_after"):
        raise ApiError(400, "parameter_invalid", "created_at_after is a required parameter")
    after = int_param(q.get("created_at_after"), "created_at_after", 0)
    before = int_param(q.get("created_at_before"), "created_at_before", 0) or None
    cap = state.knobs.activity_logs_max_window_seconds
    if cap and ((before or state.ws.clock.now()) - after) > cap:
        raise ApiError(500, "server_error", "Request timed out; try a narrower created_at window")
    page = max(1, int_param(q.get("page"), "page", 1))
    per_page = state.knobs.activity_logs_per_page
    key = ("activity_logs", after, before, state.ws.version)
    ids = state.search_cache.lookup(key)
    if ids is None:  # newest first; from the compact columns, one list per (window, version)
        ws = state.ws
        window = [(created, ws.id_at("activity_logs", i)) for i, created, _ in ws.timestamps("activity_logs")
                  if created >= after and (before is None or created <= before)]
        ids = [i for _, i in sorted(window, reverse=True)]
        state.search_cache.put(key, ids)
    total_pages = math.ceil(len(ids) / per_page) if ids else 0
    chunk = [r for r in (state.ws.get("activity_logs", i) for i in ids[(page - 1) * per_page : page * per_page])
             if r is not None]
    next_url = None
    if page < total_pages:
        params = {"created_at_after": str(after)}
        if before is not None:
            params["created_at_before"] = str(before)
        params["page"] = str(page + 1)
        next_url = self_url(request, "/admins/activity_logs", params)
    return json_response(
        {
            "type": "activity_log.list",
            "pages": {
                "type": "pages",
                "next": next_url,
                "page": page,
                "per_page": per_page,
                "total_pages": total_pages,
            },
            "activity_logs": apply_data_faults(request, chunk),
        }
    )


async def list_teams(request: web.Request) -> web.Response:
    return json_response({"type": "team.list", "teams": list(state_of(request).ws.iter("teams"))})


async def list_tags(request: web.Request) -> web.Response:
    return json_response({"type": "list", "data": list(state_of(request).ws.iter("tags"))})


async def list_segments(request: web.Request) -> web.Response:
    """`count` (live contacts in the segment) only with include_count=true; the store keeps it current."""
    state = state_of(request)
    include = request.query.get("include_count", "false").lower() == "true"
    segments = list(state.ws.iter("segments"))
    if not include:
        for seg in segments:
            seg.pop("count", None)
    return json_response({"type": "segment.list", "segments": segments})


async def data_attributes(request: web.Request) -> web.Response:
    state = state_of(request)
    model = request.query.get("model")
    models = ["contact", "company", "conversation"]
    if model is not None and model not in models:
        raise ApiError(400, "parameter_invalid", "model must be one of contact, company, conversation")
    rows: list[dict[str, Any]] = []
    for m in [model] if model else models:
        rows.extend(state.ws.data_attributes(m))
    return json_response({"type": "list", "data": rows})

"""The search endpoints and ticket lookup: query compiling, search lag and result caching live here only."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from intercom_emulator import search
from intercom_emulator.routes.common import (
    all_records,
    apply_data_faults,
    not_found,
    one_record,
    per_page_of,
    state_of,
)
from intercom_emulator.routes.cursor import (
    LIGHT_FIELDS,
    LIGHT_MODELS,
    Ordered,
    cursor_page,
    light_ordered,
    page_records,
    page_response,
    updated_range,
    updated_slice,
)
from intercom_emulator.state import FATE_KEY, ApiError, json_response

SEARCH_MODELS = {
    "contacts": ("list", "data", 50),
    "conversations": ("conversation.list", "conversations", 20),
    "tickets": ("ticket.list", "tickets", 20),
}


async def _read_json(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "bad_request", "Request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "Request body must be a JSON object")
    return body


def _search(request: web.Request, model: str, body: dict[str, Any]) -> web.Response:
    state = state_of(request)
    list_type, items_key, default_pp = SEARCH_MODELS[model]
    pagination = body.get("pagination") or {}
    if not isinstance(pagination, dict):
        raise ApiError(400, "parameter_invalid", "pagination must be an object")
    per_page = per_page_of(pagination.get("per_page"), default_pp)
    lag = int(state.knobs.search_lag_seconds or 0)
    day_granular = model == "contacts" or (
        model == "conversations" and state.knobs.conversations_search_day_granular
    )
    cutoff = state.ws.clock.now() - lag if lag > 0 else None
    # The lag's cache bucket: the exact set of records it hides now. While that set does not change
    # (cutoff past the generated history: only mutated records can be hidden), every page of a
    # walk reuses one result although the cutoff moves each second; otherwise the cutoff itself.
    lag_bucket: Any = None
    if cutoff is not None:
        hidden = state.ws.updated_after(model, cutoff)
        lag_bucket = ("hidden", hidden) if hidden is not None else ("cutoff", cutoff)
    try:
        sort_field, descending = search.parse_sort(body.get("sort"), None)
        query = body.get("query")
        cache_key = (
            model,
            orjson.dumps(query, option=orjson.OPT_SORT_KEYS),
            sort_field,
            day_granular,
            state.ws.version,
            lag_bucket,
        )
        ordered = state.search_cache.lookup(cache_key)
        if ordered is None:
            predicate = search.compile_query(query, model=model, timezone=state.ws.timezone, day_granular=day_granular)
            fields = search.query_fields(query)
            window = updated_range(query, state.ws.timezone, day_granular)
            if model in LIGHT_MODELS and window is not None and sort_field == "updated_at" and cutoff is None:
                ordered = updated_slice(state, model, *window)
            elif model in LIGHT_MODELS and fields <= LIGHT_FIELDS and sort_field in (None, *LIGHT_FIELDS):
                ordered = light_ordered(state, model, predicate, sort_field, cutoff, need_id="id" in fields)
            else:
                rows = [r for r in all_records(state, model) if predicate(r)]
                if cutoff is not None:
                    rows = [r for r in rows if _updated_at(r) <= cutoff]
                ordered = Ordered(rows, sort_field)
            state.search_cache.put(cache_key, ordered)
    except search.SearchError as err:
        raise ApiError(400, err.code, err.message) from err
    cursor = pagination.get("starting_after")
    fate = request.get(FATE_KEY)
    once = fate is not None and fate.search_cursor_once  # a cursor as a stateful one: taken once
    if once and isinstance(cursor, str):
        cursor = state.faults.take_cursor(cursor)
        if cursor is None:
            raise ApiError(400, "parameter_invalid", "starting_after was sent before")
    chunk, pages = cursor_page(ordered, descending, per_page, cursor)
    if once and isinstance(pages.get("next"), dict):
        pages["next"]["starting_after"] = state.faults.issue_cursor(pages["next"]["starting_after"])
    if model != "tickets":
        return page_response(request, model, ordered, chunk, list_type, items_key, pages)
    # real ticket search items embed their parts (unlike conversations)
    records = [_with_parts(state.ws, dict(t)) for t in page_records(state, model, ordered, chunk)]
    return json_response(
        {
            "type": list_type,
            items_key: apply_data_faults(request, records),
            "total_count": len(ordered.records),
            "pages": pages,
        }
    )


def _updated_at(record: dict[str, Any]) -> int:
    try:
        return int(record.get("updated_at") or 0)
    except (TypeError, ValueError):
        return 0


async def search_contacts(request: web.Request) -> web.Response:
    return _search(request, "contacts", await _read_json(request))


async def search_conversations(request: web.Request) -> web.Response:
    return _search(request, "conversations", await _read_json(request))


async def search_tickets(request: web.Request) -> web.Response:
    return _search(request, "tickets", await _read_json(request))


def _with_parts(ws: Any, ticket: dict[str, Any]) -> dict[str, Any]:
    """The ticket with all its `ticket_parts` (2.15 ticket_part.list)."""
    parts = ws.ticket_parts(ticket["id"])
    ticket["ticket_parts"] = {"type": "ticket_part.list", "ticket_parts": parts, "total_count": len(parts)}
    return ticket


async def get_ticket(request: web.Request) -> web.Response:
    """GET /tickets/{id}: the ticket with all its `ticket_parts`."""
    state = state_of(request)
    ticket = state.ws.get("tickets", request.match_info["id"])
    if ticket is None:
        raise not_found("Ticket Not Found", "ticket_not_found")
    return one_record(request, _with_parts(state.ws, ticket))

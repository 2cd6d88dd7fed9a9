"""Intercom API routes (2.15 response shapes), pagination and search wiring.

Why separate from server.py: server.py is the request pipeline (auth, limits, faults); this is
what each endpoint answers. Every handler reads the workspace store only through its contract
(docs/emulator-contract.md) and returns fresh JSON.
"""

from __future__ import annotations

import html
import math
import re
import time
import uuid
from bisect import bisect_left, bisect_right
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

from intercom_emulator import search
from intercom_emulator.server import FATE_KEY, STATE_KEY, ApiError, EmulatorState, ScrollState, json_response

MAX_PER_PAGE = 150
COMPANY_MAX_PER_PAGE = 60
PARTS_LIMIT = 500
SEARCH_MODELS = {
    "contacts": ("list", "data", 50),
    "conversations": ("conversation.list", "conversations", 20),
    "tickets": ("ticket.list", "tickets", 20),
}
_TAG_RE = re.compile(r"<[^>]+>")


def _state(request: web.Request) -> EmulatorState:
    return request.app[STATE_KEY]


def _int_param(value: Any, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, "parameter_invalid", f"{name} must be an integer") from exc


def _per_page(value: Any, default: int, cap: int = MAX_PER_PAGE) -> int:
    n = _int_param(value, "per_page", default)
    if n < 1:
        raise ApiError(400, "parameter_invalid", "per_page must be positive")
    return min(n, cap)


def _not_found(message: str = "Resource Not Found", code: str = "not_found") -> ApiError:
    return ApiError(404, code, message)


# ---------------------------------------------------------------- data faults


def _drift(obj: dict[str, Any]) -> None:
    """Integer timestamps/counts arrive as strings on some records (seen in real data)."""
    for key in ("created_at", "updated_at", "user_count", "session_count"):
        value = obj.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            obj[key] = str(value)


def _apply_data_faults(request: web.Request, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Unknown extra fields and type drift, per record, on copies (the caches stay clean)."""
    fate = request.get(FATE_KEY)
    if fate is None or (not fate.extra_fields_rate and not fate.type_drift_rate):
        return records
    faults = _state(request).faults
    out = []
    for rec in records:
        extra = faults.chance(fate.extra_fields_rate)
        drift = faults.chance(fate.type_drift_rate)
        if extra or drift:
            rec = orjson.loads(orjson.dumps(rec))
            if extra:
                rec["x_unannounced_field"] = {"added_in": "a future API release", "n": 1}
                rec["ai_flag_v3"] = True
            if drift:
                _drift(rec)
        out.append(rec)
    return out


def _one(request: web.Request, record: dict[str, Any]) -> web.Response:
    return json_response(_apply_data_faults(request, [record])[0])


# ---------------------------------------------------------------- cached model snapshots


def _all(state: EmulatorState, model: str) -> list[dict[str, Any]]:
    """All live records of a model, cached per workspace version (callers must not mutate)."""
    key = (model, state.ws.version)
    cached = state.model_cache.lookup(key)
    if cached is None:
        cached = list(state.ws.iter(model))
        state.model_cache.put(key, cached)
    return cached


class Ordered:
    """Items sorted ascending by key, for forward-only cursor paging by bisect.

    `items` are full records, or (when `by_id`) record ids that a page materialises itself: a
    result over a million records then holds keys and ids only, and a page builds its <= 150 dicts.
    """

    __slots__ = ("records", "keys", "by_id")

    def __init__(self, records: list[dict[str, Any]], field: str | None) -> None:
        pairs = sorted(((search.record_key(r, field), r) for r in records), key=lambda p: p[0])
        self.keys = [k for k, _ in pairs]
        self.records: list[Any] = [r for _, r in pairs]
        self.by_id = False

    @classmethod
    def of_ids(cls, pairs: list[tuple[tuple[Any, ...], str]]) -> Ordered:
        """From (key, id) pairs; pages materialise their records."""
        pairs.sort(key=lambda p: p[0])
        out = cls.__new__(cls)
        out.keys = [k for k, _ in pairs]
        out.records = [i for _, i in pairs]
        out.by_id = True
        return out


def _page_records(state: EmulatorState, model: str, ordered: Ordered, chunk: list[Any]) -> list[dict[str, Any]]:
    """The records of one page (ids materialised now; a record deleted since the result was built is skipped)."""
    if not ordered.by_id:
        return chunk
    return [r for r in (state.ws.get(model, i) for i in chunk) if r is not None]


# Search queries touching only these fields (and sorts on them) are answered from the store's
# compact columns (`Workspace.timestamps`) instead of materialising every record.
LIGHT_FIELDS = frozenset({"id", "created_at", "updated_at"})
LIGHT_MODELS = frozenset({"contacts", "companies", "conversations"})


def _light_ordered(
    state: EmulatorState, model: str, predicate: search.Predicate | None, field: str | None,
    cutoff: int | None, need_id: bool,
) -> Ordered:
    """Ordered ids of the live records matching a date/id-only predicate, no record materialised."""
    ws = state.ws
    pairs: list[tuple[tuple[Any, ...], str]] = []
    for i, created, updated in ws.timestamps(model):
        if cutoff is not None and updated > cutoff:
            continue
        row: dict[str, Any] = {"created_at": created, "updated_at": updated}
        if need_id:
            row["id"] = ws.id_at(model, i)
        if predicate is None or predicate(row):
            if not need_id:
                row["id"] = ws.id_at(model, i)
            pairs.append((search.record_key(row, field), row["id"]))
    return Ordered.of_ids(pairs)


def _cursor_page(
    ordered: Ordered, descending: bool, per_page: int, cursor: str | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One page after `cursor` plus Intercom's `pages` object (next absent on the last page)."""
    total = len(ordered.records)
    page = 1
    if cursor:
        try:
            page, key = search.decode_cursor(cursor)
        except search.SearchError as err:
            raise ApiError(400, "parameter_invalid", err.message) from err
        if descending:
            end = bisect_left(ordered.keys, key)
            start = max(0, end - per_page)
        else:
            start = bisect_right(ordered.keys, key)
            end = start + per_page
    elif descending:
        end, start = total, max(0, total - per_page)
    else:
        start, end = 0, per_page
    chunk = ordered.records[start:end]
    more = start > 0 if descending else end < total
    if descending:
        chunk = chunk[::-1]
    pages: dict[str, Any] = {
        "type": "pages",
        "page": page,
        "per_page": per_page,
        "total_pages": math.ceil(total / per_page) if total else 0,
    }
    if more and chunk:
        last_key = ordered.keys[start] if descending else ordered.keys[end - 1]
        pages["next"] = {"page": page + 1, "starting_after": search.encode_cursor(page + 1, last_key)}
    return chunk, pages


def _self_url(request: web.Request, path: str, params: dict[str, str]) -> str:
    """An absolute URL on the host:port this request came to (Host header), as Intercom's `pages.next`."""
    return f"{request.scheme}://{request.host}{path}?{urlencode(params)}"


# ---------------------------------------------------------------- admins, me, small lists


async def get_me(request: web.Request) -> web.Response:
    return json_response(_state(request).ws.me())


async def list_admins(request: web.Request) -> web.Response:
    """GET /admins: `avatar` only with `display_avatar=true` (2.15 parameter, "Defaults to false")."""
    admins = list(_state(request).ws.iter("admins"))
    if request.query.get("display_avatar", "false").lower() != "true":
        for admin in admins:
            admin.pop("avatar", None)
    return json_response({"type": "admin.list", "admins": admins})


async def get_admin(request: web.Request) -> web.Response:
    admin = _state(request).ws.get("admins", request.match_info["id"])
    if admin is None:
        raise _not_found("Admin not found", "admin_not_found")  # exactly the spec example's message
    return _one(request, admin)


async def activity_logs(request: web.Request) -> web.Response:
    state = _state(request)
    q = request.query
    if not q.get("created_at_after"):
        raise ApiError(400, "parameter_invalid", "created_at_after is a required parameter")
    after = _int_param(q.get("created_at_after"), "created_at_after", 0)
    before = _int_param(q.get("created_at_before"), "created_at_before", 0) or None
    cap = state.knobs.activity_logs_max_window_seconds
    if cap and ((before or state.ws.clock.now()) - after) > cap:
        raise ApiError(500, "server_error", "Request timed out; try a narrower created_at window")
    page = max(1, _int_param(q.get("page"), "page", 1))
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
        next_url = _self_url(request, "/admins/activity_logs", params)
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
            "activity_logs": _apply_data_faults(request, chunk),
        }
    )


async def list_teams(request: web.Request) -> web.Response:
    return json_response({"type": "team.list", "teams": list(_state(request).ws.iter("teams"))})


async def list_tags(request: web.Request) -> web.Response:
    return json_response({"type": "list", "data": list(_state(request).ws.iter("tags"))})


async def list_segments(request: web.Request) -> web.Response:
    """`count` (live contacts in the segment) only with include_count=true; the store keeps it current."""
    state = _state(request)
    include = request.query.get("include_count", "false").lower() == "true"
    segments = list(state.ws.iter("segments"))
    if not include:
        for seg in segments:
            seg.pop("count", None)
    return json_response({"type": "segment.list", "segments": segments})


async def data_attributes(request: web.Request) -> web.Response:
    state = _state(request)
    model = request.query.get("model")
    models = ["contact", "company", "conversation"]
    if model is not None and model not in models:
        raise ApiError(400, "parameter_invalid", "model must be one of contact, company, conversation")
    rows: list[dict[str, Any]] = []
    for m in [model] if model else models:
        rows.extend(state.ws.data_attributes(m))
    return json_response({"type": "list", "data": rows})


# ---------------------------------------------------------------- contacts


def _contact(state: EmulatorState, contact_id: str) -> dict[str, Any]:
    contact = state.ws.get("contacts", contact_id)
    if contact is None:
        raise _not_found("User Not Found")
    return contact


async def list_contacts(request: web.Request) -> web.Response:
    return _cursor_list(request, "contacts", "list", "data", 50)


async def get_contact(request: web.Request) -> web.Response:
    return _one(request, _contact(_state(request), request.match_info["id"]))


def _contact_sublist(request: web.Request, rows_of: str, paged: bool) -> web.Response:
    """GET /contacts/{id}/<list>: the full list, one page (the 2.15 shapes differ: some are paged)."""
    state = _state(request)
    cid = request.match_info["id"]
    _contact(state, cid)
    rows = getattr(state.ws, rows_of)(cid)
    body: dict[str, Any] = {"type": "list", "data": rows}
    if paged:
        body["pages"] = {"type": "pages", "next": None, "page": 1, "per_page": max(50, len(rows)), "total_pages": 1}
        body["total_count"] = len(rows)
    return json_response(body)


async def contact_companies(request: web.Request) -> web.Response:
    return _contact_sublist(request, "contact_companies", paged=True)


async def contact_tags(request: web.Request) -> web.Response:
    return _contact_sublist(request, "contact_tags", paged=False)


async def contact_segments(request: web.Request) -> web.Response:
    return _contact_sublist(request, "contact_segments", paged=False)


async def contact_notes(request: web.Request) -> web.Response:
    return _contact_sublist(request, "contact_notes", paged=True)


# ---------------------------------------------------------------- cursor lists and search


def _cursor_list(request: web.Request, model: str, list_type: str, items_key: str, default_pp: int) -> web.Response:
    """GET /contacts, GET /conversations: creation order, forward-only cursor."""
    state = _state(request)
    per_page = _per_page(request.query.get("per_page"), default_pp)
    key = ("list", model, state.ws.version)
    ordered = state.search_cache.lookup(key)
    if ordered is None:
        ordered = _light_ordered(state, model, None, "created_at", None, need_id=False)
        state.search_cache.put(key, ordered)
    chunk, pages = _cursor_page(ordered, False, per_page, request.query.get("starting_after"))
    return json_response(
        {
            "type": list_type,
            items_key: _apply_data_faults(request, _page_records(state, model, ordered, chunk)),
            "total_count": len(ordered.records),
            "pages": pages,
        }
    )


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
    state = _state(request)
    list_type, items_key, default_pp = SEARCH_MODELS[model]
    pagination = body.get("pagination") or {}
    if not isinstance(pagination, dict):
        raise ApiError(400, "parameter_invalid", "pagination must be an object")
    per_page = _per_page(pagination.get("per_page"), default_pp)
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
            if model in LIGHT_MODELS and fields <= LIGHT_FIELDS and sort_field in (None, *LIGHT_FIELDS):
                ordered = _light_ordered(state, model, predicate, sort_field, cutoff, need_id="id" in fields)
            else:
                rows = [r for r in _all(state, model) if predicate(r)]
                if cutoff is not None:
                    rows = [r for r in rows if _updated_at(r) <= cutoff]
                ordered = Ordered(rows, sort_field)
            state.search_cache.put(cache_key, ordered)
    except search.SearchError as err:
        raise ApiError(400, err.code, err.message) from err
    chunk, pages = _cursor_page(ordered, descending, per_page, pagination.get("starting_after"))
    return json_response(
        {
            "type": list_type,
            items_key: _apply_data_faults(request, _page_records(state, model, ordered, chunk)),
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


async def get_ticket(request: web.Request) -> web.Response:
    """GET /tickets/{id}: the ticket with all its `ticket_parts` (2.15 ticket_part.list)."""
    state = _state(request)
    ticket_id = request.match_info["id"]
    ticket = state.ws.get("tickets", ticket_id)
    if ticket is None:
        raise _not_found("Ticket Not Found", "ticket_not_found")
    parts = state.ws.ticket_parts(ticket_id)
    ticket["ticket_parts"] = {"type": "ticket_part.list", "ticket_parts": parts, "total_count": len(parts)}
    return _one(request, ticket)


# ---------------------------------------------------------------- conversations


async def list_conversations(request: web.Request) -> web.Response:
    return _cursor_list(request, "conversations", "conversation.list", "conversations", 20)


def _plain(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    text = re.sub(r"(?i)<br\s*/?>|</p>", "\n", text)
    return html.unescape(_TAG_RE.sub("", text)).strip()


async def get_conversation(request: web.Request) -> web.Response:
    state = _state(request)
    conv_id = request.match_info["id"]
    plaintext = request.query.get("display_as") == "plaintext"
    key = (conv_id, plaintext, state.ws.version)
    payload = state.detail_cache.lookup(key)
    if payload is None:
        conv = state.ws.get("conversations", conv_id)
        if conv is None:
            raise _not_found()
        parts = state.ws.conversation_parts(conv_id)
        shown = parts[-PARTS_LIMIT:]
        if plaintext:
            source = conv.get("source")
            if isinstance(source, dict):
                source["body"] = _plain(source.get("body"))
            for part in shown:
                part["body"] = _plain(part.get("body"))
        conv["conversation_parts"] = {
            "type": "conversation_part.list",
            "conversation_parts": shown,
            "total_count": len(parts),
        }
        payload = orjson.dumps(conv)
        state.detail_cache.put(key, payload)
    fate = request.get(FATE_KEY)
    if fate is not None and (fate.extra_fields_rate or fate.type_drift_rate):
        return _one(request, orjson.loads(payload))
    return web.Response(body=payload, content_type="application/json")


# ---------------------------------------------------------------- companies


def _company(state: EmulatorState, company_id: str) -> dict[str, Any]:
    company = state.ws.get("companies", company_id)
    if company is None:
        raise _not_found("Company Not Found", "company_not_found")
    return company


def _has_users(state: EmulatorState, company: dict[str, Any]) -> bool:
    count = company.get("user_count")
    if count is None:
        count = state.ws.company_contact_count(company["id"])
    return int(count) > 0


def _company_page(request: web.Request, rows: list[dict[str, Any]], page: int, per_page: int, path: str) -> web.Response:
    """Page-number company lists: leave out companies without users, stop at the cap."""
    state = _state(request)
    with_users = [c for c in rows if _has_users(state, c)]
    visible = with_users[: state.knobs.company_list_cap]
    total_pages = math.ceil(len(visible) / per_page) if visible else 0
    chunk = visible[(page - 1) * per_page : page * per_page]
    next_url = None
    if page < total_pages:
        params = {k: v for k, v in request.query.items() if k not in ("page", "per_page")}
        next_url = _self_url(request, path, {**params, "per_page": str(per_page), "page": str(page + 1)})
    return json_response(
        {
            "type": "list",
            "data": _apply_data_faults(request, chunk),
            "pages": {"type": "pages", "next": next_url, "page": page, "per_page": per_page, "total_pages": total_pages},
            "total_count": len(with_users),
        }
    )


def _companies_by_recency(state: EmulatorState, descending: bool = True) -> list[dict[str, Any]]:
    rows = _all(state, "companies")

    def key(c: dict[str, Any]) -> tuple[int, str]:
        return (int(c.get("last_request_at") or c.get("updated_at") or 0), str(c["id"]))

    return sorted(rows, key=key, reverse=descending)


async def list_companies(request: web.Request) -> web.Response:
    state = _state(request)
    q = request.query
    if q.get("company_id"):
        company = state.ws.company_by_company_id(q["company_id"])
        if company is None:
            raise _not_found("Company Not Found", "company_not_found")
        return _one(request, company)
    if q.get("name"):
        company = state.ws.company_by_name(q["name"])
        if company is None:
            raise _not_found("Company Not Found", "company_not_found")
        return _one(request, company)
    rows = _companies_by_recency(state)
    if q.get("tag_id"):
        rows = [c for c in rows if q["tag_id"] in search.resolve(c, "tags.tags.id")]
    if q.get("segment_id"):
        rows = [c for c in rows if q["segment_id"] in search.resolve(c, "segments.segments.id")]
    page = max(1, _int_param(q.get("page"), "page", 1))
    per_page = _per_page(q.get("per_page"), 15, COMPANY_MAX_PER_PAGE)
    return _company_page(request, rows, page, per_page, "/companies")


async def post_companies_list(request: web.Request) -> web.Response:
    state = _state(request)
    q = request.query
    # `order`: "`asc` or `desc` ... Defaults to desc" (a plain string, no enum, no documented 400):
    # anything but asc (any case) lists most recent first.
    order = "asc" if (q.get("order") or "").strip().lower() == "asc" else "desc"
    page = max(1, _int_param(q.get("page"), "page", 1))
    per_page = _per_page(q.get("per_page"), 15, COMPANY_MAX_PER_PAGE)
    return _company_page(request, _companies_by_recency(state, order == "desc"), page, per_page, "/companies/list")


async def get_company(request: web.Request) -> web.Response:
    return _one(request, _company(_state(request), request.match_info["id"]))


async def company_segments(request: web.Request) -> web.Response:
    state = _state(request)
    cid = request.match_info["id"]
    _company(state, cid)
    return json_response({"type": "list", "data": state.ws.company_segments(cid)})


async def companies_scroll(request: web.Request) -> web.Response:
    """One scroll per workspace, same scroll_param every page, empty `data` at the end."""
    state = _state(request)
    knobs = state.knobs
    cfg = state.faults.config_for("GET /companies/scroll")
    now = time.monotonic()
    scroll = state.scroll
    if scroll is not None and (scroll.done or now - scroll.last_used > knobs.scroll_idle_timeout):
        state.scroll = scroll = None
    param = request.query.get("scroll_param")
    if not param:
        if scroll is not None or cfg.force_scroll_exists:
            raise ApiError(400, "scroll_exists", "scroll already exists for this workspace")
        scroll = ScrollState(param=str(uuid.uuid4()), ids=list(state.ws.ids("companies")), last_used=now)
        state.scroll = scroll
    elif scroll is None or scroll.param != param:
        raise ApiError(404, "scroll_parameter_not_found", "scroll parameter not found or expired")
    scroll.last_used = now
    scroll.page += 1
    if (
        cfg.scroll_error_on_page
        and scroll.page == cfg.scroll_error_on_page
        and state.faults.scroll_errors_fired < cfg.scroll_error_times
    ):
        state.faults.scroll_errors_fired += 1
        state.scroll = None
        raise ApiError(
            500,
            "server_error",
            "Request failed due to an internal network error. Please restart the scroll operation.",
        )
    rows: list[dict[str, Any]] = []
    while scroll.position < len(scroll.ids) and len(rows) < knobs.scroll_page_size:
        company = state.ws.get("companies", scroll.ids[scroll.position])
        scroll.position += 1
        if company is not None:
            rows.append(company)
    if not rows:
        scroll.done = True
    return json_response(
        {
            "type": "list",
            "data": _apply_data_faults(request, rows),
            "pages": None,
            "total_count": None,
            "scroll_param": scroll.param,
        }
    )


def register(app: web.Application) -> None:
    """Add every API route; static paths before `{id}` so they win."""
    r = app.router
    r.add_get("/me", get_me)
    r.add_get("/admins", list_admins)
    r.add_get("/admins/activity_logs", activity_logs)
    r.add_get("/admins/{id}", get_admin)
    r.add_get("/teams", list_teams)
    r.add_get("/tags", list_tags)
    r.add_get("/segments", list_segments)
    r.add_get("/data_attributes", data_attributes)
    r.add_get("/contacts", list_contacts)
    r.add_post("/contacts/search", search_contacts)
    r.add_get("/contacts/{id}", get_contact)
    r.add_get("/contacts/{id}/companies", contact_companies)
    r.add_get("/contacts/{id}/tags", contact_tags)
    r.add_get("/contacts/{id}/segments", contact_segments)
    r.add_get("/contacts/{id}/notes", contact_notes)
    r.add_get("/companies", list_companies)
    r.add_post("/companies/list", post_companies_list)
    r.add_get("/companies/scroll", companies_scroll)
    r.add_get("/companies/{id}", get_company)
    r.add_get("/companies/{id}/segments", company_segments)
    r.add_get("/conversations", list_conversations)
    r.add_post("/conversations/search", search_conversations)
    r.add_get("/conversations/{id}", get_conversation)
    r.add_post("/tickets/search", search_tickets)
    r.add_get("/tickets/{id}", get_ticket)

"""Companies: page-number lists that hide companies without users, the workspace's one scroll, segments."""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

from aiohttp import web

from intercom_emulator import search
from intercom_emulator.routes.common import (
    all_records,
    apply_data_faults,
    int_param,
    not_found,
    one_record,
    per_page_of,
    self_url,
    state_of,
)
from intercom_emulator.state import ApiError, EmulatorState, ScrollState, json_response

COMPANY_MAX_PER_PAGE = 60


def _company(state: EmulatorState, company_id: str) -> dict[str, Any]:
    company = state.ws.get("companies", company_id)
    if company is None:
        raise not_found("Company Not Found", "company_not_found")
    return company


def _has_users(state: EmulatorState, company: dict[str, Any]) -> bool:
    count = company.get("user_count")
    if count is None:
        count = state.ws.company_contact_count(company["id"])
    return int(count) > 0


def _company_page(request: web.Request, rows: list[dict[str, Any]], page: int, per_page: int, path: str) -> web.Response:
    """Page-number company lists: leave out companies without users, stop at the cap."""
    state = state_of(request)
    with_users = [c for c in rows if _has_users(state, c)]
    visible = with_users[: state.knobs.company_list_cap]
    total_pages = math.ceil(len(visible) / per_page) if visible else 0
    chunk = visible[(page - 1) * per_page : page * per_page]
    next_url = None
    if page < total_pages:
        params = {k: v for k, v in request.query.items() if k not in ("page", "per_page")}
        next_url = self_url(request, path, {**params, "per_page": str(per_page), "page": str(page + 1)})
    return json_response(
        {
            "type": "list",
            "data": apply_data_faults(request, chunk),
            "pages": {"type": "pages", "next": next_url, "page": page, "per_page": per_page, "total_pages": total_pages},
            "total_count": len(with_users),
        }
    )


def _companies_by_recency(state: EmulatorState, descending: bool = True) -> list[dict[str, Any]]:
    rows = all_records(state, "companies")

    def key(c: dict[str, Any]) -> tuple[int, str]:
        return (int(c.get("last_request_at") or c.get("updated_at") or 0), str(c["id"]))

    return sorted(rows, key=key, reverse=descending)


async def list_companies(request: web.Request) -> web.Response:
    state = state_of(request)
    q = request.query
    if q.get("company_id"):
        company = state.ws.company_by_company_id(q["company_id"])
        if company is None:
            raise not_found("Company Not Found", "company_not_found")
        return one_record(request, company)
    if q.get("name"):
        company = state.ws.company_by_name(q["name"])
        if company is None:
            raise not_found("Company Not Found", "company_not_found")
        return one_record(request, company)
    rows = _companies_by_recency(state)
    if q.get("tag_id"):
        rows = [c for c in rows if q["tag_id"] in search.resolve(c, "tags.tags.id")]
    if q.get("segment_id"):
        rows = [c for c in rows if q["segment_id"] in search.resolve(c, "segments.segments.id")]
    page = max(1, int_param(q.get("page"), "page", 1))
    per_page = per_page_of(q.get("per_page"), 15, COMPANY_MAX_PER_PAGE)
    return _company_page(request, rows, page, per_page, "/companies")


async def post_companies_list(request: web.Request) -> web.Response:
    state = state_of(request)
    q = request.query
    # `order`: "`asc` or `desc` ... Defaults to desc" (a plain string, no enum, no documented 400):
    # anything but asc (any case) lists most recent first.
    order = "asc" if (q.get("order") or "").strip().lower() == "asc" else "desc"
    page = max(1, int_param(q.get("page"), "page", 1))
    per_page = per_page_of(q.get("per_page"), 15, COMPANY_MAX_PER_PAGE)
    return _company_page(request, _companies_by_recency(state, order == "desc"), page, per_page, "/companies/list")


async def get_company(request: web.Request) -> web.Response:
    return one_record(request, _company(state_of(request), request.match_info["id"]))


async def company_segments(request: web.Request) -> web.Response:
    state = state_of(request)
    cid = request.match_info["id"]
    _company(state, cid)
    return json_response({"type": "list", "data": state.ws.company_segments(cid)})


async def companies_scroll(request: web.Request) -> web.Response:
    """One scroll per workspace, same scroll_param every page, empty `data` at the end."""
    state = state_of(request)
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
            "data": apply_data_faults(request, rows),
            "pages": None,
            "total_count": None,
            "scroll_param": scroll.param,
        }
    )

"""GET /contacts and one contact with its own lists, which share the contact lookup and its 404."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from intercom_emulator.routes.common import not_found, one_record, state_of
from intercom_emulator.routes.cursor import cursor_list
from intercom_emulator.state import EmulatorState, json_response


def _contact(state: EmulatorState, contact_id: str) -> dict[str, Any]:
    contact = state.ws.get("contacts", contact_id)
    if contact is None:
        raise not_found("User Not Found")
    return contact


async def list_contacts(request: web.Request) -> web.Response:
    return cursor_list(request, "contacts", "list", "data", 50)


async def get_contact(request: web.Request) -> web.Response:
    return one_record(request, _contact(state_of(request), request.match_info["id"]))


def _contact_sublist(request: web.Request, rows_of: str, paged: bool) -> web.Response:
    """GET /contacts/{id}/<list>: the full list, one page (the 2.15 shapes differ: some are paged)."""
    state = state_of(request)
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

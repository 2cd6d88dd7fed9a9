"""Intercom API routes (2.15 response shapes): the route table over one module per resource family.

Why separate from server.py: server.py is the request pipeline (auth, limits, faults); this is
what each endpoint answers. Every handler reads the workspace store only through its contract
(docs/emulator-contract.md) and returns fresh JSON.
"""

from __future__ import annotations

from aiohttp import web

from intercom_emulator.routes.companies import (
    companies_scroll,
    company_segments,
    get_company,
    list_companies,
    post_companies_list,
)
from intercom_emulator.routes.contacts import (
    contact_companies,
    contact_notes,
    contact_segments,
    contact_tags,
    get_contact,
    list_contacts,
)
from intercom_emulator.routes.conversations import get_conversation, list_conversations
from intercom_emulator.routes.deleted import deleted_conversations
from intercom_emulator.routes.lists import (
    activity_logs,
    data_attributes,
    get_admin,
    get_me,
    list_admins,
    list_segments,
    list_tags,
    list_teams,
)
from intercom_emulator.routes.searches import (
    get_ticket,
    search_contacts,
    search_conversations,
    search_tickets,
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
    r.add_get("/conversations/deleted", deleted_conversations)
    r.add_get("/conversations/{id}", get_conversation)
    r.add_post("/tickets/search", search_tickets)
    r.add_get("/tickets/{id}", get_ticket)

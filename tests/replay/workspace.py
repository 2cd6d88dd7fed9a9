"""The whole replay workspace for one `Intercom-Version`: `records.py` plus conversations and tickets.

Conversations are kept in their detail shape (GET /conversations/{id}, with parts); the server
leaves `conversation_parts` out of search results, as Intercom does. Tickets keep their parts,
which Intercom embeds in search results too.
"""

from __future__ import annotations

from typing import Any

from tests.replay import captures
from tests.replay.records import (
    ADMIN_IDS,
    CONTACT_IDS,
    DAY,
    HOUR,
    TEAM_IDS,
    VERSIONS,
    Record,
    Workspace,
    add_companies,
    add_contacts,
    add_data_attributes,
    add_people,
)

CONVERSATION_IDS = ("215470000000101", "215470000000102", "215470000000103")
TICKET_IDS = ("701", "702")


def build(version: str, now: int) -> Workspace:
    """The replay workspace as Intercom answers `Intercom-Version: version`."""
    if version not in VERSIONS:
        raise ValueError(f"no replay shapes for Intercom-Version {version!r}")
    ws = Workspace(version, now)
    add_people(ws)
    add_companies(ws)
    add_contacts(ws)
    add_data_attributes(ws)
    add_conversations(ws)
    add_tickets(ws)
    return ws


# ----------------------------------------------------------------------------- conversations
def _statistics(**values: int | None) -> Record:
    """Every statistics key is sent, null when empty; `last_closed_by_id` is an integer."""
    keys = ("time_to_assignment", "time_to_admin_reply", "time_to_first_close", "time_to_last_close",
            "median_time_to_reply", "first_contact_reply_at", "first_assignment_at", "first_admin_reply_at",
            "first_close_at", "last_assignment_at", "last_assignment_admin_reply_at", "last_contact_reply_at",
            "last_admin_reply_at", "last_close_at", "last_closed_by_id")
    stats: Record = {"type": "conversation_statistics", **dict.fromkeys(keys)}
    stats.update({"count_reopens": 0, "count_assignments": 0, "count_conversation_parts": 0})
    stats.update(values)
    return stats


def _author(kind: str) -> Record:
    if kind == "user":
        return {"id": CONTACT_IDS[0], "type": "user", "name": "Person 1", "email": "person1@replay.example"}
    if kind == "bot":
        return {"id": ADMIN_IDS[1], "type": "bot", "name": "Fin", "email": "operator+rpl4y000@intercom.io"}
    return {"id": ADMIN_IDS[0], "type": "admin", "name": "Replay Ops", "email": "ops@replay.example"}


def _part(part_id: str, part_type: str, at: int, author: str, body: str | None = None,
          assigned_to: Record | None = None) -> Record:
    return {"type": "conversation_part", "id": part_id, "part_type": part_type, "body": body,
            "created_at": at, "updated_at": at, "notified_at": at, "assigned_to": assigned_to,
            "author": _author(author), "attachments": [], "external_id": None, "redacted": False}


def _versioned_conversation(ws: Workspace, conv: Record) -> Record:
    """2.16: null assignees become 0, `not_priority` becomes `none`, and three keys appear."""
    if ws.version != "2.16":
        return conv
    for key in ("admin_assignee_id", "team_assignee_id"):
        if conv[key] is None:
            conv[key] = 0
    if conv["priority"] == "not_priority":
        conv["priority"] = "none"
    conv.update({"channel": {"initial": "messenger", "current": "messenger"}, "external_references": [],
                 "sales_agent": None})
    return conv


def _conversation(ws: Workspace, cid: str, created: int, **fields: Any) -> Record:
    conv: Record = {
        "type": "conversation", "id": cid, "created_at": created, "updated_at": created + 2 * HOUR,
        "waiting_since": None, "snoozed_until": None, "source": None,
        "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": CONTACT_IDS[0],
                                                           "external_id": "ext-1"}]},
        "first_contact_reply": None, "admin_assignee_id": None, "team_assignee_id": None, "open": True,
        "state": "open", "read": False, "tags": {"type": "tag.list", "tags": []}, "priority": "not_priority",
        "sla_applied": None, "statistics": _statistics(), "conversation_rating": None,
        "teammates": {"type": "admin.list", "admins": []}, "title": None, "custom_attributes": {},
        "topics": {}, "ticket": None,
        "linked_objects": {"type": "list", "data": [], "total_count": 0, "has_more": False},
    }
    conv.update(fields)
    return _versioned_conversation(ws, conv)


def add_conversations(ws: Workspace) -> None:
    t0 = ws.now - 5 * DAY
    parts_1 = [
        _part("900001", "assignment", t0 + 60, "admin", assigned_to={"type": "admin", "id": ADMIN_IDS[0]}),
        _part("900002", "note", t0 + 60, "admin", "This is an example of a conversation with a linked ticket."),
        _part("900003", "comment", t0 + 120, "user", "The exported PDF is missing the milestones."),
        _part("900004", "comment", t0 + 120, "admin", "Thanks, we are looking into it."),
        _part("900006", "conversation_attribute_updated_by_admin", t0 + 180, "bot"),
        _part("900008", "ticket_state_updated_by_admin", t0 + 240, "admin"),
        _part("900010", "entity_linked", t0 + 300, "admin"),
        _part("900012", "assignment", t0 + 300, "admin", assigned_to={"type": "team", "id": TEAM_IDS[0]}),
    ]
    # NANGO_CONVERSATION: an admin-initiated conversation whose source has `type: null`
    first = _conversation(
        ws, CONVERSATION_IDS[0], t0,
        source={"type": None, "id": CONVERSATION_IDS[0], "delivered_as": "admin_initiated", "subject": "", "body": "",
                "author": {"type": "admin", "id": ADMIN_IDS[1], "name": "Operator",
                           "email": "operator+rpl4y000@intercom.io"},
                "attachments": [], "url": None, "redacted": False},
        first_contact_reply={"created_at": t0 + 120, "type": None, "url": None},
        team_assignee_id=int(TEAM_IDS[0]), read=True,
        statistics=_statistics(first_contact_reply_at=t0 + 120, first_assignment_at=t0 + 300,
                               first_admin_reply_at=t0 + 120, last_assignment_at=t0 + 300,
                               last_contact_reply_at=t0 + 120, last_admin_reply_at=t0 + 120, count_assignments=1,
                               count_conversation_parts=len(parts_1) + 1),
        teammates={"type": "admin.list", "admins": [{"type": "admin", "id": ADMIN_IDS[0]}]},
        custom_attributes={"Copilot used": False, "Language": "English"},
        conversation_parts={"type": "conversation_part.list", "conversation_parts": parts_1,
                            "total_count": len(parts_1)},
    )
    ws.note("conversations", first["id"], captures.NANGO_CONVERSATION)
    # AIRBYTE_RECORDS: an automated message, closed, with statistics filled in and a tag
    t1 = ws.now - 4 * DAY
    parts_2 = [_part("900101", "comment", t1 + 600, "admin", "Test 3 follow-up"),
               _part("900102", "close", t1 + 7200, "admin")]
    second = _conversation(
        ws, CONVERSATION_IDS[1], t1,
        source={"type": "conversation", "id": "51952871", "delivered_as": "automated", "subject": "",
                "body": "<p class=\"no-margin\">Test 3</p>", "author": _author("admin"), "attachments": [],
                "url": None},
        admin_assignee_id=int(ADMIN_IDS[0]), open=False, state="closed", read=True,
        tags={"type": "tag.list", "tags": [{"type": "tag", "id": ws.tags[2]["id"], "name": ws.tags[2]["name"],
                                            "applied_at": t1 + 60, "applied_by": {"type": "admin",
                                                                                  "id": ADMIN_IDS[0]}}]},
        statistics=_statistics(time_to_admin_reply=600, time_to_first_close=7200, time_to_last_close=7200,
                               median_time_to_reply=600, first_admin_reply_at=t1 + 600, first_close_at=t1 + 7200,
                               last_admin_reply_at=t1 + 600, last_close_at=t1 + 7200,
                               last_closed_by_id=int(ADMIN_IDS[0]), count_conversation_parts=len(parts_2)),
        teammates={"type": "admin.list", "admins": [{"type": "admin", "id": ADMIN_IDS[0]},
                                                    {"type": "admin", "id": ADMIN_IDS[2]}]},
        custom_attributes={"Copilot used": True, "Fin AI Agent: Preview": False, "Language": "English"},
        conversation_parts={"type": "conversation_part.list", "conversation_parts": parts_2,
                            "total_count": len(parts_2)},
    )
    ws.note("conversations", second["id"], captures.AIRBYTE_RECORDS)
    # ISSUE_15: a Messenger conversation with `source: null` and no teammates yet
    t2 = ws.now - 3 * DAY
    parts_3 = [_part("900201", "comment", t2 + 30, "user", "Hi, is anyone there?")]
    third = _conversation(
        ws, CONVERSATION_IDS[2], t2, waiting_since=t2 + 30,
        contacts={"type": "contact.list", "contacts": [{"type": "contact", "id": CONTACT_IDS[2],
                                                        "external_id": "ext-3"}]},
        statistics=_statistics(count_conversation_parts=len(parts_3)),
        custom_attributes={"Copilot used": False, "Fin AI Agent: Preview": True, "Language": None},
        conversation_parts={"type": "conversation_part.list", "conversation_parts": parts_3,
                            "total_count": len(parts_3)},
    )
    ws.note("conversations", third["id"], captures.ISSUE_15)
    ws.conversations = [first, second, third]


# ----------------------------------------------------------------------------- tickets
def _ticket_state(ws: Workspace, category: str, label: str) -> Record:
    """2.11: a string plus two label keys (AIRBYTE_TICKETS); from 2.12 an object (OPENAPI_215)."""
    if ws.version == "2.11":
        return {"ticket_state": category, "ticket_state_internal_label": label,
                "ticket_state_external_label": label}
    return {"ticket_state": {"type": "ticket_state", "id": f"47065{len(category)}", "category": category,
                             "internal_label": label, "external_label": label}}


def _ticket_type(ws: Workspace, type_id: str, name: str, category: str) -> Record:
    at = ws.now - 11 * DAY
    attrs = [{"type": "ticket_type_attribute", "id": f"65941{i}", "workspace_id": "rpl4y000", "name": attr,
              "description": "", "data_type": "string", "input_options": {"multiline": i == 1}, "order": i,
              "required_to_create": False, "required_to_create_for_contacts": False, "visible_on_create": True,
              "visible_to_contacts": False, "default": True, "ticket_type_id": int(type_id), "archived": False,
              "created_at": at, "updated_at": at}
             for i, attr in enumerate(("_default_title_", "_default_description_"))]
    return {"type": "ticket_type", "id": type_id, "name": name, "description": name, "icon": "🏭",
            "workspace_id": "rpl4y000", "archived": False, "created_at": at, "updated_at": at, "is_internal": False,
            "ticket_type_attributes": {"type": "list", "data": attrs}, "category": category}


def _ticket_part(part_id: str, at: int, state: str, previous: str, author: str, body: str | None = None) -> Record:
    part: Record = {"type": "ticket_part", "id": part_id, "part_type": "ticket_state_updated_by_admin",
                    "ticket_state": state, "previous_ticket_state": previous, "created_at": at, "updated_at": at,
                    "author": _author(author), "attachments": [], "redacted": False}
    if body is not None:
        part.update(part_type="comment", body=body)
    return part


def add_tickets(ws: Workspace) -> None:
    t = ws.now - 2 * DAY
    admin_id: int | str = int(ADMIN_IDS[2]) if ws.version == "2.16" else ADMIN_IDS[2]  # an integer at 2.16
    unassigned: int | str = 0 if ws.version == "2.16" else "0"
    specs = (
        (TICKET_IDS[0], "1", "Tracker", "submitted", "Submitted", [], unassigned,
         {"_default_title_": "Export broken", "_default_description_": "PDF export misses milestones"},
         [_ticket_part("19760294812", t + 60, "submitted", "submitted", "bot")]),
        (TICKET_IDS[1], "2", "Customer", "in_progress", "In progress", [CONTACT_IDS[2]], admin_id,
         # ticket_attributes values can be arrays
         {"_default_title_": "Login fails", "_default_description_": "Since Monday", "Browsers": ["Chrome", "Safari"]},
         [_ticket_part("19760294901", t + 120, "submitted", "submitted", "admin"),
          _ticket_part("19760294902", t + 180, "in_progress", "submitted", "admin", "<p>On it.</p>")]),
    )
    for i, (tid, number, category, state, label, contact_ids, assignee, attributes, parts) in enumerate(specs):
        ticket: Record = {
            "type": "ticket", "id": tid, "ticket_id": number, "ticket_attributes": attributes,
            **_ticket_state(ws, state, label),
            "ticket_type": _ticket_type(ws, str(i + 1), f"{category} ticket", category),
            "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": c, "external_id": "ext-3"}
                                                              for c in contact_ids]},
            "admin_assignee_id": assignee, "team_assignee_id": "0",
            "created_at": t + i * HOUR, "updated_at": t + i * HOUR + 200,
            "ticket_parts": {"type": "ticket_part.list", "ticket_parts": parts, "total_count": len(parts)},
            "open": True, "linked_objects": {"type": "list", "data": [], "total_count": 0, "has_more": False},
            "category": category, "is_shared": False,
        }
        ws.tickets.append(ticket)
        ws.note("tickets", tid, captures.AIRBYTE_TICKETS if ws.version == "2.11" else captures.OPENAPI_215)

"""Conversations, their parts, and tickets: generated timelines with statistics derived from parts.

A conversation's parts are generated from its seed on demand; `derive_conversation` then computes
state, assignees, waiting_since, teammates and statistics from the parts alone, so generation and
mutations (which append parts) share one source of truth and can never disagree.
"""

from __future__ import annotations

import random
import statistics as pystats
from typing import Any

from intercom_emulator import generator_text as txt
from intercom_emulator.generator import (
    ADMIN_BASE,
    BOT_ADMIN_ID,
    CONV_BASE,
    DAY,
    PART_BASE,
    PARTS_PER_CONV,
    TEAM_BASE,
    TICKET_BASE,
    TPART_BASE,
    TPARTS_PER_TICKET,
    Generator,
    record_seed,
    shape_rng,
)

ASSIGNMENT_TYPES = ("assignment", "default_assignment", "away_mode_assignment", "assign_and_reopen")
OPEN_CHOICES = (  # (part_type, author_type, weight) while the conversation is open
    ("comment", "user", 30), ("comment", "admin", 26), ("note", "admin", 8), ("assignment", "admin", 7),
    ("default_assignment", "bot", 3), ("away_mode_assignment", "bot", 2), ("quick_reply", "bot", 3),
    ("conversation_attribute_updated_by_admin", "admin", 4), ("close", "admin", 11), ("snoozed", "admin", 6),
)
_OPEN_TYPES = [(p, a) for p, a, _ in OPEN_CHOICES]
_OPEN_WEIGHTS = [w for _, _, w in OPEN_CHOICES]
TICKET_STATES = (("submitted", "Submitted", "Submitted"), ("in_progress", "In progress", "In progress"),
                 ("waiting_on_customer", "Waiting on customer", "Waiting on you"),
                 ("resolved", "Resolved", "Resolved"))
TICKET_TYPES = (("Bug report", "Customer"), ("Billing request", "Back-office"), ("Engineering task", "Tracker"))


# Part types seen in real conversations beyond the generated timeline's own (events without a body).
# A few notes / attribute updates of each conversation are re-typed to these by the shape generator;
# neither kind counts in the statistics, so the derived statistics stay as they were.
EVENT_PART_TYPES = ("company_updated", "conversation_tags_updated", "entity_linked", "language_detection_details",
                    "ticket_state_updated_by_admin")
# Sources of real conversations besides a customer's message: one conversation in five (by index,
# so even the tiny profile has each) has a null `source`, a null or "unknown" `source.type`, or an
# admin-initiated source.
SOURCE_VARIANTS: dict[int, str] = {2: "null-source", 7: "null-type", 12: "unknown", 17: "admin_initiated"}
TOPIC_NAMES = ("Billing", "Login issues", "Feature requests", "Bugs", "Onboarding")


def rating(value: int, remark: str | None, created: int, contact: dict, teammate: dict | None) -> dict:
    """A conversation_rating; `remark` is left out when there is none (schema: non-nullable string)."""
    out: dict[str, Any] = {"rating": value}
    if remark is not None:
        out["remark"] = remark
    out.update({"created_at": created, "updated_at": created, "contact": contact, "teammate": teammate})
    return out


def bot_author() -> dict:
    return {"type": "bot", "id": BOT_ADMIN_ID, "name": "Fin", "email": "operator+bot@intercom.test",
            "from_ai_agent": True, "is_ai_answer": False}


def admin_author(admin: dict) -> dict:
    return {"type": "admin", "id": admin["id"], "name": admin["name"], "email": admin["email"],
            "from_ai_agent": False, "is_ai_answer": False}


def user_author(contact_id: str, name: str, email: str) -> dict:
    return {"type": "user", "id": contact_id, "name": name, "email": email,
            "from_ai_agent": False, "is_ai_answer": False}


def make_part(part_id: int, part_type: str, author: dict, created: int, state: str, rng: random.Random,
              body: str | None = None, assigned_to: dict | None = None) -> dict:
    """One conversation_part in the 2.15 shape; `state` is the conversation's state after it."""
    if body is None and part_type in ("comment", "note", "quick_reply"):
        body = txt.html_body(rng, 1 + (rng.random() < 0.2))
    part = {"type": "conversation_part", "id": str(part_id), "part_type": part_type, "body": body,
            "created_at": created, "updated_at": created, "notified_at": created, "assigned_to": assigned_to,
            "author": author, "attachments": [], "external_id": None, "redacted": False,
            "email_message_metadata": None, "metadata": None, "state": state, "tags": [],
            "event_details": None, "app_package_code": None}
    if part_type == "quick_reply":
        part["metadata"] = {"quick_reply_options": [{"text": "Yes", "uuid": f"{part_id}-1"},
                                                    {"text": "No", "uuid": f"{part_id}-2"}],
                            "quick_reply_uuid": f"{part_id}-q"}
    elif part_type == "conversation_attribute_updated_by_admin":
        part["event_details"] = {"attribute": {"name": "priority_reason"}, "value": {"name": "billing"}}
    return part


def next_state(part_type: str, author_type: str, state: str) -> str:
    """The conversation state after a part (a user reply reopens a closed or snoozed conversation)."""
    if part_type == "close":
        return "closed"
    if part_type == "snoozed":
        return "snoozed"
    if part_type in ("open", "assign_and_reopen") or (part_type == "comment" and author_type == "user"):
        return "open"
    return state


def derive_conversation(conv: dict, parts: list[dict], snoozed_until: int | None = None) -> None:
    """Set state, open, assignees, waiting_since, teammates and statistics of `conv` from its parts."""
    created = conv["created_at"]
    state = parts[-1]["state"] if parts else "open"
    admin_assignee = team_assignee = None
    first_user = last_user = first_admin = last_admin = None
    first_asg = last_asg = first_close = last_close = None
    last_closed_by = None
    reopens = assignments = 0
    last_asg_reply = None
    reply_delays: list[int] = []
    pending_user: int | None = created  # the source message waits for an admin reply
    teammates: list[str] = []
    prev_state = "open"
    for p in parts:
        pt, a, t = p["part_type"], p["author"], p["created_at"]
        if a["type"] == "admin" and a["id"] not in teammates:
            teammates.append(a["id"])
        if pt == "comment" and a["type"] == "user":
            first_user = first_user or t
            last_user = t
            pending_user = pending_user if pending_user is not None else t
        elif pt == "comment" and a["type"] == "admin":
            first_admin = first_admin or t
            last_admin = t
            if pending_user is not None:
                reply_delays.append(t - pending_user)
                pending_user = None
            if last_asg is not None and last_asg_reply is None:
                last_asg_reply = t
        if pt in ASSIGNMENT_TYPES:
            assignments += 1
            first_asg = first_asg or t
            last_asg, last_asg_reply = t, None
            to = p.get("assigned_to") or {}
            if to.get("type") == "admin":
                admin_assignee = int(to["id"])
            elif to.get("type") == "team":
                team_assignee = int(to["id"])
        if pt == "close":
            first_close = first_close or t
            last_close, last_closed_by = t, a["id"]
        if prev_state == "closed" and p["state"] == "open":
            reopens += 1
        prev_state = p["state"]
    last_snooze = next((p for p in reversed(parts) if p["part_type"] == "snoozed"), None)
    conv["state"] = state
    conv["open"] = state != "closed"
    if state == "snoozed" and last_snooze is not None:
        conv["snoozed_until"] = snoozed_until if snoozed_until is not None else last_snooze["created_at"] + 3 * DAY
    else:
        conv["snoozed_until"] = None
    conv["waiting_since"] = pending_user if state == "open" and pending_user is not None and (
        last_user is not None or first_admin is None) else None
    conv["admin_assignee_id"] = admin_assignee
    conv["team_assignee_id"] = team_assignee
    # every real sample (2.9 to 2.16) lists teammates under `admins` (the spec says `teammates`)
    conv["teammates"] = {"type": "admin.list", "admins": [{"type": "admin", "id": i} for i in teammates]}
    source = conv.get("source")
    reply_type = source.get("type") if isinstance(source, dict) else None
    conv["first_contact_reply"] = {"created_at": first_user, "type": reply_type if reply_type != "unknown" else None,
                                   "url": None} if first_user else None

    def since(t: int | None) -> int | None:
        return None if t is None else t - created

    stats = {
        "type": "conversation_statistics", "time_to_assignment": since(first_asg),
        "time_to_admin_reply": since(first_admin), "time_to_first_close": since(first_close),
        "time_to_last_close": since(last_close),
        "median_time_to_reply": int(pystats.median(reply_delays)) if reply_delays else None,
        "first_contact_reply_at": first_user, "first_assignment_at": first_asg,
        "first_admin_reply_at": first_admin, "first_close_at": first_close, "last_assignment_at": last_asg,
        "last_assignment_admin_reply_at": last_asg_reply, "last_contact_reply_at": last_user,
        "last_admin_reply_at": last_admin, "last_close_at": last_close,
        "last_closed_by_id": int(last_closed_by) if last_closed_by is not None else None,
        "count_reopens": reopens, "count_assignments": assignments, "count_conversation_parts": len(parts),
        "assigned_team_first_response_time": [], "assigned_team_first_response_time_in_office_hours": [],
        "handling_time": (last_close - created) if last_close else 0, "adjusted_handling_time": None,
    }
    # Real responses send every key, null while a metric is unknown (the schema types them
    # non-nullable; public captures and every connector schema have them nullable).
    conv["statistics"] = stats


class ConversationGenerator:
    """Conversation and ticket generation on top of a Generator (ids, admins, identities)."""

    def __init__(self, gen: Generator) -> None:
        self.g = gen

    def core(self, rng: random.Random, index: int, created: int) -> tuple[int, int, int]:
        """(updated_at, contact index, number of parts): the first draws of a conversation."""
        g = self.g
        frac = (created - g.history_start) / max(1, g.span)
        contact = rng.randrange(max(1, min(g.counts.contacts, int(frac * g.counts.contacts) + 1)))
        if index in g.long_conv:
            return created + int((g.anchor - created) * 0.95), contact, g.long_conv[index]
        n_parts = 0 if rng.random() < 0.04 else rng.randint(1, 2 * g.profile.avg_parts - 1)
        if n_parts == 0:
            return created, contact, 0
        dur = int(min(g.anchor - created, 60 * 60 * 24 * 30 * rng.random() ** 3 + 120 * n_parts))
        return created + max(n_parts, dur), contact, n_parts

    def conversation(self, index: int) -> tuple[dict, list[dict]]:
        """(conversation without parts, all parts oldest first), statistics derived from the parts."""
        g = self.g
        rng = random.Random(record_seed(g.seed, "conversations", index))
        created = g.created_at("conversations", index)
        updated, cidx, n_parts = self.core(rng, index, created)
        updated = min(updated, g.anchor - 1)
        contact_id = g.contact_id(cidx)
        name, email = g.identity(cidx)
        user = user_author(contact_id, name, email)
        ai = rng.random() < 0.15
        times = sorted(rng.randint(created, updated) for _ in range(n_parts))
        if times:
            times[-1] = updated
        final = rng.choices(("closed", "open", "snoozed"), (55, 35, 10))[0]
        parts: list[dict] = []
        state = "open"
        pbase = PART_BASE + index * PARTS_PER_CONV
        for k, t in enumerate(times):
            last = k == n_parts - 1
            if k == 0 and ai:
                pt, at = "comment", "bot"
            elif last:
                pt, at = {"closed": ("close", "admin"), "snoozed": ("snoozed", "admin")}.get(final, (
                    ("comment", "user") if state == "open" else ("open", "admin")))
            elif state != "open":
                pt, at = rng.choice((("comment", "user"), ("comment", "user"), ("open", "admin"),
                                     ("assign_and_reopen", "admin"), ("note", "admin")))
            else:
                pt, at = rng.choices(_OPEN_TYPES, _OPEN_WEIGHTS)[0]
            admin = g.admins[rng.randrange(len(g.admins))]
            author = user if at == "user" else (bot_author() if at == "bot" else admin_author(admin))
            if at == "bot" and pt == "comment":
                author = dict(author, is_ai_answer=True)
            assigned = None
            if pt in ("assignment", "assign_and_reopen", "away_mode_assignment"):
                assigned = {"type": "admin", "id": g.admins[rng.randrange(len(g.admins))]["id"]}
            elif pt == "default_assignment":
                assigned = {"type": "team", "id": str(TEAM_BASE + rng.randrange(max(1, g.counts.teams)))}
            state = next_state(pt, at, state)
            parts.append(make_part(pbase + k, pt, author, t, state, rng, assigned_to=assigned))
        conv = {
            "type": "conversation", "id": str(CONV_BASE + index), "title": rng.choice(txt.TITLES),
            "created_at": created, "updated_at": updated, "waiting_since": None, "snoozed_until": None,
            "open": True, "state": "open", "read": rng.random() < 0.7,
            "priority": "priority" if rng.random() < 0.1 else "not_priority",
            "admin_assignee_id": None, "team_assignee_id": None, "company": None,
            "tags": {"type": "tag.list", "tags": [g.tag_applied(t, created, updated, rng) for t in
                                                  rng.sample(range(len(g.tags)), min(rng.choice((0, 0, 1, 2, 3)), len(g.tags)))]},
            "conversation_rating": None,
            "source": {"type": "conversation", "id": str(CONV_BASE + index), "delivered_as": "customer_initiated",
                       "subject": "", "body": txt.html_body(rng), "author": user, "attachments": [], "url": None,
                       "redacted": False},
            "contacts": {"type": "contact.list", "contacts": [
                {"type": "contact", "id": contact_id, "external_id": g.external_id(cidx)}]},
            "custom_attributes": g.custom_attributes(rng, "conversation", updated),
            "sla_applied": {"type": "conversation_sla_summary", "sla_name": rng.choice(txt.SLA_NAMES),
                            "sla_status": rng.choice(("hit", "missed", "active", "cancelled"))}
            if rng.random() < 0.2 else None,
            "linked_objects": {"type": "list", "total_count": 0, "has_more": False, "data": []},
            "ai_agent_participated": ai,
            "ai_agent": {"source_type": "workflow", "source_title": "Fin answers", "last_answer_type": "ai_answer",
                         "resolution_state": rng.choice(("assumed_resolution", "confirmed_resolution", "escalated")),
                         "rating": rng.choice((None, 3, 4, 5)), "rating_remark": None, "created_at": created,
                         "updated_at": created, "content_sources": {"type": "content_source.list", "total_count": 0,
                                                                    "content_sources": []}} if ai else None,
        }
        self._real_shapes(conv, parts, index)
        derive_conversation(conv, parts)
        first_close = conv["statistics"].get("first_close_at")
        if first_close is not None and rng.random() < 0.35:
            rated = min(updated, first_close + 60)
            value = rng.randint(1, 5)
            remark = rng.choice((None, "Thanks!", "Slow answer", "Great help"))
            conv["conversation_rating"] = rating(
                value, remark, rated, {"type": "contact", "id": contact_id, "external_id": g.external_id(cidx)},
                {"type": "admin", "id": str(conv["statistics"]["last_closed_by_id"])})
        return conv, parts

    def _real_shapes(self, conv: dict, parts: list[dict], index: int) -> None:
        """What real conversations hold and the spec leaves out: null or odd sources, topics, a linked
        ticket, workspace-named custom attributes and event parts (drawn from the shape generator)."""
        g = self.g
        shape = shape_rng(g.seed, "conversations", index)
        variant = SOURCE_VARIANTS.get(index % 20, "conversation")
        if variant == "null-source":
            conv["source"] = None
        elif variant == "null-type":
            conv["source"]["type"] = None
        elif variant == "unknown":
            conv["source"]["type"] = "unknown"
        elif variant == "admin_initiated":
            admin = g.admins[shape.randrange(len(g.admins))]
            conv["source"].update(type="admin_initiated", delivered_as="admin_initiated", author=admin_author(admin))
        n_topics = shape.choice((0, 0, 0, 1, 2))
        topics = [{"type": "topic", "id": 500 + t, "name": TOPIC_NAMES[t]}
                  for t in sorted(shape.sample(range(len(TOPIC_NAMES)), n_topics))]
        conv["topics"] = {"type": "topic.list", "topics": topics, "total_count": len(topics)}
        conv["ticket"] = None
        if g.counts.tickets and shape.random() < 0.1:
            tid = str(TICKET_BASE + shape.randrange(g.counts.tickets))
            conv["ticket"] = {"type": "ticket", "id": tid, "url": f"https://app.intercom.test/tickets/{tid}",
                              "custom_attributes": {}}
        conv["custom_attributes"] = conv["custom_attributes"] | g.real_named_attributes(shape, "conversation")
        for part in parts:
            if part["part_type"] in ("note", "conversation_attribute_updated_by_admin") and shape.random() < 0.3:
                part.update(part_type=shape.choice(EVENT_PART_TYPES), body=None, event_details=None, metadata=None)

    # ---- tickets ---------------------------------------------------------------------------------
    def ticket_types(self) -> list[dict]:
        """The workspace's ticket types (2.15 ticket_type shape, with states and attributes)."""
        g = self.g
        out = []
        for i, (name, category) in enumerate(TICKET_TYPES):
            out.append({
                "type": "ticket_type", "id": str(40 + i), "category": category, "name": name,
                "description": f"{name} tickets", "icon": "🎟️", "workspace_id": g.app_id, "archived": False,
                "created_at": g.history_start, "updated_at": g.history_start + DAY,
                # real responses: {"type": "list", "data": [...]} (the spec: ticket_type_attributes.list)
                "ticket_type_attributes": {"type": "list", "data": [
                    self._tt_attr(i, 0, "_default_title_", "string"),
                    self._tt_attr(i, 1, "_default_description_", "string"),
                    self._tt_attr(i, 2, "Affected areas", "list")]},
                "ticket_states": {"type": "list", "data": [self.ticket_state(s) for s in range(len(TICKET_STATES))]},
            })
        return out

    def _tt_attr(self, tt: int, k: int, name: str, dtype: str) -> dict:
        g = self.g
        return {"type": "ticket_type_attribute", "id": str(900 + tt * 10 + k), "workspace_id": g.app_id,
                "name": name, "description": name.strip("_").replace("_", " "), "data_type": dtype,
                "input_options": {"multiline": k == 1}, "order": k, "required_to_create": k == 0,
                "required_to_create_for_contacts": k == 0, "visible_on_create": True,
                "visible_to_contacts": True, "default": k < 2, "ticket_type_id": 40 + tt, "archived": False,
                "created_at": g.history_start, "updated_at": g.history_start}

    @staticmethod
    def ticket_state(s: int) -> dict:
        cat, internal, external = TICKET_STATES[s]
        return {"type": "ticket_state", "id": str(70 + s), "category": cat, "internal_label": internal,
                "external_label": external}

    def ticket(self, index: int, ticket_types: list[dict]) -> tuple[dict, list[dict]]:
        """(ticket without parts, its parts): state moves submitted -> ... along ticket parts."""
        g = self.g
        rng = random.Random(record_seed(g.seed, "tickets", index))
        created = g.created_at("tickets", index)
        updated = created + int((g.anchor - 1 - created) * rng.random() ** 2)
        cidx = rng.randrange(g.counts.contacts)
        name, email = g.identity(cidx)
        contact_id = g.contact_id(cidx)
        tt = ticket_types[index % len(ticket_types)]
        n = rng.randint(1, 6)
        times = sorted(rng.randint(created, updated) for _ in range(n))
        times[-1] = updated
        state = 0
        parts = []
        admin = g.admins[rng.randrange(len(g.admins))]
        for k, t in enumerate(times):
            prev = state
            if k == 0:
                pt, author = "comment", {"type": "user", "id": contact_id, "name": name, "email": email}
            elif rng.random() < 0.5 and state < 3:
                state = min(3, state + rng.choice((1, 1, 2)))
                pt, author = "ticket_state_updated_by_admin", {k2: admin[k2] for k2 in ("id", "name", "email")} | {"type": "admin"}
            else:
                pt = rng.choice(("comment", "note"))
                author = {"type": "admin", "id": admin["id"], "name": admin["name"], "email": admin["email"]}
            parts.append({"type": "ticket_part", "id": str(TPART_BASE + index * TPARTS_PER_TICKET + k),
                          "part_type": pt,
                          "body": txt.html_body(rng) if pt in ("comment", "note") else None,
                          "previous_ticket_state": TICKET_STATES[prev][0], "ticket_state": TICKET_STATES[state][0],
                          "created_at": t, "updated_at": t, "assigned_to": None, "author": author,
                          "attachments": [], "external_id": None, "redacted": False, "app_package_code": None,
                          "updated_attribute_data": None})
        assignee = admin["id"] if rng.random() < 0.8 else "0"
        attributes: dict[str, Any] = {"_default_title_": rng.choice([t for t in txt.TITLES if t]),
                                      "_default_description_": txt.sentence(rng)}
        shape = shape_rng(g.seed, "tickets", index)
        if shape.random() < 0.4:  # list-typed ticket attributes arrive as arrays
            attributes["Affected areas"] = sorted(shape.sample(("billing", "api", "mobile", "login"), shape.randint(1, 2)))
        ticket = {
            "type": "ticket", "id": str(TICKET_BASE + index), "ticket_id": str(index + 1),
            "category": tt["category"],
            "ticket_attributes": attributes,
            "ticket_state": self.ticket_state(state), "ticket_type": tt,
            "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": contact_id,
                                                               "external_id": g.external_id(cidx)}]},
            "admin_assignee_id": assignee,
            "team_assignee_id": str(TEAM_BASE + rng.randrange(max(1, g.counts.teams))) if rng.random() < 0.5 else "0",
            "created_at": created, "updated_at": updated, "open": state != 3, "snoozed_until": None,
            "linked_objects": {"type": "list", "total_count": 0, "has_more": False, "data": []},
            "is_shared": tt["category"] == "Customer",
        }
        return ticket, parts


def part_id_for(conv_index: int, k: int) -> int:
    """Part id of the k-th part of a conversation (mutations continue the same sequence)."""
    return PART_BASE + conv_index * PARTS_PER_CONV + k


def admin_by_id(admins: list[dict], admin_id: Any) -> dict | None:
    """The admin with this id (str or int), or None."""
    return next((a for a in admins if a["id"] == str(admin_id)), None)


__all__ = ["ADMIN_BASE", "EVENT_PART_TYPES", "ConversationGenerator", "admin_by_id", "derive_conversation",
           "make_part", "next_state", "part_id_for", "rating"]

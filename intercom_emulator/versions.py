"""Answers in the shape of the request's `Intercom-Version`: the store stays 2.15-shaped, this reshapes.

Why at the edge: ground truth (`ws.ground_truth`, `dump`) and every cache stay one stable 2.15 shape;
only the bytes a client receives differ by version. 2.12 to 2.15 share the store's shape, so those
requests (and requests without the header: the app default 2.15) pass through untouched.

Differences (evidence in docs/emulator-contract.md, "Versions"):

* up to 2.11: a ticket's `ticket_state` is the state's category string, plus
  `ticket_state_internal_label` / `ticket_state_external_label` (an object from 2.12);
* up to 2.9: a conversation's linked `ticket.id` is an integer;
* 2.16 (and Preview/Unstable): a conversation's `admin_assignee_id` / `team_assignee_id` are `0`
  where 2.15 sends null, `priority` is `"none"` (not `"not_priority"`; `"priority"` becomes
  `"high"`, an inference from the 2.16 enum), and `channel`, `external_references`, `sales_agent`
  appear; a ticket's `admin_assignee_id` is an integer; contacts gain `email_domain`, companies `notes`.
"""

from __future__ import annotations

from typing import Any

PREVIEW = (99, 0)  # Preview / Unstable: the newest shapes
BASE = (2, 15)  # the store's shape


def version_key(version: str) -> tuple[int, int]:
    """(major, minor) of an accepted version string; Preview/Unstable sort after every number."""
    major, _, minor = version.partition(".")
    if major.isdigit() and minor.isdigit():
        return int(major), int(minor)
    return PREVIEW


def reshapes(version: str) -> bool:
    """True when this version's answers differ from the store's 2.15 shape."""
    key = version_key(version)
    return key < (2, 12) or key >= (2, 16)


def reshape(payload: Any, version: str) -> Any:
    """The payload as `version` sends it (in place; returns it). Walks every nested object."""
    key = version_key(version)
    if not reshapes(version):
        return payload
    _walk(payload, key)
    return payload


def _walk(node: Any, key: tuple[int, int]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, key)
        return
    if not isinstance(node, dict):
        return
    for value in node.values():
        _walk(value, key)
    kind = node.get("type")
    if kind == "conversation" and "state" in node:
        _conversation(node, key)
    elif kind == "ticket" and "ticket_state" in node:
        _ticket(node, key)
    elif kind == "ticket" and key <= (2, 9):  # a conversation's linked ticket
        node["id"] = _int_or(node.get("id"))
    elif kind == "contact" and "role" in node and key >= (2, 16):
        email = node.get("email")
        node["email_domain"] = email.split("@", 1)[1] if isinstance(email, str) and "@" in email else None
    elif kind == "company" and "company_id" in node and key >= (2, 16):
        node["notes"] = {"type": "note.list", "notes": []}


def _conversation(conv: dict[str, Any], key: tuple[int, int]) -> None:
    if key < (2, 16):
        return
    for field in ("admin_assignee_id", "team_assignee_id"):
        if conv.get(field) is None:
            conv[field] = 0
    conv["priority"] = {"not_priority": "none", "priority": "high"}.get(conv.get("priority"), conv.get("priority"))
    conv["channel"] = {"initial": "messenger", "current": "messenger"} if conv.get("source") else None
    conv["external_references"] = []
    conv["sales_agent"] = None


def _ticket(ticket: dict[str, Any], key: tuple[int, int]) -> None:
    state = ticket.get("ticket_state")
    if key < (2, 12) and isinstance(state, dict):
        ticket["ticket_state"] = state.get("category")
        ticket["ticket_state_internal_label"] = state.get("internal_label")
        ticket["ticket_state_external_label"] = state.get("external_label")
    if key >= (2, 16):
        ticket["admin_assignee_id"] = _int_or(ticket.get("admin_assignee_id"))


def _int_or(value: Any) -> Any:
    """An id as an integer when it is a numeric string (else unchanged)."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value

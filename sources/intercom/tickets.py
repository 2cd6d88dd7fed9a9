"""Tickets and ticket parts: their shapes and column hints (the streams are specs in specs.py).

* `tickets`: POST /tickets/search on `updated_at` (ascending, 150 per page, the same day-safe
  lower bound and lookback as conversations), merged on `id`. Each row carries the ticket state
  (`ticket_state__id`, `__category`, `__internal_label`, `__external_label`), its type
  (`ticket_type__id`, `__name`, `__category`), `ticket_attributes` (JSON: keys depend on the
  type) and its contacts as the child table `tickets__contacts` (`ticket_id`, `id`).
* `ticket_parts`: every part of each ticket loaded in the run, from GET /tickets/{id}, merged on
  part `id`, each with `ticket_id` (parts are never filtered by their own time).

Needs the "Read tickets" permission.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dlt.common.schema.typing import TColumnSchema

from . import schema


def shape_ticket(raw: Mapping[str, Any], detail: Mapping[str, Any] | None = None, keep_nulls: bool = False) -> dict[str, Any]:
    row = schema.record_row(raw, keep_nulls)
    for key in ("id", "ticket_id", "admin_assignee_id", "team_assignee_id"):
        if row.get(key) is not None and not isinstance(row[key], str):
            row[key] = str(row[key])  # text, as 2.11 and 2.15 send them (2.16 sends integers)
    for key in ("admin_assignee_id", "team_assignee_id"):
        if row.get(key) in ("0", ""):  # unassigned: null before 2.16, 0 from 2.16
            row[key] = None
    tid = row.get("id")
    ttype = row.get("ticket_type")
    if isinstance(ttype, dict):
        row["ticket_type"] = {k: ttype.get(k) for k in ("id", "name", "category")}
    contacts, _ = schema.envelope_items(row.pop("contacts", None), "contacts")
    row["contacts"] = [{"ticket_id": tid, "type": c.get("type"), "id": str(c.get("id")),
                        "external_id": c.get("external_id")} for c in contacts]
    linked, extras = schema.envelope_items(row.pop("linked_objects", None), "linked_objects")
    row["linked_objects_total_count"] = extras.get("total_count", len(linked))
    row.pop("ticket_parts", None)
    if detail is not None:
        parts, pextras = schema.envelope_items(detail.get("ticket_parts"), "ticket_parts")
        row["parts_total_count"] = pextras.get("total_count", len(parts))
    return row


def shape_ticket_part(part: Mapping[str, Any], ticket_id: str) -> dict[str, Any]:
    row = schema.record_row(part)
    row["id"] = str(row["id"])
    row["ticket_id"] = str(ticket_id)
    return row


def ticket_part_items(detail: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The parts of a GET /tickets/{id} answer."""
    return schema.envelope_items(detail.get("ticket_parts"), "ticket_parts")[0]


def _json(*names: str) -> dict[str, TColumnSchema]:
    return {n: {"name": n, "data_type": "json", "nullable": True} for n in names}


TICKET_COLUMNS: dict[str, TColumnSchema] = {
    "id": {"name": "id", "data_type": "text", "nullable": False},
    **{n: {"name": n, "data_type": "timestamp", "nullable": True} for n in ("created_at", "updated_at", "snoozed_until")},
    **{n: {"name": n, "data_type": "text", "nullable": True}
       for n in ("ticket_id", "admin_assignee_id", "team_assignee_id", "ticket_state__id", "ticket_type__id")},
    **_json("ticket_attributes"),
    "open": {"name": "open", "data_type": "bool", "nullable": True},
    "parts_total_count": {"name": "parts_total_count", "data_type": "bigint", "nullable": True},
}
TICKET_PART_COLUMNS: dict[str, TColumnSchema] = {
    "id": {"name": "id", "data_type": "text", "nullable": False},
    "ticket_id": {"name": "ticket_id", "data_type": "text", "nullable": True},
    **{n: {"name": n, "data_type": "timestamp", "nullable": True} for n in ("created_at", "updated_at")},
    **_json("attachments", "updated_attribute_data"),
    "redacted": {"name": "redacted", "data_type": "bool", "nullable": True},
}

"""Tickets and ticket parts.

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

import contextlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import dlt
import pendulum
from dlt.common.schema.typing import TColumnSchema
from dlt.common.typing import TDataItem

from . import schema
from . import streams as stream_fns
from .rejects import Rejects, rows_and_rejects


@dataclass
class TicketContext:
    """The tickets -> ticket_parts hand-off of one source instance."""

    ctx: stream_fns.StreamContext
    fetch_parts: bool = True
    parts_cache: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


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


def ticket_part_rows(detail: Mapping[str, Any], ticket_id: str, rejects: Rejects) -> list[dict[str, Any]]:
    """The parts of one ticket detail as rows; a part without its id becomes a reject."""
    parts, _ = schema.envelope_items(detail.get("ticket_parts"), "ticket_parts")
    kept = rejects.screened(parts, parent_id=ticket_id)
    return rejects.shaped(kept, lambda part: shape_ticket_part(part, ticket_id), parent_id=ticket_id)


def _json(*names: str) -> dict[str, TColumnSchema]:
    return {n: {"name": n, "data_type": "json", "nullable": True} for n in names}


COLUMNS: dict[str, dict[str, TColumnSchema]] = {
    "tickets": {
        "id": {"name": "id", "data_type": "text", "nullable": False},
        **{n: {"name": n, "data_type": "timestamp", "nullable": True} for n in ("created_at", "updated_at", "snoozed_until")},
        **{n: {"name": n, "data_type": "text", "nullable": True}
           for n in ("ticket_id", "admin_assignee_id", "team_assignee_id", "ticket_state__id", "ticket_type__id")},
        **_json("ticket_attributes"),
        "open": {"name": "open", "data_type": "bool", "nullable": True},
        "parts_total_count": {"name": "parts_total_count", "data_type": "bigint", "nullable": True},
    },
    "ticket_parts": {
        "id": {"name": "id", "data_type": "text", "nullable": False},
        "ticket_id": {"name": "ticket_id", "data_type": "text", "nullable": True},
        **{n: {"name": n, "data_type": "timestamp", "nullable": True} for n in ("created_at", "updated_at")},
        **_json("attachments", "updated_attribute_data"),
        "redacted": {"name": "redacted", "data_type": "bool", "nullable": True},
    },
}


@stream_fns.read_ahead
def tickets(
    tctx: TicketContext,
    updated_at: dlt.sources.incremental[pendulum.DateTime] = dlt.sources.incremental("updated_at"),  # noqa: B008
) -> Iterator[TDataItem]:
    """POST /tickets/search; the changed tickets' details (parts) fetched concurrently, across pages."""
    ctx = tctx.ctx
    client = ctx.client
    query = stream_fns.build_search_query(updated_at.start_value, updated_at.end_value, client.workspace_timezone())
    rejects, part_rejects = ctx.rejects("tickets"), ctx.rejects("ticket_parts")
    changed = stream_fns.incremental_records(ctx, updated_at, client.search("tickets_search", query), "updated_at", rejects)
    fetch = client.get_ticket if tctx.fetch_parts else None
    hand_off = stream_fns.PartsHandOff(tctx.fetch_parts, tctx.parts_cache, tctx.lock)

    def shape(raw: Mapping[str, Any], detail: Mapping[str, Any] | None) -> dict[str, Any]:
        return shape_ticket(raw, detail, ctx.keep_nulls)

    with contextlib.closing(stream_fns.with_details(ctx, changed, fetch, "intercom-ticket")) as detailed:
        for raws, details in detailed:
            rows = hand_off.shaped(raws, details, shape, ticket_part_rows, rejects, part_rejects)
            yield from rows_and_rejects(rows, rejects)
            yield from rows_and_rejects([], part_rejects)


def ticket_parts(ticket_rows: TDataItem, tctx: TicketContext, meta: object = None) -> Iterator[TDataItem]:
    """Every part of each ticket the `tickets` resource loaded in this run."""
    hand_off = stream_fns.PartsHandOff(tctx.fetch_parts, tctx.parts_cache, tctx.lock)
    yield from stream_fns.parts_of_parents(
        ticket_rows, meta, hand_off, tctx.ctx.rejects("ticket_parts"),
        tctx.ctx.client.get_ticket, ticket_part_rows,
    )

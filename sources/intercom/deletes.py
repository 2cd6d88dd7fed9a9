"""Deletes: soft deletes for the small tables and an id reconciliation for the big ones.

Intercom never says that something was deleted: a deleted admin, tag, team or segment simply
stops appearing in its list, and a deleted, merged or archived contact (or a deleted company or
conversation) vanishes from lists and search. Two mechanisms mark such rows instead of dropping
them or keeping them as if alive:

* Small tables (`admins`, `tags`, `teams`, `segments`) are read whole every run and merged on
  `id`. The last raw record of each id is kept in the resource state; an id that is missing from
  this run's list is written once more with `_deleted_at` = the time the run noticed it and
  `_deleted_reason` = "missing_from_list". Unchanged records are not written again, so a run with
  no change loads nothing. A record that reappears gets `_deleted_at` = NULL again.
* Contacts, companies, conversations: after the load, `pipelines/reconcile.py` (the CLI's
  `run --reconcile-deletes`) lists every live id with the cheapest calls Intercom has
  (`list_live_ids` here), compares them with the ids in the destination and sets `_deleted_at` /
  `_deleted_reason` on the rows that vanished (in history mode it also closes the current
  version: `_dlt_valid_to`). This module says what Intercom can tell; the SQL lives there.

Request cost of one reconciliation, for N contacts, M companies, K conversations and D vanished
contacts: ceil(N/150) GET /contacts + ceil(K/150) GET /conversations + D GET /contacts/{id} (to
tell deleted / merged / archived apart where the API can) + companies: 0 when the same run synced
companies (the run's one scroll is reused), otherwise one scroll (ceil(M/page size) + 1 pages).

What the API lets us tell (Intercom-Version 2.15): a deleted and a merged contact both answer
404, so both get reason "deleted"; with 2.16 a merged contact answers 410 and gets "merged". A
contact that is fetchable but not listable gets "archived"; where GET also answers 404 for
archived contacts (as the emulator does) it is reported as "deleted". The merge target is not
given by the API.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from dlt.common.schema.typing import TColumnSchema
from dlt.common.typing import TDataItem

from . import schema, settings
from .api import IntercomClient
from .errors import IntercomNotFoundError
from .rejects import rows_and_rejects
from .streams import StreamContext

if TYPE_CHECKING:
    from .specs import StreamSpec

logger = logging.getLogger(__name__)

DELETED_AT = "_deleted_at"
DELETED_REASON = "_deleted_reason"
DELETE_COLUMNS: dict[str, TColumnSchema] = {
    DELETED_AT: {"name": DELETED_AT, "data_type": "timestamp", "nullable": True},
    DELETED_REASON: {"name": DELETED_REASON, "data_type": "text", "nullable": True},
}
LIST_PAGE_SIZE = settings.SEARCH_PAGE_SIZE  # GET /contacts and GET /conversations: at most 150
_UPDATE_BATCH = 500



# ------------------------------------------------------------------------- small tables
def read_listed(ctx: StreamContext, spec: StreamSpec) -> Iterator[TDataItem]:
    """A one-page list (admins, tags, teams, segments) merged on id with soft deletes.

    Yields changed and new records (`_deleted_at` NULL) and, once, every id of the previous
    run's list that is missing now (its last known record with `_deleted_at` set).
    """
    import dlt  # only here: the rest of the module is usable without a pipeline context

    state = dlt.current.resource_state()
    known: dict[str, Any] = dict(state.get("rows") or {})
    endpoint = spec.endpoint or spec.name
    rejects = ctx.rejects(spec.name)
    records = rejects.screened(ctx.client.list_records(endpoint, params=spec.params))
    noticed = datetime.now(tz=timezone.utc)
    prepare = spec.prepare or dict

    def shape(raw: Mapping[str, Any], deleted_at: datetime | None) -> dict[str, Any]:
        row = schema.shape_simple(prepare(dict(raw)))
        row[DELETED_AT] = deleted_at
        row[DELETED_REASON] = "missing_from_list" if deleted_at is not None else None
        return row

    current: dict[str, Any] = {}
    changed: list[dict[str, Any]] = []
    for raw in records:
        rid = str(raw["id"])
        current[rid] = raw
        if known.get(rid) != raw:
            changed.append(raw)
    rows = rejects.shaped(changed, lambda raw: shape(raw, None))
    gone = [rid for rid in known if rid not in current]
    rows.extend(shape(known[rid], noticed) for rid in gone)
    if gone:
        logger.info("%s: %d record(s) no longer listed, marked deleted", endpoint, len(gone))
    # a record that could not be shaped is not remembered: the next run tries it again
    landed = {row["id"] for row in rows}
    state["rows"] = {rid: raw for rid, raw in current.items() if rid in landed or known.get(rid) == raw}
    yield from rows_and_rejects(rows, rejects)


# ------------------------------------------------------------------------- listing ids
def list_live_ids(client: IntercomClient, model: str) -> set[str]:
    """Every live id of contacts, companies or conversations with the cheapest calls.

    Companies: the ids of the scroll this client finished earlier in the run, else a new scroll.
    """
    if model == "contacts":
        return client.list_ids("contacts_list", "data")
    if model == "conversations":
        return client.list_ids("conversations_list", "conversations")
    if model == "companies":
        if client.scrolled_company_ids is not None:
            return set(client.scrolled_company_ids)
        ids: set[str] = set()
        for page in client.scroll_companies():
            ids.update(str(c.get("id")) for c in page)
        return ids
    raise ValueError(f"no id reconciliation for {model}")


def contact_reason(client: IntercomClient, contact_id: str) -> str:
    """Why a known contact is not listed any more: merged (410), deleted (404) or archived (200)."""
    try:
        client.request("contact", path_params={"id": contact_id})
    except IntercomNotFoundError as exc:
        return "merged" if exc.status == 410 else "deleted"
    return "archived"


def reconciliation_cost(contacts: int, companies: int, conversations: int, vanished_contacts: int = 0,
                        companies_reused: bool = True, scroll_page_size: int = 50) -> int:
    """Requests one reconciliation makes (see the module docstring)."""
    cost = math.ceil(contacts / LIST_PAGE_SIZE) if contacts else 1
    cost += math.ceil(conversations / LIST_PAGE_SIZE) if conversations else 1
    cost += vanished_contacts
    if not companies_reused:
        cost += math.ceil(companies / scroll_page_size) + 1
    return cost

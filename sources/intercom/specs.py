"""One spec per stream: everything the source knows about a stream, in one place.

A spec names how the stream is read (its reader and page source), its permission probe, how a
record becomes a row (`shape`), its column hints, its cursor, its modes (history, deletes) and,
for conversations and tickets, the detail whose parts feed a child stream. `intercom_source`
builds one dlt resource per selected spec (`resources.py`); the preflight probes `probe`.

Adding a stream is one entry here, its shape function (schema.py) and its tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from dlt.common.schema.typing import TColumnSchema
from dlt.common.typing import TDataItem

from . import deleted_feed, relations, schema, settings, tickets
from .api import IntercomClient
from .deletes import DELETE_COLUMNS, read_listed
from .errors import IntercomPermissionError
from .readers import (
    Pages,
    activity_log_pages,
    companies_scroll,
    read_attributes,
    read_parts,
    read_records,
    search,
)
from .rejects import Rejects
from .windows import SearchSplit

Record = dict[str, Any]
Shape = Callable[[Mapping[str, Any], schema.Shaping], Record]
Reader = Callable[..., Iterator[TDataItem]]


@dataclass(frozen=True)
class Parts:
    """A record's detail (GET /conversations/{id}, /tickets/{id}) and how its parts become rows of
    the child stream; the parent hands them over so the child fetches nothing twice."""

    child: str
    detail: Callable[[IntercomClient, str], Record | None]
    items: Callable[[Mapping[str, Any]], list[Record]]
    shape: Callable[[Mapping[str, Any], str], Record]
    thread_name: str

    def rows(self, detail: Mapping[str, Any], parent_id: str, rejects: Rejects) -> list[Record]:
        """The parts of one detail as rows; a part without its id, or that cannot be shaped, is a reject."""
        kept = rejects.screened(self.items(detail), parent_id=parent_id)
        return rejects.shaped(kept, lambda part: self.shape(part, parent_id), parent_id=parent_id)


@dataclass(frozen=True)
class StreamSpec:
    """One stream: how it is read, what its rows look like, and how they are kept."""

    name: str
    read: Reader  # readers.read_records | read_parts | read_attributes, deletes.read_listed
    probe: str  # the endpoint whose permission the stream needs (settings.ENDPOINTS key)
    columns: Mapping[str, TColumnSchema] = field(default_factory=dict)
    shape: Shape | None = None
    pages: Pages | None = None  # read_records: the stream's pages from its cursor
    cursor: str = "updated_at"  # read_records: the incremental field
    complete: relations.Completion | None = None  # embedded lists cut at 10, company segments
    custom_attributes: str | None = None  # the data-attribute model typing its `custom_*` columns
    record_shape: schema.RecordShape | None = None  # read_records: rows built columnar (columnar.py)
    parts: Parts | None = None  # a parent: its detail's parts; a child (with `parent`): the same
    parent: str | None = None  # a child stream, fed with this parent's rows
    endpoint: str | None = None  # read_listed: the list endpoint (default: the stream's name)
    params: Mapping[str, str] | None = None
    prepare: Callable[[Mapping[str, Any]], Record] | None = None  # read_listed: before shaping
    primary_key: str | tuple[str, ...] = "id"
    write_disposition: Literal["merge", "replace"] = "merge"
    history: bool = False  # versioned (dlt scd2) in history mode, see history.py
    deletes: Literal["kept", "soft", "reconciled"] = "kept"  # see deletes.py
    # how a later load shows that a rejected record has landed (pipelines/rejects.py)
    cleared_by: Literal["record", "parent", "listing"] = "record"
    companion_of: str | None = None  # read whenever that stream is; not a stream users name
    since_version: tuple[int, int] | None = None  # the first Intercom-Version that has the endpoint
    in_backfills: bool = True

    def available(self, intercom_version: str, backfill: bool) -> bool:
        """False where this Intercom-Version lacks the endpoint, or in a backfill for a stream kept out of them."""
        if backfill and not self.in_backfills:
            return False
        return self.since_version is None or settings.version_at_least(intercom_version, self.since_version)

    @property
    def child_tables(self) -> tuple[str, ...]:
        """The child tables of the embedded lists of `record_shape` (dlt's names under snake_case)."""
        children = self.record_shape.children if self.record_shape is not None else ()
        return tuple(f"{self.name}__{field}" for field, _ in children)

    @property
    def hint_columns(self) -> dict[str, TColumnSchema]:
        """The column hints, with the delete marks of a stream that has them.

        A record read twice in one run (changed while the sync ran: read in its old window, then
        in the tail, windows.py) is merged keeping its newest version: `dedup_sort` on the cursor.
        """
        columns = {**self.columns, **(DELETE_COLUMNS if self.deletes != "kept" else {})}
        if self.read is read_records and self.cursor == "updated_at":
            cursor: TColumnSchema = {**columns.get(self.cursor, {}), "name": self.cursor, "dedup_sort": "desc"}
            columns[self.cursor] = cursor
        return columns


# ------------------------------------------------------------------------- shapes
def _contact(raw: Mapping[str, Any], how: schema.Shaping) -> Record:
    return schema.shape_contact(raw, how.types, how.keep_nulls)


def _company(raw: Mapping[str, Any], how: schema.Shaping) -> Record:
    return schema.shape_company(raw, how.types, how.keep_nulls)


def _conversation(raw: Mapping[str, Any], how: schema.Shaping) -> Record:
    return schema.shape_conversation(raw, how.types, how.detail, how.keep_nulls)


def _ticket(raw: Mapping[str, Any], how: schema.Shaping) -> Record:
    return tickets.shape_ticket(raw, how.detail, how.keep_nulls)


def _activity_log(raw: Mapping[str, Any], how: schema.Shaping) -> Record:
    return schema.shape_activity_log(raw)


CONVERSATION_PARTS = Parts(
    "conversation_parts", IntercomClient.get_conversation, schema.conversation_part_items, schema.shape_part,
    "intercom-detail",
)
TICKET_PARTS = Parts(
    "ticket_parts", IntercomClient.get_ticket, tickets.ticket_part_items, tickets.shape_ticket_part, "intercom-ticket",
)


def _listed(name: str, columns: Mapping[str, TColumnSchema], **options: Any) -> StreamSpec:
    """A small table read whole every run and merged on id with soft deletes (deletes.py)."""
    return StreamSpec(name, read_listed, name, columns, deletes="soft", cleared_by="listing", **options)


SPECS: dict[str, StreamSpec] = {
    spec.name: spec
    for spec in (
        StreamSpec(
            "contacts", read_records, "contacts_search", schema.CONTACT_COLUMNS, _contact,
            search("contacts_search", SearchSplit("day")), complete=relations.CONTACTS, custom_attributes="contact",
            record_shape=schema.CONTACT_SHAPE, history=True, deletes="reconciled",
        ),
        StreamSpec(
            "companies", read_records, "companies_list", schema.COMPANY_COLUMNS, _company, companies_scroll,
            complete=relations.COMPANIES, custom_attributes="company", record_shape=schema.COMPANY_SHAPE,
            history=True, deletes="reconciled",
        ),
        StreamSpec(
            "conversations", read_records, "conversations_search", schema.CONVERSATION_COLUMNS, _conversation,
            search("conversations_search", SearchSplit("second", calls_per_record=1)), custom_attributes="conversation", parts=CONVERSATION_PARTS,
            history=True, deletes="reconciled",
        ),
        StreamSpec(
            "conversation_parts", read_parts, "conversations_search", schema.CONVERSATION_PART_COLUMNS,
            parts=CONVERSATION_PARTS, parent="conversations", cleared_by="parent",
        ),
        _listed("admins", schema.ADMIN_COLUMNS),
        _listed("tags", schema.TAG_COLUMNS),
        _listed("teams", schema.TEAM_COLUMNS, prepare=relations.with_team_admins),
        _listed("segments", schema.SEGMENT_COLUMNS, params={"include_count": "true"}),
        StreamSpec(
            "activity_logs", read_records, "activity_logs", schema.ACTIVITY_LOG_COLUMNS, _activity_log,
            activity_log_pages, cursor="created_at",
        ),
        StreamSpec(
            "data_attributes", read_attributes, "data_attributes", schema.DATA_ATTRIBUTE_COLUMNS,
            primary_key=("model", "full_name"), write_disposition="replace", cleared_by="listing",
        ),
        StreamSpec(
            "tickets", read_records, "tickets_search", tickets.TICKET_COLUMNS, _ticket,
            search("tickets_search", SearchSplit("second", calls_per_record=1)), parts=TICKET_PARTS, history=True,
        ),
        StreamSpec(
            "ticket_parts", read_parts, "tickets_search", tickets.TICKET_PART_COLUMNS,
            parts=TICKET_PARTS, parent="tickets", cleared_by="parent",
        ),
        # 2.16's feed of deleted conversations, read with `conversations`; the run marks them from it
        StreamSpec(
            "deleted_conversations", read_records, "conversations_search", deleted_feed.COLUMNS,
            deleted_feed.shape_row, deleted_feed.feed_pages, cursor="deleted_at", companion_of="conversations",
            since_version=deleted_feed.FIRST_VERSION, in_backfills=False,
        ),
    )
}
# the streams users name (--streams); companions come with theirs
STREAMS: tuple[str, ...] = tuple(name for name, spec in SPECS.items() if spec.companion_of is None)
RECONCILED_STREAMS: tuple[str, ...] = tuple(s.name for s in SPECS.values() if s.deletes == "reconciled")
# how a later load shows that a stream's rejected record has landed: (rule, table), see pipelines/rejects.py
CLEARED_BY: dict[str, tuple[str, str]] = {s.name: (s.cleared_by, s.parent or s.name) for s in SPECS.values()}


def check_scopes(client: IntercomClient, streams: Iterable[str] | None = None) -> dict[str, str | None]:
    """Probe each stream's permission with one cheap call per endpoint: {stream: None | error text}.

    The probes are sent together (a full sync has ten, a second of latency one after another);
    an error other than a missing permission is raised, the first stream's first."""
    wanted = list(streams or STREAMS)
    probes = list(dict.fromkeys(SPECS[stream].probe for stream in wanted))

    def probe(endpoint: str) -> str | None:
        try:
            client.probe(endpoint)
        except IntercomPermissionError as exc:
            return str(exc)
        return None

    with ThreadPoolExecutor(max_workers=min(len(probes), 8) or 1, thread_name_prefix="intercom-probe") as pool:
        probed = dict(zip(probes, pool.map(probe, probes), strict=True))
    return {stream: probed[SPECS[stream].probe] for stream in wanted}


def permission(stream: str) -> str | None:
    """The Intercom permission name a stream needs (from its probe's endpoint)."""
    spec = SPECS.get(stream)
    endpoint = settings.ENDPOINTS.get(spec.probe) if spec else None
    return endpoint.permission if endpoint else None

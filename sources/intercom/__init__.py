"""dlt source for Intercom: contacts, companies, conversations (+ parts), admins, tags, teams,
segments, activity logs and data attributes.

Usage::

    source = intercom_source(streams=["contacts", "conversations", "conversation_parts"])
    pipeline.run(source)

Run statistics (requests per endpoint template, retries, 429s, wait seconds): build the client
yourself and pass it, then read `client.stats.as_dict()` after the run::

    client = IntercomClient(token, base_url=...)      # also offers me() and check_scopes()
    pipeline.run(intercom_source(access_token=token, client=client))
    client.stats.as_dict(); client.close()

or, without passing a client, `last_client()` returns the one the latest source built.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timezone
from typing import Any

import dlt
import pendulum
from dlt.sources import DltResource

from . import deleted_feed, deletes, relations, schema, settings
from . import history as history_mode
from . import streams as stream_fns
from . import tickets as ticket_fns
from .client import ClientStats, IntercomClient, resolve_base_url
from .errors import (
    IntercomAPIError,
    IntercomAuthError,
    IntercomConfigError,
    IntercomError,
    IntercomPermissionError,
    IntercomRegionError,
)
from .rejects import REJECTS_TABLE, with_rejects_table

__all__ = [
    "ClientStats",
    "IntercomAPIError",
    "IntercomAuthError",
    "IntercomClient",
    "IntercomConfigError",
    "IntercomError",
    "IntercomPermissionError",
    "IntercomRegionError",
    "REJECTS_TABLE",
    "intercom_source",
    "last_client",
]

logger = logging.getLogger(__name__)

_LAST: dict[str, IntercomClient] = {}


def last_client() -> IntercomClient | None:
    """The client of the most recently built source (convenience for the CLI's run summary)."""
    return _LAST.get("client")


def _to_datetime(value: str | date | datetime | None, name: str) -> pendulum.DateTime | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, datetime):
            dt = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
            return pendulum.instance(dt).in_timezone("UTC")
        if isinstance(value, date):
            return pendulum.datetime(value.year, value.month, value.day, tz="UTC")
        if isinstance(value, (int, float)):
            return pendulum.from_timestamp(value, tz="UTC")
        parsed = pendulum.parse(str(value), tz="UTC")
    except (ValueError, TypeError, pendulum.parsing.exceptions.ParserError) as exc:
        raise IntercomConfigError(f"{name}={value!r} is not a date or datetime ({exc})") from None
    if not isinstance(parsed, pendulum.DateTime):
        if isinstance(parsed, pendulum.Date):
            return pendulum.datetime(parsed.year, parsed.month, parsed.day, tz="UTC")
        raise IntercomConfigError(f"{name}={value!r} is not a date or datetime")
    return parsed.in_timezone("UTC")


def _validate_streams(selected: Sequence[str] | None) -> list[str]:
    if selected is None:
        return list(settings.STREAMS)
    if isinstance(selected, str):
        selected = [s.strip() for s in selected.split(",") if s.strip()]
    unknown = [s for s in selected if s not in settings.STREAMS]
    if unknown:
        raise IntercomConfigError(
            f"unknown stream(s): {', '.join(unknown)}. Valid streams: {', '.join(settings.STREAMS)}"
        )
    if not selected:
        raise IntercomConfigError(f"no stream selected. Valid streams: {', '.join(settings.STREAMS)}")
    return list(dict.fromkeys(selected))


@dlt.source(name="intercom", section="intercom", max_table_nesting=1)
def intercom_source(
    access_token: str = dlt.secrets.value,
    region: str = settings.DEFAULT_REGION,
    base_url: str | None = None,
    intercom_version: str = settings.DEFAULT_VERSION,
    start_date: Any = None,
    end_date: Any = None,
    lookback_seconds: int = settings.DEFAULT_LOOKBACK_SECONDS,
    streams: Sequence[str] | None = None,
    max_workers: int = settings.DEFAULT_MAX_WORKERS,
    client: Any = None,
    history: bool = False,
) -> list[DltResource]:
    """Intercom workspace as dlt resources.

    Args:
        access_token: Intercom access token (secrets: `[sources.intercom] access_token`).
        region: us, eu or au; ignored when `base_url` is given.
        base_url: explicit API root (https, or http on loopback for the emulator).
        intercom_version: `Intercom-Version` header, a string such as "2.15".
        start_date / end_date: initial cursor and, for backfills, the exclusive end. With an
            end_date, no cursor state nor skip map is read or written.
        lookback_seconds: how far before the cursor each run re-reads (search lag, day rule).
        streams: stream names to load (default all); see `settings.STREAMS`.
        max_workers: concurrent conversation-detail fetches (and HTTP pool size).
        client: optional pre-built `IntercomClient` to use instead of building one.
        history: keep one row per version (dlt scd2) of contacts, companies, conversations,
            tickets and their relation tables instead of the latest state; see history.py.
    """
    selected = _validate_streams(streams)
    if region is None or region.lower() not in settings.REGIONS:
        raise IntercomConfigError(f"unknown region {region!r}: expected one of {', '.join(settings.REGIONS)}")
    resolve_base_url(region, base_url)  # validates https / loopback
    start = _to_datetime(start_date, "start_date")
    end = _to_datetime(end_date, "end_date")
    if end is not None and start is None:
        raise IntercomConfigError("end_date needs a start_date (a backfill is a closed range)")
    if start is not None and end is not None and end <= start:
        raise IntercomConfigError(f"end_date {end.isoformat()} is not after start_date {start.isoformat()}")
    if int(lookback_seconds) < 0:
        raise IntercomConfigError("lookback_seconds must be >= 0")
    if int(max_workers) < 1:
        raise IntercomConfigError("max_workers must be >= 1")

    if client is None:
        client = IntercomClient(
            access_token, region=region, base_url=base_url, intercom_version=str(intercom_version),
            max_workers=int(max_workers),
        )
    elif not isinstance(client, IntercomClient):
        raise IntercomConfigError("client must be an IntercomClient")
    _LAST["client"] = client
    ctx = stream_fns.StreamContext(
        client=client,
        lookback_seconds=int(lookback_seconds),
        max_workers=int(max_workers),
        fetch_parts="conversation_parts" in selected,
        keep_nulls=bool(history),
        secrets=(access_token,) if isinstance(access_token, str) and access_token else (),
    )
    lag = float(lookback_seconds) if lookback_seconds else None

    def cursor(path: str) -> dlt.sources.incremental[pendulum.DateTime]:
        # "include": the rows of `_intercom_rejects` pass through the stream's incremental step
        # (every data row has its cursor: rejects.py screens them first)
        return dlt.sources.incremental(
            path, initial_value=start, end_value=end, lag=lag, range_start="closed", range_end="open",
            on_cursor_value_missing="include",
        )

    def merge_resource(fn: Any, name: str, stream_ctx: Any = ctx, cursor_field: str = "updated_at") -> DltResource:
        """An incremental stream, bound to its cursor and run in dlt's extract pool.

        `.parallelize()` comes after binding: dlt 1.31 drops `parallelized=True` when a resource
        with an incremental argument is called, and then runs every stream's generator in its
        main extract loop, one after another, so one stream waiting for its next page stalled
        all the others (measured: the quota idle for seconds at a time).
        """
        columns = {**schema.COLUMNS.get(name, {}), **ticket_fns.COLUMNS.get(name, {})}
        if name in deletes.RECONCILED_STREAMS:
            columns.update(deletes.DELETE_COLUMNS)  # set by `reconcile_deletes`
        disposition: dict[str, Any] = {"write_disposition": "merge"}
        if name in history_mode.HISTORY_STREAMS:
            disposition = history_mode.resource_hints(bool(history))
        resource = dlt.resource(
            fn, name=name, primary_key="id", **disposition, columns=columns, selected=name in selected,
        )
        return with_rejects_table(resource(stream_ctx, **{cursor_field: cursor(cursor_field)}).parallelize())

    resources: list[DltResource] = []
    if "contacts" in selected:
        resources.append(merge_resource(stream_fns.contacts, "contacts"))
    if "companies" in selected:
        resources.append(merge_resource(stream_fns.companies, "companies"))
    if "conversations" in selected or "conversation_parts" in selected:
        conv = merge_resource(stream_fns.conversations, "conversations")
        resources.append(conv)
        if "conversation_parts" in selected:
            parts = dlt.transformer(
                stream_fns.conversation_parts, name="conversation_parts", data_from=conv, primary_key="id",
                write_disposition="merge", columns=schema.COLUMNS["conversation_parts"],
            )(ctx, meta=None)  # dlt hands a transformer the item's meta only when `meta` is bound
            resources.append(with_rejects_table(parts))
    if "conversations" in selected and end is None and deleted_feed.has_feed(client.intercom_version):
        since = dlt.sources.incremental("deleted_at", initial_value=start, lag=lag, range_start="closed")
        resources.append(deleted_feed.resource(client, since))
    if "activity_logs" in selected:
        resources.append(merge_resource(stream_fns.activity_logs, "activity_logs", cursor_field="created_at"))
    if "tickets" in selected or "ticket_parts" in selected:
        tctx = ticket_fns.TicketContext(ctx, fetch_parts="ticket_parts" in selected)
        tick = merge_resource(ticket_fns.tickets, "tickets", tctx)
        resources.append(tick)
        if "ticket_parts" in selected:
            ticket_parts = dlt.transformer(
                ticket_fns.ticket_parts, name="ticket_parts", data_from=tick, primary_key="id",
                write_disposition="merge", columns=ticket_fns.COLUMNS["ticket_parts"],
            )(tctx, meta=None)  # as conversation_parts: without it the parent's rejects look like parents
            resources.append(with_rejects_table(ticket_parts))
    # small tables: merged on id with soft deletes (`_deleted_at`), see deletes.py
    for name, params in (("admins", None), ("tags", None), ("teams", None), ("segments", {"include_count": "true"})):
        if name in selected:
            res = dlt.resource(
                deletes.soft_deleting_list, name=name, primary_key="id", write_disposition="merge",
                columns={**schema.COLUMNS[name], **deletes.DELETE_COLUMNS}, parallelized=True,
            )
            prepare = relations.with_team_admins if name == "teams" else None
            resources.append(with_rejects_table(res(ctx, name, params, prepare)))
    if "data_attributes" in selected:
        attributes = dlt.resource(
            stream_fns.data_attributes, name="data_attributes", primary_key=("model", "full_name"),
            write_disposition="replace", columns=schema.COLUMNS["data_attributes"], parallelized=True,
        )(ctx)
        resources.append(with_rejects_table(attributes))
    return resources


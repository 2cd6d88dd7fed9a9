"""dlt source for Intercom: contacts, companies, conversations (+ parts), admins, tags, teams,
segments, activity logs and data attributes.

Usage::

    source = intercom_source(streams=["contacts", "conversations", "conversation_parts"])
    pipeline.run(source)

Run statistics (requests per endpoint template, retries, 429s, wait seconds): build the client
yourself and pass it, then read `client.stats.as_dict()` after the run::

    client = IntercomClient(token, base_url=...)      # also offers me()
    pipeline.run(intercom_source(access_token=token, client=client))
    client.stats.as_dict(); client.close()
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence

import dlt
from dlt.sources import DltResource

from . import arrow_items, schema, settings
from .api import IntercomClient
from .client import ClientStats
from .errors import (
    IntercomAPIError,
    IntercomAuthError,
    IntercomConfigError,
    IntercomError,
    IntercomPermissionError,
    IntercomRegionError,
)
from .first_load import FirstLoad
from .options import DateLike, IntercomOptions
from .rejects import REJECTS_TABLE
from .resources import RunShape, build, in_build_order, wanted
from .specs import SPECS, STREAMS, StreamSpec
from .streams import PartsHandOff, StreamContext

__all__ = [
    "ClientStats",
    "FirstLoad",
    "IntercomAPIError",
    "IntercomAuthError",
    "IntercomClient",
    "IntercomConfigError",
    "IntercomError",
    "IntercomPermissionError",
    "IntercomRegionError",
    "REJECTS_TABLE",
    "SPECS",
    "STREAMS",
    "StreamSpec",
    "intercom_source",
    "schema",
    "settings",
]

logger = logging.getLogger(__name__)

# root_key: child tables carry `_dlt_root_id` whatever their table's disposition, so a table first
# appended into (first_load.py) is merged into by later runs like any other
@dlt.source(name="intercom", section="intercom", max_table_nesting=1, root_key=True)
def intercom_source(
    access_token: str = dlt.secrets.value,
    region: str = settings.DEFAULT_REGION,
    base_url: str | None = None,
    intercom_version: str = settings.DEFAULT_VERSION,
    start_date: DateLike = None,
    end_date: DateLike = None,
    lookback_seconds: int = settings.DEFAULT_LOOKBACK_SECONDS,
    streams: Sequence[str] | None = None,
    max_workers: int = settings.DEFAULT_MAX_WORKERS,
    checkpoint_records: int = settings.SEARCH_CHECKPOINT_RECORDS,
    client: IntercomClient | None = None,
    history: bool = False,
    columnar: bool = True,
    json_lane: bool = True,
    empty_tables: Mapping[str, FirstLoad] | None = None,
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
        streams: stream names to load (default all); see `specs.STREAMS`.
        max_workers: concurrent conversation-detail fetches (and HTTP pool size).
        checkpoint_records: a search read as windows (windows.py) ends its run after about this many
            records, its progress committed with the load package; `run_until_caught_up` runs on.
        client: optional pre-built `IntercomClient` to use instead of building one.
        history: keep one row per version (dlt scd2) of contacts, companies, conversations,
            tickets and their relation tables instead of the latest state; see history.py.
        columnar: contacts and companies built as Arrow tables (columnar.py) where dlt allows it;
            False (`SOURCES__INTERCOM__COLUMNAR=false`) makes every row the usual way.
        json_lane: with `columnar`, whole pages of contacts parsed by Arrow's JSON reader where what
            they hold was seen before (json_lane.py); False (`SOURCES__INTERCOM__JSON_LANE=false`)
            leaves every record to columnar.py.
        empty_tables: streams whose destination tables held no rows when the run began, each with
            one `FirstLoad` for all the run's packages: an incremental one is appended, not merged,
            while no record comes twice (first_load.py). The caller checks the destination
            (pipelines/first_load.py); a wrong name costs duplicate rows, so leave it out when unsure.
    """
    options = IntercomOptions(
        access_token=access_token, region=region, base_url=base_url, intercom_version=intercom_version,
        start_date=start_date, end_date=end_date, lookback_seconds=lookback_seconds, streams=streams,
        max_workers=max_workers, checkpoint_records=checkpoint_records, history=history,
    ).validated()
    selected, start, end = options.selected, options.start_date, options.end_date
    if client is None:
        client = IntercomClient(
            access_token, region=options.region, base_url=base_url, intercom_version=options.intercom_version,
            max_workers=options.max_workers,
        )
    elif not isinstance(client, IntercomClient):
        raise IntercomConfigError("client must be an IntercomClient")
    ctx = StreamContext(
        client=client,
        lookback_seconds=options.lookback_seconds,
        max_workers=options.max_workers,
        checkpoint_records=options.checkpoint_records,
        keep_nulls=options.history,
        columnar=bool(columnar) and not options.history and arrow_items.supported(),
        json_lane=bool(json_lane),
        secrets=(access_token,) if isinstance(access_token, str) and access_token else (),
    )
    run = RunShape(tuple(selected), start, end, options.lookback_seconds, options.history, dict(empty_tables or {}))
    built: dict[str, DltResource] = {}
    for spec in in_build_order(SPECS.values()):
        if not wanted(spec, run.selected) or not spec.available(client.intercom_version, end is not None):
            continue
        if spec.parts is not None and spec.parent is None:  # a parent hands its parts to its child
            ctx.hand_offs[spec.name] = PartsHandOff(spec.parts.child in run.selected, {}, threading.Lock())
        built[spec.name] = build(spec, ctx, run, built)
    return list(built.values())

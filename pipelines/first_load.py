"""Which streams' tables the destination holds no rows of yet: the source appends into those
instead of merging (sources/intercom/first_load.py has why, and why that stays exact).

Asked once, when the run begins, under the pipeline's lock: what an interrupted run left is loaded
by then (`finish_pending_packages`), and no other run writes the dataset. The run's later packages
(a split search commits several) know what the earlier ones loaded (`FirstLoad`). A table counts
as empty only when the destination says so: a missing dataset or table, or a table without a row.
Any other answer (the destination unreachable, no permission) counts as rows: the stream is merged
as always, and the run reports the error itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import dlt
from dlt.destinations.exceptions import DatabaseUndefinedRelation

logger = logging.getLogger(__name__)


def empty_tables(pipeline: dlt.Pipeline, streams: Iterable[str]) -> list[str]:
    """The streams whose root table in the pipeline's dataset is missing or holds no row."""
    names = list(streams)
    if not names:
        return []
    empty: list[str] = []
    try:
        with pipeline.sql_client() as client:
            for name in names:
                try:
                    rows = client.execute_sql(f"SELECT 1 FROM {client.make_qualified_table_name(name)} LIMIT 1")
                except DatabaseUndefinedRelation:
                    empty.append(name)
                    continue
                if not rows:
                    empty.append(name)
    except DatabaseUndefinedRelation:  # the dataset itself is missing: a first run
        return names
    except Exception as exc:  # noqa: BLE001 - unsure means rows: merged as always, the run reports the error
        # the type only: a driver's message may quote the connection settings
        logger.debug("could not tell which tables are empty (%s); every stream is merged", type(exc).__name__)
        return []
    return empty

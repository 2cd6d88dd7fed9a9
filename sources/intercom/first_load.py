"""A stream's first load into empty tables: appended, not merged, when each record comes once.

Why (issue 17): a merge makes the destination write every row twice. dlt copies the package into
a staging table, then deletes what the incoming keys replace and inserts again from staging. Into
an empty table, the delete finds nothing, and the insert is a plain append when no key comes twice.
A first sync of 200,000 contacts into DuckDB spent 4.8 s loading with the merge and 1.7 s appended
(11.4 against 14.7 CPU seconds for the whole sync), and the seven packages of 1,000,000 contacts
each merged into a larger table (docs/benchmarks.md).

Exact by construction. The caller names the streams whose tables held no rows when the run began
(`intercom_source(empty_tables=...)`, checked by pipelines/first_load.py), each with a `FirstLoad`
that lives as long as the run: the ids its earlier packages loaded. So the destination holds no
id but those. Such a stream is declared `append` (without the `dedup_sort` hint, which dlt warns
an append ignores), and `RepeatWatch` notes the id of every record it hands on.
* If a record comes twice (it changed while the sync read it, so a later window or the tail read
  it again, in this package or an earlier one of the run), the stream's last item switches the
  table back to `merge` with its `dedup_sort`. The package's schema then says merge, and dlt's
  merge keeps the newest version by `updated_at`, as it always did. The rest of the run merges.
* Otherwise no key repeats, and appending gives the rows the merge would have given.

Child tables get `_dlt_root_id` either way (the source propagates root keys, `root_key=True`), so
the merges of later runs find them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.schema.typing import TColumnSchema
from dlt.common.typing import TDataItem

from .arrow_pages import ArrowPage, Page, records_of

logger = logging.getLogger(__name__)

APPEND = "append"


def appended_columns(columns: Mapping[str, TColumnSchema]) -> dict[str, TColumnSchema]:
    """A stream's column hints for an append: without `dedup_sort`."""
    return {name: {k: v for k, v in column.items() if k != "dedup_sort"} for name, column in columns.items()}


class FirstLoad:
    """One stream's first load over the packages of one run (a split search commits several): the
    ids its appended packages loaded so far, hashed. `spent` once a record came twice: the rest of
    the run merges, as every run did before."""

    def __init__(self) -> None:
        self.loaded = pa.array([], pa.int64())  # hash(str(id)): a collision only costs a merge
        self.spent = False


class RepeatWatch:
    """The ids of a stream's records in this package: did one come twice, here or in an earlier
    package of the run?"""

    def __init__(self, stream: str, load: FirstLoad, columns: Mapping[str, TColumnSchema]) -> None:
        self.stream = stream
        self.load = load
        self._ids: set[int] | None = None if load.spent else set()  # None: a repeat seen, nothing more to learn
        self._sorted = {name: column for name, column in columns.items() if "dedup_sort" in column}

    def pages(self, pages: Iterator[Page]) -> Iterator[Page]:
        """The pages unchanged, their record ids noted (records screened: each has an id)."""
        for raws in pages:
            ids = self._ids
            if ids is not None:
                before = len(ids)
                listed = raws.ids if isinstance(raws, ArrowPage) else None  # screened: never None
                if listed is None:
                    listed = [raw["id"] for raw in records_of(raws)]
                ids.update(hash(str(record_id)) for record_id in listed)
                if len(ids) - before < len(raws):  # an id already seen, or twice in this page
                    self._ids = None
            yield raws

    def last_items(self) -> Iterator[TDataItem]:
        """After the stream's rows: the table back to `merge` if a record came twice (checked
        against the run's earlier packages here, once), else this package's ids noted as loaded."""
        ids, load = self._ids, self.load
        if ids is not None:
            current = pa.array(list(ids), pa.int64())
            if len(load.loaded) and pc.any(pc.is_in(current, value_set=load.loaded)).as_py():
                ids = None
            else:
                load.loaded = pa.concat_arrays([load.loaded, current])
        if ids is None:
            if not load.spent:
                logger.info("%s: a record came twice (it changed while the sync read it): this package and the "
                            "rest of the run are merged, keeping its newest version", self.stream)
            load.spent = True
            yield dlt.mark.with_hints([], dlt.mark.make_hints(write_disposition="merge", columns=self._sorted))

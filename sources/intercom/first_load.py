"""A stream's first load into empty tables: appended, not merged, when each record comes once.

Why (issue 17): a merge makes the destination write every row twice. dlt copies the package into
a staging table, then deletes what the incoming keys replace and inserts again from staging. Into
an empty table, the delete finds nothing, and the insert is a plain append when no key comes twice.
A first sync of 200,000 contacts into DuckDB spent 4.8 s loading with the merge and 1.7 s appended
(11.4 against 14.7 CPU seconds for the whole sync; docs/benchmarks.md).

Exact by construction. The caller names the streams whose tables hold no rows yet
(`intercom_source(empty_tables=...)`, checked by pipelines/first_load.py just before each package).
Such a stream is declared `append` (without the `dedup_sort` hint, which dlt warns an append
ignores), and `RepeatWatch` notes the id of every record it hands on.
* If a record comes twice in the package (it changed while the sync read it, so a later window
  or the tail read it again), the stream's last item switches the table back to `merge` with its
  `dedup_sort`. The package's schema then says merge, and dlt's merge keeps the newest version
  by `updated_at`, as it always did.
* Otherwise no key repeats, and appending gives the rows the merge would have given.

Child tables get `_dlt_root_id` either way (the source propagates root keys, `root_key=True`), so
the merges of later runs find them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import dlt
from dlt.common.schema.typing import TColumnSchema
from dlt.common.typing import TDataItem

Record = dict[str, Any]

APPEND = "append"


def appended_columns(columns: Mapping[str, TColumnSchema]) -> dict[str, TColumnSchema]:
    """A stream's column hints for an append: without `dedup_sort`."""
    return {name: {k: v for k, v in column.items() if k != "dedup_sort"} for name, column in columns.items()}


class RepeatWatch:
    """The ids of a stream's records in this package, until one comes twice."""

    def __init__(self, columns: Mapping[str, TColumnSchema]) -> None:
        self._ids: set[str] | None = set()  # None once a repeat is seen: nothing more to learn
        self._sorted = {name: column for name, column in columns.items() if "dedup_sort" in column}

    @property
    def repeated(self) -> bool:
        return self._ids is None

    def pages(self, pages: Iterator[list[Record]]) -> Iterator[list[Record]]:
        """The pages unchanged, their record ids noted (records screened: each has an id)."""
        for raws in pages:
            ids = self._ids
            if ids is not None:
                before = len(ids)
                ids.update(str(raw["id"]) for raw in raws)
                if len(ids) - before < len(raws):  # an id already seen, or twice in this page
                    self._ids = None
            yield raws

    def last_items(self) -> Iterator[TDataItem]:
        """After the stream's rows: the table back to `merge` if a record came twice."""
        if self.repeated:
            yield dlt.mark.with_hints([], dlt.mark.make_hints(write_disposition="merge", columns=self._sorted))

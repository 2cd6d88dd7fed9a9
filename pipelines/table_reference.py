"""Print the README's table reference (markdown) from a loaded DuckDB file.

Reads the newest dlt schema stored in the dataset's `_dlt_version` table, so keys, write
dispositions and column types are the ones dlt actually used, not a hand-kept list:

    python -m intercom_elt.pipelines.table_reference intercom_demo.duckdb --dataset intercom
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import duckdb


def load_schema(path: str, dataset: str) -> dict[str, Any]:
    """The most recent dlt schema of the dataset."""
    con = duckdb.connect(path, read_only=True)
    try:
        row = con.execute(
            f'select schema from "{dataset}"."_dlt_version" order by inserted_at desc limit 1'
        ).fetchone()
    finally:
        con.close()
    if row is None:
        raise SystemExit(f"no dlt schema in {path} dataset {dataset}")
    return json.loads(row[0])


def _column(name: str, col: dict[str, Any]) -> str:
    marks = []
    if col.get("primary_key"):
        marks.append("PK")
    if col.get("merge_key"):
        marks.append("merge key")
    dtype = col.get("data_type", "?")
    return f"`{name}` {dtype}" + (f" ({', '.join(marks)})" if marks else "")


def render(schema: dict[str, Any]) -> str:
    """Markdown: one section per data table, with key, disposition, parent and columns."""
    tables: dict[str, Any] = schema["tables"]
    out: list[str] = []
    for name in sorted(t for t in tables if not t.startswith("_dlt")):
        table = tables[name]
        columns: dict[str, Any] = table.get("columns", {})
        keys = [c for c, v in columns.items() if v.get("primary_key")]
        parent = table.get("parent")
        root = name
        while tables.get(root, {}).get("parent"):
            root = tables[root]["parent"]
        disposition = table.get("write_disposition") or tables.get(root, {}).get(
            "write_disposition", "append"
        )
        if isinstance(disposition, dict):
            disposition = disposition.get("disposition", "?")
        root_keyed = any(v.get("primary_key") for v in tables.get(root, {}).get("columns", {}).values())
        if disposition == "append" and root_keyed:
            # a stream's first load into its empty tables is an append (sources/intercom/first_load.py);
            # every later run merges on the key
            disposition = "merge"
        if keys:
            key = ", ".join(f"`{k}`" for k in keys)
        elif parent:
            key = f"child of `{parent}` (`_dlt_parent_id` -> `{parent}._dlt_id`)"
        else:
            key = "none"
        out.append(f"#### `{name}`\n")
        desc = table.get("description")
        if desc:
            out.append(f"{desc}\n")
        out.append(f"Key: {key}. Write disposition: {disposition}.\n")
        cols = [
            _column(c, v) for c, v in columns.items() if not c.startswith("_dlt") or c == "_dlt_parent_id"
        ]
        out.append("Columns: " + ", ".join(cols) + "\n")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("duckdb_path", nargs="?", default="intercom_demo.duckdb")
    parser.add_argument("--dataset", default="intercom_data")
    args = parser.parse_args(argv)
    sys.stdout.write(render(load_schema(args.duckdb_path, args.dataset)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

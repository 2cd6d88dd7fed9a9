"""Opt-in history mode: one row per version instead of the latest state.

With `intercom_source(history=True)` (CLI: `--history`) contacts, companies, conversations and
tickets use dlt's `scd2` merge strategy. Every change of a record inserts a new row version;
`_dlt_valid_from` is when the run that loaded it started and `_dlt_valid_to` when the next
version (or a reconciliation that found it deleted) replaced it, so consecutive versions have
contiguous validity ranges. The current version is `_dlt_valid_to IS NULL`.

`merge_key = id` makes the strategy incremental: only records present in a run are compared and
retired, so a record that did not change keeps its current version (without it dlt would retire
every record absent from an incremental run).

Relation tables (`contacts__tags`, `companies__segments`, `conversations__contacts`, ...) are
child tables of their parent: each parent version carries its own relation rows (joined through
`_dlt_parent_id` = the parent version's `_dlt_id`), so they are versioned with the parent. The
current relations are those of the current parent version:

    select t.contact_id, t.id as tag_id from contacts__tags t
    join contacts c on t._dlt_parent_id = c._dlt_id where c._dlt_valid_to is null

Switching an existing dataset between the modes is not supported in place: use a new dataset or
`--full-refresh`.
"""

from __future__ import annotations

from typing import Any

VALID_FROM = "_dlt_valid_from"
VALID_TO = "_dlt_valid_to"


def write_disposition(history: bool) -> Any:
    """The write disposition of a history-capable stream."""
    if not history:
        return "merge"
    return {"disposition": "merge", "strategy": "scd2", "validity_column_names": [VALID_FROM, VALID_TO]}


def resource_hints(history: bool) -> dict[str, Any]:
    """Extra `dlt.resource` arguments for a history-capable stream."""
    return {"write_disposition": write_disposition(history), **({"merge_key": "id"} if history else {})}

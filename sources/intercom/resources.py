"""One dlt resource per spec: its table hints, its cursor and the parent it is fed from.

Every resource gets the `_intercom_rejects` table variant (rejects.py). Incremental streams are
parallelized after binding: dlt 1.31 drops `parallelized=True` when a resource with an
incremental argument is called, and then runs every stream's generator in its main extract loop,
one after another, so one stream waiting for its next page stalled all the others (measured: the
quota idle for seconds at a time).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dlt
import pendulum
from dlt.extract import DltResource

from . import arrow_items, first_load
from . import history as history_mode
from .deletes import read_listed
from .readers import read_attributes, read_parts, read_records
from .rejects import with_rejects_table
from .specs import StreamSpec
from .streams import StreamContext

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunShape:
    """What every resource of one source instance shares besides the stream context."""

    selected: tuple[str, ...]
    start: pendulum.DateTime | None
    end: pendulum.DateTime | None
    lookback_seconds: int
    history: bool
    empty: Mapping[str, first_load.FirstLoad] = field(default_factory=dict)  # tables empty at the run's start (first_load.py)

    def cursor(self, path: str) -> dlt.sources.incremental[pendulum.DateTime]:
        # "include": the rows of `_intercom_rejects` pass through the stream's incremental step
        # (every data row has its cursor: rejects.py screens them first)
        return dlt.sources.incremental(
            path, initial_value=self.start, end_value=self.end,
            lag=float(self.lookback_seconds) if self.lookback_seconds else None,
            range_start="closed", range_end="open", on_cursor_value_missing="include",
        )


def wanted(spec: StreamSpec, selected: tuple[str, ...]) -> bool:
    """A stream is built when selected, when its child is (a parent feeds its parts), or when the
    stream it accompanies is."""
    child = spec.parts.child if spec.parts is not None and spec.parent is None else None
    return spec.name in selected or child in selected or spec.companion_of in selected


def in_build_order(specs: Iterable[StreamSpec]) -> list[StreamSpec]:
    """The incremental streams (and their children) first, then the streams read whole.

    The order the source has always bound its resources in, which dlt starts them in: a small list
    answered 429 then waits while the long streams are already under way, instead of making every
    one of their workers wait for the reset at the start (measured in the run history's summed wait).
    """
    return sorted(specs, key=lambda spec: _BUILDERS[spec.read] is _whole)


def build(spec: StreamSpec, ctx: StreamContext, run: RunShape, built: Mapping[str, DltResource]) -> DltResource:
    """The resource of `spec`, bound to its context (and its parent's resource for a child)."""
    builder = _BUILDERS[spec.read]
    return with_rejects_table(builder(spec, ctx, run, built))


def _incremental(spec: StreamSpec, ctx: StreamContext, run: RunShape, built: Mapping[str, DltResource]) -> DltResource:
    disposition: dict[str, Any] = {"write_disposition": "merge"}
    if spec.history:
        disposition = history_mode.resource_hints(run.history)
    columns = spec.hint_columns
    first = run.empty.get(spec.name)
    if first is not None and not first.spent and disposition == {"write_disposition": "merge"}:  # not history's scd2
        disposition, columns = {"write_disposition": first_load.APPEND}, first_load.appended_columns(columns)
        ctx.appended[spec.name] = first
        logger.info("%s: no rows in the destination yet, appended into (no staging copy, no merge) while no "
                    "record comes twice", spec.name)
    resource = dlt.resource(
        spec.read, name=spec.name, primary_key=spec.primary_key, **disposition, columns=columns,
        selected=spec.name in run.selected or spec.companion_of in run.selected,  # a parent only for its child: not loaded
    )
    bound = resource(ctx, spec, run.cursor(spec.cursor)).parallelize()
    if ctx.columnar and spec.record_shape is not None:
        ctx.main_thread_steps[spec.name] = arrow_items.child_tables(bound, spec.name, spec.child_tables)
    return bound


def _child(spec: StreamSpec, ctx: StreamContext, run: RunShape, built: Mapping[str, DltResource]) -> DltResource:
    return dlt.transformer(
        spec.read, name=spec.name, data_from=built[spec.parent or ""], primary_key=spec.primary_key,
        write_disposition=spec.write_disposition, columns=spec.hint_columns,
    )(ctx, spec, meta=None)  # dlt hands a transformer the item's meta only when `meta` is bound


def _whole(spec: StreamSpec, ctx: StreamContext, run: RunShape, built: Mapping[str, DltResource]) -> DltResource:
    """A stream read whole every run (small lists with soft deletes, data attributes)."""
    return dlt.resource(
        spec.read, name=spec.name, primary_key=spec.primary_key, write_disposition=spec.write_disposition,
        columns=spec.hint_columns, parallelized=True,
    )(ctx, spec)


Builder = Callable[[StreamSpec, StreamContext, RunShape, Mapping[str, DltResource]], DltResource]
_BUILDERS: dict[Callable[..., Any], Builder] = {
    read_records: _incremental, read_parts: _child, read_attributes: _whole, read_listed: _whole,
}

"""Analyst views over the loaded tables: a Fivetran-compatible layer and our own metric views.

* ``<dataset>_fivetran`` (or ``fivetran_schema``): views named, typed and shaped like Fivetran's
  Intercom connector tables (admin, team, team_admin, tag, *_history), so Fivetran's dbt packages
  (dbt_intercom / dbt_intercom_source) and reports written for them run unchanged on this warehouse.
  See docs/fivetran-compatibility.md for the column-by-column mapping.
* ``<dataset>.conversation_metrics`` / ``admin_metrics`` / ``company_metrics``: response and
  resolution metrics derived from conversation parts, for teams without dbt.

Every SELECT list is built from ``information_schema.columns`` at creation time, so optional columns
(custom attributes, rare fields, a future ``_dlt_valid_from``/``is_deleted``) are used when present
and filled with typed NULLs (or defaults) when not. The SQL is the same on DuckDB and Postgres except
for the few expressions in `Dialect`. Views are dropped and re-created in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dlt.destinations.sql_client import SqlClientBase

from .base import (
    _NAME_RE,
    FIVETRAN_SUFFIX,
    FIVETRAN_VIEWS,
    METRIC_VIEWS,
    View,
    ViewsResult,
    dialect_for,
    lit,
    q,
    read_catalog,
)
from .fivetran import FivetranViews
from .metrics import MetricViews

__all__ = [
    "FIVETRAN_VIEWS",
    "METRIC_VIEWS",
    "ViewsResult",
    "create_views",
    "create_views_for_pipeline",
    "drop_views",
    "drop_views_for_pipeline",
    "fivetran_schema_name",
]


class ViewBuilder(FivetranViews, MetricViews):
    """Builds every view's SELECT from the catalog of one dataset."""

    def build(self) -> list[View]:
        views: list[View] = []
        for name in FIVETRAN_VIEWS:
            sql = getattr(self, name)()
            if sql is None:
                self.skipped[f"{self.fivetran_schema}.{name}"] = "source table not loaded"
            else:
                views.append(View(self.fivetran_schema, name, sql))
        for name in METRIC_VIEWS:
            sql = getattr(self, name)()
            if sql is None:
                self.skipped[name] = "source tables not loaded"
            else:
                views.append(View(self.dataset, name, sql))
        return views



# --------------------------------------------------------------------------- apply


def fivetran_schema_name(dataset: str, fivetran_schema: str | None = None) -> str:
    name = fivetran_schema or f"{dataset}{FIVETRAN_SUFFIX}"
    if not _NAME_RE.match(name):
        raise ValueError(
            f"invalid schema name '{name}' for the Fivetran-compatible views: use at most 63 letters, "
            "digits or underscores (shorten --dataset or pass --fivetran-schema)"
        )
    return name


def _drop_statements(dataset: str, fivetran_schema: str) -> list[str]:
    drops = [f"drop view if exists {q(dataset)}.{q(name)}" for name in reversed(METRIC_VIEWS)]
    drops += [f"drop view if exists {q(fivetran_schema)}.{q(name)}" for name in FIVETRAN_VIEWS]
    return drops


def create_views(
    execute: Callable[[str], Any],
    fetch: Callable[[str], list[tuple[Any, ...]]],
    *,
    dataset: str,
    destination: str = "duckdb",
    fivetran_schema: str | None = None,
) -> ViewsResult:
    """Drop and re-create every view with the given executor (one transaction is the caller's)."""
    schema = fivetran_schema_name(dataset, fivetran_schema)
    catalog = read_catalog(fetch, dataset)
    result = ViewsResult(fivetran_schema=schema, dataset=dataset)
    if not catalog:
        result.skipped["all"] = f"dataset '{dataset}' has no tables yet"
        return result
    # views are not tables: leave them out of what the builder sees as loaded
    view_names = {
        str(r[0])
        for r in fetch(
            "select table_name from information_schema.tables "
            f"where table_schema = {lit(dataset)} and table_type = 'VIEW'"
        )
    }
    for name in view_names:
        catalog.pop(name, None)
    builder = ViewBuilder(catalog, dataset, schema, dialect_for(destination))
    views = builder.build()
    execute(f"create schema if not exists {q(schema)}")
    for stmt in _drop_statements(dataset, schema):
        execute(stmt)
    for view in views:
        execute(f"create view {q(view.schema)}.{q(view.name)} as\n{view.sql}")
        (result.fivetran_views if view.schema == schema else result.metric_views).append(view.name)
    result.skipped.update(builder.skipped)
    return result


def drop_views(execute: Callable[[str], Any], *, dataset: str, fivetran_schema: str | None = None) -> None:
    """Remove our views (before a full refresh drops the tables they read in Postgres)."""
    schema = fivetran_schema_name(dataset, fivetran_schema)
    for stmt in _drop_statements(dataset, schema):
        execute(stmt)


def _sql_client_runner(client: SqlClientBase[Any]) -> tuple[Callable[[str], Any], Callable[[str], list[tuple[Any, ...]]]]:
    def execute(sql: str) -> Any:
        return client.execute_sql(sql)

    def fetch(sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in (client.execute_sql(sql) or [])]

    return execute, fetch


def destination_name(pipeline: Any) -> str:
    dest = getattr(pipeline, "destination", None)
    name = getattr(dest, "destination_name", None) or getattr(dest, "destination_type", "") or ""
    return str(name).rsplit(".", 1)[-1]


def create_views_for_pipeline(pipeline: Any, *, fivetran_schema: str | None = None) -> ViewsResult:
    """Create/replace all views in the pipeline's destination dataset, in one transaction."""
    with pipeline.sql_client() as client:
        execute, fetch = _sql_client_runner(client)
        with client.begin_transaction():
            return create_views(
                execute,
                fetch,
                dataset=pipeline.dataset_name,
                destination=destination_name(pipeline),
                fivetran_schema=fivetran_schema,
            )


def drop_views_for_pipeline(pipeline: Any, *, fivetran_schema: str | None = None) -> None:
    with pipeline.sql_client() as client:
        execute, _ = _sql_client_runner(client)
        with client.begin_transaction():
            drop_views(execute, dataset=pipeline.dataset_name, fivetran_schema=fivetran_schema)

"""Building blocks of the views: SQL quoting and dialect, the table catalog, and the builder base
with the bookkeeping columns every view shares. Why separate: the Fivetran layer and the
metric views both stand on these, and neither should know the other."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

FIVETRAN_SUFFIX = "_fivetran"
FIVETRAN_VIEWS = (
    "admin",
    "team",
    "team_admin",
    "tag",
    "company_history",
    "contact_history",
    "conversation_history",
    "conversation_part_history",
    "contact_company_history",
    "contact_tag_history",
    "company_tag_history",
    "conversation_tag_history",
    "conversation_contact_history",
)
METRIC_VIEWS = ("conversation_metrics", "admin_metrics", "company_metrics")  # creation order

TS = "timestamp with time zone"
TXT = "varchar"
INT = "bigint"
BOOL = "boolean"
DBL = "double precision"
MIN = "numeric(18,2)"  # durations in minutes, averages and medians (2 decimals, same on both)
END_OF_TIME = "9999-12-31 23:59:59.999+00"  # Fivetran's _fivetran_end for the active version

# columns that, when a data-model change adds them, mark a row deleted / give it a validity range
DELETED_FLAGS = ("is_deleted", "deleted", "_deleted", "_fivetran_deleted")
DELETED_TIMES = ("_deleted_at", "deleted_at")
VALID_FROM, VALID_TO = "_dlt_valid_from", "_dlt_valid_to"  # dlt's scd2 columns

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
CONTACT_TYPES = "('user', 'lead', 'contact')"
ASSIGNMENT = "(p.part_type like '%assignment%' or p.part_type = 'assign_and_reopen')"
REOPEN = "p.part_type in ('open', 'assign_and_reopen')"


def q(name: str) -> str:
    """A quoted identifier (names come from information_schema or our own constants)."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# --------------------------------------------------------------------------- dialect


@dataclass(frozen=True)
class Dialect:
    """The only place DuckDB and Postgres SQL differ."""

    name: str  # "duckdb" or "postgres" (anything else is treated like postgres)

    @property
    def duckdb(self) -> bool:
        return self.name in ("duckdb", "motherduck")

    def to_bigint(self, expr: str) -> str:
        """A numeric id as bigint; NULL (not an error) when the text is not a plain number."""
        if self.duckdb:
            return f"try_cast({expr} as {INT})"
        return f"(case when cast({expr} as {TXT}) ~ '^[0-9]{{1,18}}$' then cast(cast({expr} as {TXT}) as {INT}) end)"

    def json_text(self, expr: str, key: str) -> str:
        """A top-level key of a JSON object as text (`->>` works on both; jsonb in Postgres)."""
        cast_to = "json" if self.duckdb else "jsonb"
        return f"(cast({expr} as {cast_to}) ->> {lit(key)})"

    def json_array_rows(self, expr: str, alias: str, column: str) -> str:
        """A lateral join producing one row per element (as text) of a JSON array."""
        if self.duckdb:
            return f"cross join unnest(from_json(cast({expr} as json), '[\"VARCHAR\"]')) as {alias}({column})"
        return f"cross join lateral jsonb_array_elements_text(cast({expr} as jsonb)) as {alias}({column})"

    @staticmethod
    def minutes(start: str, end: str) -> str:
        """Minutes from start to end, rounded to 2 decimals (extract(epoch) works on both)."""
        seconds = f"(extract(epoch from {end}) - extract(epoch from {start}))"
        return f"cast(round(cast({seconds} as numeric(20,3)) / 60, 2) as {MIN})"

    def int_div(self, a: str, b: str) -> str:
        """Integer division truncating toward zero (DuckDB's `/` is float division)."""
        return f"(({a}) // ({b}))" if self.duckdb else f"(({a}) / ({b}))"

    @staticmethod
    def _from_cents(cents: str) -> str:
        return f"cast(cast({cents} as numeric(20,2)) / 100 as {MIN})"

    def median(self, expr: str) -> str:
        """Median rounded half away from zero to 2 decimals, computed exactly on both engines.

        The median of whole cents is k or k + 0.5 (exact in a double), so rounding happens on
        integers; rounding the double directly differs between DuckDB and Postgres on .xx5 ties.
        """
        p2 = f"cast(percentile_cont(0.5) within group (order by cast({expr} * 100 as {INT})) * 2 as {INT})"
        cents = self.int_div(f"{p2} + case when mod({p2}, 2) = 0 then 0 when {p2} > 0 then 1 else -1 end", "2")
        return self._from_cents(cents)

    def average(self, expr: str) -> str:
        """Average of non-negative integers, rounded half up to 2 decimals, exactly on both."""
        total, n = f"cast(sum({expr}) as {INT})", f"count({expr})"
        cents = self.int_div(f"200 * {total} + {n}", f"2 * {n}")
        return f"case when {n} > 0 then {self._from_cents(cents)} end"


def dialect_for(destination: str) -> Dialect:
    return Dialect("duckdb" if destination in ("duckdb", "motherduck") else "postgres")


# --------------------------------------------------------------------------- catalog

Catalog = dict[str, dict[str, str]]  # table -> column -> data_type (lower case), in column order


class Table:
    """One source table under an alias; `col` gives a typed expression or a typed NULL."""

    def __init__(self, catalog: Catalog, dataset: str, name: str, alias: str) -> None:
        self.name = name
        self.alias = alias
        self.ref = f"{q(dataset)}.{q(name)}"
        self.cols = catalog.get(name, {})

    @property
    def exists(self) -> bool:
        return bool(self.cols)

    def has(self, column: str) -> bool:
        return column in self.cols

    def raw(self, column: str) -> str:
        return f"{self.alias}.{q(column)}"

    def col(self, column: str, typ: str) -> str:
        if not self.has(column):
            return f"cast(null as {typ})"
        if typ == TXT:  # Postgres tables loaded by csv COPY (before 2026-12-02) hold NULL for ''
            return f"nullif(cast({self.raw(column)} as {TXT}), '')"
        return f"cast({self.raw(column)} as {typ})"

    def first(self, columns: Sequence[str], typ: str) -> str:
        """The first of several candidate columns that exists (typed NULL if none)."""
        for column in columns:
            if self.has(column):
                return self.col(column, typ)
        return f"cast(null as {typ})"

    def custom_columns(self) -> list[str]:
        return [c for c in self.cols if c.startswith("custom_")]

    def current(self) -> str:
        """FROM item with only the current version of each row (dlt scd2 keeps old versions)."""
        if self.has(VALID_TO):
            return f"(select * from {self.ref} where {q(VALID_TO)} is null) {self.alias}"
        return f"{self.ref} {self.alias}"

    def deleted(self) -> str:
        """Boolean: the row is marked deleted (false while no such column exists)."""
        parts = [f"coalesce(cast({self.raw(c)} as {BOOL}), false)" for c in DELETED_FLAGS if self.has(c)]
        parts += [f"{self.raw(c)} is not null" for c in DELETED_TIMES if self.has(c)]
        return "(" + " or ".join(parts) + ")" if parts else "false"


def read_catalog(fetch: Callable[[str], list[tuple[Any, ...]]], dataset: str) -> Catalog:
    rows = fetch(
        "select table_name, column_name, data_type from information_schema.columns "
        f"where table_schema = {lit(dataset)} order by table_name, ordinal_position"
    )
    catalog: Catalog = {}
    for table, column, data_type in rows:
        catalog.setdefault(str(table), {})[str(column)] = str(data_type).lower()
    return catalog


# --------------------------------------------------------------------------- builder


@dataclass
class View:
    schema: str
    name: str
    sql: str  # the SELECT


@dataclass
class ViewsResult:
    fivetran_schema: str
    dataset: str
    fivetran_views: list[str] = field(default_factory=list)
    metric_views: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # view -> why

    def describe(self) -> str:
        text = (
            f"Views: {len(self.fivetran_views)} Fivetran-compatible in '{self.fivetran_schema}', "
            f"{len(self.metric_views)} metric views in '{self.dataset}'"
            + (f" ({', '.join(self.metric_views)})" if self.metric_views else "")
        )
        if self.skipped:
            text += "; skipped " + ", ".join(f"{v} ({why})" for v, why in self.skipped.items())
        return text


def _select(columns: Sequence[tuple[str, str]], body: str) -> str:
    cols = ",\n  ".join(f"{expr} as {q(name)}" for name, expr in columns)
    return f"select\n  {cols}\n{body}"


class ViewBuilderBase:
    """What every view's SELECT needs: typed table access and the bookkeeping columns."""

    def __init__(self, catalog: Catalog, dataset: str, fivetran_schema: str, dialect: Dialect) -> None:
        self.catalog = catalog
        self.dataset = dataset
        self.fivetran_schema = fivetran_schema
        self.d = dialect
        self.skipped: dict[str, str] = {}

    def t(self, name: str, alias: str) -> Table:
        return Table(self.catalog, self.dataset, name, alias)

    # ----------------------------------------------------------------- bookkeeping

    def loads_join(self, load_id_expr: str, alias: str = "l") -> str:
        if not self.t("_dlt_loads", "x").exists:
            return ""
        return (
            f"left join (select load_id, max(inserted_at) as inserted_at from {q(self.dataset)}.{q('_dlt_loads')} "
            f"group by load_id) {alias} on {alias}.load_id = {load_id_expr}"
        )

    def synced(self, alias: str = "l") -> str:
        if not self.t("_dlt_loads", "x").exists:
            return f"cast(null as {TS})"
        return f"cast({alias}.inserted_at as {TS})"

    def history_columns(
        self, root: Table, start_from: str | None, *, deleted: bool = True
    ) -> list[tuple[str, str]]:
        """_fivetran_start/_end/_active (+ _deleted) and _fivetran_synced for a row of `root`."""
        synced = self.synced()
        if root.has(VALID_FROM):
            start = f"coalesce({root.col(VALID_FROM, TS)}, {synced})"
            end = f"coalesce({root.col(VALID_TO, TS)}, cast({lit(END_OF_TIME)} as {TS}))"
            active = f"({root.raw(VALID_TO)} is null)"
        else:
            start = (
                f"coalesce({root.col(start_from, TS)}, {synced})"
                if start_from and root.has(start_from)
                else synced
            )
            end = f"cast({lit(END_OF_TIME)} as {TS})"
            active = "true"
        cols = [
            ("_fivetran_start", start),
            ("_fivetran_end", end),
            ("_fivetran_active", f"cast({active} as {BOOL})"),
        ]
        if deleted:
            cols.append(("_fivetran_deleted", f"cast({root.deleted()} as {BOOL})"))
        cols.append(("_fivetran_synced", synced))
        return cols

    def current_columns(self, root: Table) -> list[tuple[str, str]]:
        """Non-history tables (admin, team, tag): _fivetran_deleted and _fivetran_synced."""
        return [
            ("_fivetran_deleted", f"cast({root.deleted()} as {BOOL})"),
            ("_fivetran_synced", self.synced()),
        ]

    def customs(self, root: Table) -> list[tuple[str, str]]:
        return [(c, root.raw(c)) for c in root.custom_columns()]

    # ----------------------------------------------------------------- fivetran layer


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

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

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
        if typ == TXT:  # dlt's Postgres loader stores '' as NULL: make both destinations agree
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


class ViewBuilder:
    """Builds every view's SELECT from the catalog of one dataset."""

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

    def admin(self) -> str | None:
        a = self.t("admins", "a")
        if not a.exists:
            return None
        cols = [
            ("id", a.col("id", TXT)),
            ("name", a.col("name", TXT)),
            ("email", a.col("email", TXT)),
            ("job_title", a.col("job_title", TXT)),
            ("type", a.col("type", TXT)),
            ("away_mode_enabled", a.col("away_mode_enabled", BOOL)),
            ("away_mode_reassign", a.col("away_mode_reassign", BOOL)),
            ("has_inbox_seat", a.col("has_inbox_seat", BOOL)),
            ("avatar", a.first(["avatar", "avatar__image_url"], TXT)),
            *self.current_columns(a),
        ]
        return _select(cols, f"from {a.current()}\n{self.loads_join(a.raw('_dlt_load_id'))}")

    def team(self) -> str | None:
        t = self.t("teams", "t")
        if not t.exists:
            return None
        cols = [
            ("id", self.d.to_bigint(t.raw("id"))),
            ("name", t.col("name", TXT)),
            ("assignment_limit", t.col("assignment_limit", INT)),
            ("distribution_method", t.col("distribution_method", TXT)),
            *self.current_columns(t),
        ]
        return _select(cols, f"from {t.current()}\n{self.loads_join(t.raw('_dlt_load_id'))}")

    def team_admin(self) -> str | None:
        t = self.t("teams", "t")
        if t.has("admin_ids"):
            cols = [
                ("team_id", self.d.to_bigint(t.raw("id"))),
                ("admin_id", f"cast(m.admin_id as {TXT})"),
                *self.current_columns(t),
            ]
            body = (
                f"from {t.current()}\n{self.d.json_array_rows(t.raw('admin_ids'), 'm', 'admin_id')}\n"
                f"{self.loads_join(t.raw('_dlt_load_id'))}"
            )
            return _select(cols, body)
        a = self.t("admins", "a")
        if a.has("team_ids"):
            cols = [
                ("team_id", self.d.to_bigint("m.team_id")),
                ("admin_id", a.col("id", TXT)),
                *self.current_columns(a),
            ]
            body = (
                f"from {a.current()}\n{self.d.json_array_rows(a.raw('team_ids'), 'm', 'team_id')}\n"
                f"{self.loads_join(a.raw('_dlt_load_id'))}"
            )
            return _select(cols, body)
        return None

    def tag(self) -> str | None:
        t = self.t("tags", "t")
        if not t.exists:
            return None
        cols = [("id", self.d.to_bigint(t.raw("id"))), ("name", t.col("name", TXT)), *self.current_columns(t)]
        return _select(cols, f"from {t.current()}\n{self.loads_join(t.raw('_dlt_load_id'))}")

    def company_history(self) -> str | None:
        c = self.t("companies", "c")
        if not c.exists:
            return None
        cols = [
            ("id", c.col("id", TXT)),
            ("company_id", c.col("company_id", TXT)),
            ("name", c.col("name", TXT)),
            ("website", c.col("website", TXT)),
            ("industry", c.col("industry", TXT)),
            ("created_at", c.col("created_at", TS)),
            ("updated_at", c.col("updated_at", TS)),
            ("remote_created_at", c.col("remote_created_at", TS)),
            ("last_request_at", c.col("last_request_at", TS)),
            ("user_count", c.col("user_count", INT)),
            ("session_count", c.col("session_count", INT)),
            ("monthly_spend", c.col("monthly_spend", DBL)),
            ("size", c.col("size", INT)),
            ("plan_id", self.d.to_bigint(c.raw("plan__id")) if c.has("plan__id") else f"cast(null as {INT})"),
            ("plan_name", c.col("plan__name", TXT)),
            ("app_id", c.col("app_id", TXT)),
            ("type", c.col("type", TXT)),
            *self.customs(c),
            *self.history_columns(c, "updated_at"),
        ]
        return _select(cols, f"from {c.ref} c\n{self.loads_join(c.raw('_dlt_load_id'))}")

    def contact_history(self) -> str | None:
        c = self.t("contacts", "c")
        if not c.exists:
            return None
        cols = [
            ("id", c.col("id", TXT)),
            ("admin_id", c.col("owner_id", TXT)),
            ("external_id", c.col("external_id", TXT)),
            ("workspace_id", c.col("workspace_id", TXT)),
            ("role", c.col("role", TXT)),
            ("type", c.col("type", TXT)),
            ("name", c.col("name", TXT)),
            ("email", c.col("email", TXT)),
            ("email_domain", c.col("email_domain", TXT)),
            ("phone", c.col("phone", TXT)),
            ("created_at", c.col("created_at", TS)),
            ("updated_at", c.col("updated_at", TS)),
            ("signed_up_at", c.col("signed_up_at", TS)),
            ("last_seen_at", c.col("last_seen_at", TS)),
            ("last_replied_at", c.col("last_replied_at", TS)),
            ("last_contacted_at", c.col("last_contacted_at", TS)),
            ("last_email_opened_at", c.col("last_email_opened_at", TS)),
            ("last_email_clicked_at", c.col("last_email_clicked_at", TS)),
            ("unsubscribed_from_emails", c.col("unsubscribed_from_emails", BOOL)),
            ("has_hard_bounced", c.col("has_hard_bounced", BOOL)),
            ("marked_email_as_spam", c.col("marked_email_as_spam", BOOL)),
            ("browser", c.col("browser", TXT)),
            ("browser_version", c.col("browser_version", TXT)),
            ("browser_language", c.col("browser_language", TXT)),
            ("os", c.col("os", TXT)),
            ("language_override", c.col("language_override", TXT)),
            ("location_country", c.col("location__country", TXT)),
            ("location_region", c.col("location__region", TXT)),
            ("location_city", c.col("location__city", TXT)),
            *self.customs(c),
            *self.history_columns(c, "updated_at"),
        ]
        return _select(cols, f"from {c.ref} c\n{self.loads_join(c.raw('_dlt_load_id'))}")

    def conversation_history(self) -> str | None:
        c = self.t("conversations", "c")
        if not c.exists:
            return None
        admin = c.col("admin_assignee_id", TXT)
        team = c.col("team_assignee_id", TXT)
        src_author = c.has("source__author")
        rating_teammate = c.has("conversation_rating__teammate")
        rating_contact = c.has("conversation_rating__contact")
        stats = [
            ("first_contact_reply_at", TS), ("first_assignment_at", TS), ("first_admin_reply_at", TS),
            ("first_close_at", TS), ("last_assignment_at", TS), ("last_assignment_admin_reply_at", TS),
            ("last_contact_reply_at", TS), ("last_admin_reply_at", TS), ("last_close_at", TS),
            ("last_closed_by_id", TXT), ("count_reopens", INT), ("count_assignments", INT),
            ("count_conversation_parts", INT), ("time_to_assignment", INT), ("time_to_admin_reply", INT),
            ("time_to_first_close", INT), ("time_to_last_close", INT), ("median_time_to_reply", INT),
            ("handling_time", INT),
        ]  # fmt: skip
        cols = [
            ("id", self.d.to_bigint(c.raw("id"))),
            ("created_at", c.col("created_at", TS)),
            ("updated_at", c.col("updated_at", TS)),
            ("type", c.col("type", TXT)),
            ("title", c.col("title", TXT)),
            ("state", c.col("state", TXT)),
            ("open", c.col("open", BOOL)),
            ("read", c.col("read", BOOL)),
            ("priority", c.col("priority", TXT)),
            ("waiting_since", c.col("waiting_since", TS)),
            ("snoozed_until", c.col("snoozed_until", TS)),
            ("assignee_id", f"coalesce({admin}, {team})"),
            (
                "assignee_type",
                f"cast(case when {admin} is not null then 'admin' when {team} is not null then 'team' end as {TXT})",
            ),
            ("admin_assignee_id", admin),
            (
                "team_assignee_id",
                self.d.to_bigint(c.raw("team_assignee_id"))
                if c.has("team_assignee_id")
                else f"cast(null as {INT})",
            ),
            ("conversation_rating_value", c.col("conversation_rating__rating", INT)),
            ("conversation_rating_remark", c.col("conversation_rating__remark", TXT)),
            ("conversation_rating_created_at", c.col("conversation_rating__created_at", TS)),
            (
                "conversation_rating_contact_id",
                f"cast({self.d.json_text(c.raw('conversation_rating__contact'), 'id')} as {TXT})"
                if rating_contact
                else f"cast(null as {TXT})",
            ),
            (
                "conversation_rating_teammate_id",
                f"cast({self.d.json_text(c.raw('conversation_rating__teammate'), 'id')} as {TXT})"
                if rating_teammate
                else f"cast(null as {TXT})",
            ),
            ("first_contact_reply_created_at", c.col("first_contact_reply__created_at", TS)),
            ("first_contact_reply_type", c.col("first_contact_reply__type", TXT)),
            ("first_contact_reply_url", c.col("first_contact_reply__url", TXT)),
            ("source_id", c.col("source__id", TXT)),
            ("source_type", c.col("source__type", TXT)),
            ("source_delivered_as", c.col("source__delivered_as", TXT)),
            ("source_subject", c.col("source__subject", TXT)),
            ("source_body", c.col("source__body", TXT)),
            ("source_url", c.col("source__url", TXT)),
            *[
                (
                    f"source_author_{k}",
                    f"cast({self.d.json_text(c.raw('source__author'), k)} as {TXT})"
                    if src_author
                    else f"cast(null as {TXT})",
                )
                for k in ("id", "type", "name", "email")
            ],
            ("sla_name", c.col("sla_applied__sla_name", TXT)),
            ("sla_status", c.col("sla_applied__sla_status", TXT)),
            ("ai_agent_participated", c.col("ai_agent_participated", BOOL)),
            *[(f"statistics_{name}", c.col(f"statistics__{name}", typ)) for name, typ in stats],
            ("parts_total_count", c.col("parts_total_count", INT)),
            ("parts_truncated", c.col("parts_truncated", BOOL)),
            *self.customs(c),
            *self.history_columns(c, "updated_at"),
        ]
        return _select(cols, f"from {c.ref} c\n{self.loads_join(c.raw('_dlt_load_id'))}")

    def conversation_part_history(self) -> str | None:
        p = self.t("conversation_parts", "p")
        c = self.t("conversations", "c")
        if not p.exists:
            return None
        conv_join = ""
        conv_updated = f"cast(null as {TS})"
        if c.has("updated_at"):
            conv_join = f"left join {c.current()} on c.{q('id')} = p.{q('conversation_id')}"
            conv_updated = c.col("updated_at", TS)
        cols = [
            ("id", self.d.to_bigint(p.raw("id"))),
            ("conversation_id", self.d.to_bigint(p.raw("conversation_id"))),
            ("part_type", p.col("part_type", TXT)),
            ("body", p.col("body", TXT)),
            ("author_id", p.col("author__id", TXT)),
            ("author_type", p.col("author__type", TXT)),
            ("author_name", p.col("author__name", TXT)),
            ("author_email", p.col("author__email", TXT)),
            (
                "assigned_to_id",
                self.d.to_bigint(p.raw("assigned_to__id"))
                if p.has("assigned_to__id")
                else f"cast(null as {INT})",
            ),
            ("assigned_to_type", p.col("assigned_to__type", TXT)),
            ("created_at", p.col("created_at", TS)),
            ("updated_at", p.col("updated_at", TS)),
            ("notified_at", p.col("notified_at", TS)),
            ("redacted", p.col("redacted", BOOL)),
            ("conversation_updated_at", conv_updated),
            *self.history_columns(p, "updated_at"),
        ]
        body = f"from {p.ref} p\n{conv_join}\n{self.loads_join(p.raw('_dlt_load_id'))}"
        return _select(cols, body)

    def _link(
        self,
        parent: str,
        child: str,
        parent_key: str,
        other_key: str,
        other_expr: Callable[[Table], str],
    ) -> str | None:
        """A Fivetran mapping table (e.g. contact_tag_history) from a dlt child table."""
        par = self.t(parent, "r")
        ch = self.t(child, "k")
        if not (par.exists and ch.exists):
            return None
        updated = f"{parent_key.rsplit('_', 1)[0]}_updated_at"  # contact_id -> contact_updated_at
        is_conv = parent_key == "conversation_id"
        parent_id = self.d.to_bigint(par.raw("id")) if is_conv else par.col("id", TXT)
        cols = [
            (parent_key, parent_id),
            (other_key, other_expr(ch)),
            (updated, par.col("updated_at", TS)),
            *self.history_columns(par, "updated_at"),
        ]
        body = (
            f"from {ch.ref} k\njoin {par.ref} r on r.{q('_dlt_id')} = k.{q('_dlt_parent_id')}\n"
            f"{self.loads_join(par.raw('_dlt_load_id'))}"
        )
        return _select(cols, body)

    def contact_company_history(self) -> str | None:
        return self._link(
            "contacts", "contacts__companies", "contact_id", "company_id", lambda k: k.col("id", TXT)
        )

    def contact_tag_history(self) -> str | None:
        return self._link(
            "contacts", "contacts__tags", "contact_id", "tag_id", lambda k: self.d.to_bigint(k.raw("id"))
        )

    def company_tag_history(self) -> str | None:
        return self._link(
            "companies", "companies__tags", "company_id", "tag_id", lambda k: self.d.to_bigint(k.raw("id"))
        )

    def conversation_tag_history(self) -> str | None:
        return self._link(
            "conversations",
            "conversations__tags",
            "conversation_id",
            "tag_id",
            lambda k: self.d.to_bigint(k.raw("id")),
        )

    def conversation_contact_history(self) -> str | None:
        return self._link(
            "conversations",
            "conversations__contacts",
            "conversation_id",
            "contact_id",
            lambda k: k.col("id", TXT),
        )

    # ----------------------------------------------------------------- metrics

    def conversation_metrics(self) -> str | None:
        c = self.t("conversations", "c")
        p = self.t("conversation_parts", "p")
        if not (c.exists and p.has("conversation_id")):
            return None
        d = self.d
        author_type = p.col("author__type", TXT)
        author_id = p.col("author__id", TXT)
        body = p.col("body", TXT)
        part_type = p.col("part_type", TXT)
        assigned_type = p.col("assigned_to__type", TXT)
        assigned_id = p.col("assigned_to__id", TXT)
        src_type = (
            f"cast({d.json_text(c.raw('source__author'), 'type')} as {TXT})"
            if c.has("source__author")
            else f"cast(null as {TXT})"
        )
        src_id = (
            f"cast({d.json_text(c.raw('source__author'), 'id')} as {TXT})"
            if c.has("source__author")
            else f"cast(null as {TXT})"
        )
        teammate = (
            f"cast({d.json_text(c.raw('conversation_rating__teammate'), 'id')} as {TXT})"
            if c.has("conversation_rating__teammate")
            else f"cast(null as {TXT})"
        )
        flags = {
            "contact_reply": f"p.part_type = 'comment' and p.author_type in {CONTACT_TYPES}",
            "close": "p.part_type = 'close'",
            "admin_close": "p.part_type = 'close' and p.author_type = 'admin'",
            "admin_response": (
                "p.part_type in ('comment', 'assignment') and p.author_type = 'admin' "
                "and p.body is not null and p.body <> ''"
            ),
            "team_assignment": f"{ASSIGNMENT} and p.assigned_to_type = 'team'",
        }
        flag_cols = ",\n    ".join(
            f"case when {cond} then 1 else 0 end as f_{k}" for k, cond in flags.items()
        )
        ranks = ",\n    ".join(
            f"row_number() over (partition by p.conversation_id, p.f_{k} order by p.created_at, p.part_num, p.part_id) as r_{k},\n    "
            f"row_number() over (partition by p.conversation_id, p.f_{k} order by p.created_at desc, p.part_num desc, p.part_id desc) as rl_{k}"
            for k in flags
        )

        def pick(flag: str, what: str, last: bool = False) -> str:
            r = "rl" if last else "r"
            return f"max(case when p.f_{flag} = 1 and p.{r}_{flag} = 1 then p.{what} end)"

        parts_sql = f"""parts as (
  select
    cast(p.{q("conversation_id")} as {TXT}) as conversation_id,
    cast(p.{q("id")} as {TXT}) as part_id,
    {d.to_bigint(p.raw("id"))} as part_num,
    {part_type} as part_type,
    {author_type} as author_type,
    {author_id} as author_id,
    {assigned_type} as assigned_to_type,
    {assigned_id} as assigned_to_id,
    {body} as body,
    {p.col("created_at", TS)} as created_at
  from {p.current()}
),
flagged as (
  select p.*,
    {flag_cols}
  from parts p
),
ranked as (
  select p.*,
    {ranks}
  from flagged p
),
agg as (
  select
    p.conversation_id as agg_conversation_id,
    count(*) as count_total_parts,
    min(case when p.f_contact_reply = 1 then p.created_at end) as first_contact_part_at,
    max(case when p.f_contact_reply = 1 then p.created_at end) as last_contact_reply_at,
    {pick("contact_reply", "author_id")} as first_contact_part_author_id,
    {pick("contact_reply", "author_id", True)} as last_contact_part_author_id,
    min(case when {ASSIGNMENT} then p.created_at end) as first_assignment_at,
    max(case when {ASSIGNMENT} then p.created_at end) as last_assignment_at,
    sum(case when {ASSIGNMENT} then 1 else 0 end) as count_assignments,
    min(case when p.f_admin_response = 1 then p.created_at end) as first_admin_response_at,
    max(case when p.f_admin_response = 1 then p.created_at end) as last_admin_response_at,
    sum(p.f_admin_response) as count_admin_responses,
    {pick("admin_response", "author_id")} as first_admin_response_by_id,
    sum(case when p.part_type = 'comment' and p.author_type in {CONTACT_TYPES} then 1 else 0 end) as count_contact_replies,
    min(case when {REOPEN} then p.created_at end) as first_reopen_at,
    max(case when {REOPEN} then p.created_at end) as last_reopen_at,
    sum(case when {REOPEN} then 1 else 0 end) as count_reopens,
    min(case when p.f_close = 1 then p.created_at end) as first_close_at,
    max(case when p.f_close = 1 then p.created_at end) as last_close_at,
    sum(p.f_close) as count_closes,
    {pick("close", "author_id")} as first_close_by_id,
    {pick("close", "author_type")} as first_close_by_type,
    {pick("close", "author_id", True)} as last_close_by_id,
    {pick("close", "author_type", True)} as last_close_by_type,
    min(case when p.f_admin_close = 1 then p.created_at end) as first_admin_close_at,
    max(case when p.f_admin_close = 1 then p.created_at end) as last_admin_close_at,
    {pick("admin_close", "author_id")} as first_close_by_admin_id,
    {pick("admin_close", "author_id", True)} as last_close_by_admin_id,
    {pick("team_assignment", "assigned_to_id")} as first_team_id,
    {pick("team_assignment", "assigned_to_id", True)} as last_team_id,
    sum(case when p.part_type = 'comment' and p.author_type = 'bot' then 1 else 0 end) as count_bot_replies,
    sum(case when p.part_type = 'note' then 1 else 0 end) as count_notes
  from ranked p
  group by p.conversation_id
)"""
        conv_sql = f"""conv as (
  select
    cast(c.{q("id")} as {TXT}) as conversation_id,
    {c.col("created_at", TS)} as conversation_created_at,
    {c.col("updated_at", TS)} as conversation_updated_at,
    {c.col("state", TXT)} as conversation_state,
    {c.col("admin_assignee_id", TXT)} as admin_assignee_id,
    {c.col("team_assignee_id", TXT)} as team_assignee_id,
    {src_type} as source_author_type,
    {src_id} as source_author_id,
    {c.col("source__type", TXT)} as source_type,
    {c.col("conversation_rating__rating", INT)} as conversation_rating,
    {c.col("conversation_rating__remark", TXT)} as conversation_rating_remark,
    {c.col("conversation_rating__created_at", TS)} as conversation_rated_at,
    {teammate} as rated_teammate_id,
    {c.col("parts_total_count", INT)} as parts_total_count,
    {c.col("parts_returned_count", INT)} as parts_returned_count,
    coalesce({c.col("parts_truncated", BOOL)}, false) as parts_truncated
  from {c.current()}
  where not {c.deleted()}
),
joined as (
  select conv.*, agg.*,
    agg.first_contact_part_at as first_contact_reply_at,
    case when conv.source_author_type in {CONTACT_TYPES} then conv.source_author_id
         else agg.first_contact_part_author_id end as first_contact_author_id
  from conv
  left join agg on agg.agg_conversation_id = conv.conversation_id
)"""
        m = self.d.minutes
        out = [
            ("conversation_id", "j.conversation_id"),
            ("conversation_created_at", "j.conversation_created_at"),
            ("conversation_updated_at", "j.conversation_updated_at"),
            ("conversation_state", "j.conversation_state"),
            ("admin_assignee_id", "j.admin_assignee_id"),
            ("team_assignee_id", "j.team_assignee_id"),
            ("source_type", "j.source_type"),
            ("source_author_type", "j.source_author_type"),
            ("first_contact_author_id", "j.first_contact_author_id"),
            ("last_contact_author_id", "coalesce(j.last_contact_part_author_id, j.first_contact_author_id)"),
            ("first_contact_reply_at", "j.first_contact_reply_at"),
            ("last_contact_reply_at", "j.last_contact_reply_at"),
            ("first_assignment_at", "j.first_assignment_at"),
            ("last_assignment_at", "j.last_assignment_at"),
            ("first_admin_response_at", "j.first_admin_response_at"),
            ("last_admin_response_at", "j.last_admin_response_at"),
            ("first_admin_response_by_id", "j.first_admin_response_by_id"),
            ("first_reopen_at", "j.first_reopen_at"),
            ("last_reopen_at", "j.last_reopen_at"),
            ("first_close_at", "j.first_close_at"),
            ("last_close_at", "j.last_close_at"),
            ("first_close_by_id", "j.first_close_by_id"),
            ("first_close_by_type", "j.first_close_by_type"),
            ("last_close_by_id", "j.last_close_by_id"),
            ("last_close_by_type", "j.last_close_by_type"),
            ("first_admin_close_at", "j.first_admin_close_at"),
            ("last_admin_close_at", "j.last_admin_close_at"),
            ("first_close_by_admin_id", "j.first_close_by_admin_id"),
            ("last_close_by_admin_id", "j.last_close_by_admin_id"),
            ("first_team_id", "j.first_team_id"),
            ("last_team_id", "j.last_team_id"),
            ("count_total_parts", f"cast(coalesce(j.count_total_parts, 0) as {INT})"),
            ("count_contact_replies", f"cast(coalesce(j.count_contact_replies, 0) as {INT})"),
            ("count_admin_responses", f"cast(coalesce(j.count_admin_responses, 0) as {INT})"),
            ("count_bot_replies", f"cast(coalesce(j.count_bot_replies, 0) as {INT})"),
            ("count_notes", f"cast(coalesce(j.count_notes, 0) as {INT})"),
            ("count_assignments", f"cast(coalesce(j.count_assignments, 0) as {INT})"),
            ("count_reopens", f"cast(coalesce(j.count_reopens, 0) as {INT})"),
            ("count_closes", f"cast(coalesce(j.count_closes, 0) as {INT})"),
            ("conversation_rating", "j.conversation_rating"),
            ("conversation_rating_remark", "j.conversation_rating_remark"),
            ("conversation_rated_at", "j.conversation_rated_at"),
            ("rated_teammate_id", "j.rated_teammate_id"),
            ("time_to_first_assignment_minutes", m("j.conversation_created_at", "j.first_assignment_at")),
            ("time_to_last_assignment_minutes", m("j.conversation_created_at", "j.last_assignment_at")),
            ("time_to_first_response_minutes", m("j.conversation_created_at", "j.first_admin_response_at")),
            ("time_to_first_close_minutes", m("j.first_contact_reply_at", "j.first_admin_close_at")),
            ("time_to_last_close_minutes", m("j.first_contact_reply_at", "j.last_admin_close_at")),
            ("time_to_first_close_any_minutes", m("j.first_contact_reply_at", "j.first_close_at")),
            ("time_to_last_close_any_minutes", m("j.first_contact_reply_at", "j.last_close_at")),
            ("parts_total_count", "j.parts_total_count"),
            ("parts_returned_count", "j.parts_returned_count"),
            ("parts_truncated", "j.parts_truncated"),
        ]
        return f"with {parts_sql},\n{conv_sql}\n" + _select(out, "from joined j")

    def _metric_aggregates(self, alias: str = "m") -> list[tuple[str, str]]:
        d = self.d
        return [
            ("total_conversations", f"cast(count({alias}.conversation_id) as {INT})"),
            (
                "total_conversations_closed",
                f"cast(sum(case when {alias}.conversation_state = 'closed' then 1 else 0 end) as {INT})",
            ),
            (
                "total_conversations_open",
                f"cast(sum(case when {alias}.conversation_state = 'open' then 1 else 0 end) as {INT})",
            ),
            ("total_conversations_rated", f"cast(count({alias}.conversation_rating) as {INT})"),
            ("average_conversation_rating", d.average(f"{alias}.conversation_rating")),
            ("average_conversation_parts", d.average(f"{alias}.count_total_parts")),
            ("median_conversations_reopened", d.median(f"{alias}.count_reopens")),
            ("median_conversation_assignments", d.median(f"{alias}.count_assignments")),
            (
                "median_time_to_first_response_time_minutes",
                d.median(f"{alias}.time_to_first_response_minutes"),
            ),
            ("median_time_to_first_close_minutes", d.median(f"{alias}.time_to_first_close_minutes")),
            ("median_time_to_last_close_minutes", d.median(f"{alias}.time_to_last_close_minutes")),
        ]

    def admin_metrics(self) -> str | None:
        a = self.t("admins", "a")
        if not a.exists or "conversation_metrics" in self.skipped:
            return None
        memberships = ""
        team_name = f"cast(null as {TXT})"
        team_expr = f"cast(null as {TXT})"
        t = self.t("teams", "t")
        if t.has("admin_ids"):
            memberships = (
                f"left join (select cast(t.{q('id')} as {TXT}) as team_id, {t.col('name', TXT)} as team_name, "
                f"cast(m.admin_id as {TXT}) as admin_id from {t.current()} "
                f"{self.d.json_array_rows(t.raw('admin_ids'), 'm', 'admin_id')}) tm on tm.admin_id = cast(a.{q('id')} as {TXT})"
            )
            team_name, team_expr = "tm.team_name", "tm.team_id"
        cols = [
            ("admin_id", a.col("id", TXT)),
            ("admin_name", a.col("name", TXT)),
            ("job_title", a.col("job_title", TXT)),
            ("team_id", team_expr),
            ("team_name", team_name),
            *self._metric_aggregates(),
            (
                "total_conversations_closed_by_admin",
                f"cast((select count(*) from {q(self.dataset)}.{q('conversation_metrics')} x "
                f"where x.last_close_by_admin_id = cast(a.{q('id')} as {TXT})) as {INT})",
            ),
        ]
        group = ", ".join(str(i) for i in range(1, 6))
        body = (
            f"from {a.current()}\n{memberships}\n"
            f"left join {q(self.dataset)}.{q('conversation_metrics')} m on m.admin_assignee_id = cast(a.{q('id')} as {TXT})\n"
            f"group by {group}, a.{q('id')}"
        )
        return _select(cols, body)

    def company_metrics(self) -> str | None:
        co = self.t("companies", "co")
        cc = self.t("contacts__companies", "cc")
        if not (co.exists and cc.exists) or "conversation_metrics" in self.skipped:
            return None
        convc = self.t("conversations__contacts", "k")
        if convc.has("conversation_id"):
            pairs = (
                f"select distinct cast(k.{q('conversation_id')} as {TXT}) as conversation_id, "
                f"cast(cc.{q('id')} as {TXT}) as company_id "
                f"from {convc.ref} k join {cc.ref} cc on cast(cc.{q('contact_id')} as {TXT}) = cast(k.{q('id')} as {TXT})"
            )
        else:  # only the conversation's first contact is known
            pairs = (
                f"select distinct x.conversation_id, cast(cc.{q('id')} as {TXT}) as company_id "
                f"from {q(self.dataset)}.{q('conversation_metrics')} x "
                f"join {cc.ref} cc on cast(cc.{q('contact_id')} as {TXT}) = x.first_contact_author_id"
            )
        cols = [
            ("company_id", co.col("id", TXT)),
            ("company_name", co.col("name", TXT)),
            ("company_external_id", co.col("company_id", TXT)),
            *self._metric_aggregates(),
        ]
        body = (
            f"from {co.current()}\nleft join ({pairs}) pc on pc.company_id = cast(co.{q('id')} as {TXT})\n"
            f"left join {q(self.dataset)}.{q('conversation_metrics')} m on m.conversation_id = pc.conversation_id\n"
            f"group by 1, 2, 3"
        )
        return _select(cols, body)

    # ----------------------------------------------------------------- all

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


def _sql_client_runner(client: Any) -> tuple[Callable[[str], Any], Callable[[str], list[tuple[Any, ...]]]]:
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

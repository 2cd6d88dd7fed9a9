"""The Fivetran-compatible layer: views named, typed and shaped like Fivetran's Intercom tables
(see docs/fivetran-compatibility.md for the column-by-column mapping)."""

from __future__ import annotations

from collections.abc import Callable

from .base import (
    BOOL,
    DBL,
    INT,
    TS,
    TXT,
    Table,
    ViewBuilderBase,
    _select,
    q,
)


class FivetranViews(ViewBuilderBase):
    """One method per Fivetran table; None when its source table is not loaded."""

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

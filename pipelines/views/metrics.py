"""Our own metric views (conversation, admin and company metrics), derived from conversation parts
the way the dbt_intercom package does, for teams without dbt."""

from __future__ import annotations

from .base import (
    ASSIGNMENT,
    BOOL,
    CONTACT_TYPES,
    INT,
    REOPEN,
    TS,
    TXT,
    ViewBuilderBase,
    _select,
    q,
)


class MetricViews(ViewBuilderBase):
    """One method per metric view; None when its source tables are not loaded."""


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


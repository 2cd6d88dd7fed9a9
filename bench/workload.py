"""What a full sync of one emulated workspace must cost at least: R requests, a chain of C calls.

Why a separate module: the bound T_min = max(R / (Q / 60), C * L) must come from the workspace
itself (the store, read directly), never from what our connector happened to do, so a connector
that makes useless calls cannot raise its own bar.

R counts the calls any correct client needs: search pages of 150 per searched model, one detail
GET per conversation, the companies scroll pages plus the final empty page, activity-log pages of
every 5-day created_at window from the app's creation (Intercom 500s on wider windows), and the
single-page lists (/me, admins, tags, teams, segments, data_attributes x3).

C is the longest chain of calls that must happen one after another: the companies scroll (one
open scroll per workspace, each page needs the previous one), or the longest search that cannot
be split. Searches split over disjoint updated_at ranges; contacts search compares by calendar day
in the workspace time zone, so the unsplittable unit is one day's contacts. Conversations search is
second-granular (unless the emulator is told otherwise) and a detail GET needs the id from a
search page: that chain is 2. Single-page reads that must come first (/me for the time zone) add 1.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

PAGE = 150  # search page size (Intercom's maximum)
ACTIVITY_LOG_WINDOW = 5 * 24 * 3600
DATA_ATTRIBUTE_MODELS = ("contact", "company", "conversation")
MAX_RETURNED_PARTS = 500

ALL_STREAMS = (
    "contacts", "companies", "conversations", "conversation_parts", "admins", "tags", "teams",
    "segments", "activity_logs", "data_attributes", "tickets", "ticket_parts",
)


@dataclass
class Workload:
    """Record counts (ground truth), minimum requests per endpoint, and the longest chain."""

    counts: dict[str, int]
    requests: dict[str, int]
    chain: int
    chain_what: str
    app_created_at: int = 0
    contacts_by_day: Counter[str] = field(default_factory=Counter)

    @property
    def R(self) -> int:  # noqa: N802 - the issue's name
        return sum(self.requests.values())

    def t_min(self, latency_ms: float, quota_per_minute: float) -> float:
        """The fastest any client can finish: quota-bound or chain-bound, whichever is longer."""
        quota_bound = self.R / (quota_per_minute / 60.0) if quota_per_minute else 0.0
        return max(quota_bound, self.chain * latency_ms / 1000.0)

    @property
    def total_rows(self) -> int:
        return sum(self.counts.values())


def profile_contacts(profile: str, scale: float) -> int:
    """Contacts of a profile at a scale, without building the workspace (same rounding as the generator)."""
    from intercom_emulator.generator import PROFILES

    return max(1, int(round(PROFILES[profile].contacts * scale)))


def build_workspace(profile: str, seed: int, scale: float) -> Any:
    """The same deterministic workspace the emulator subprocess serves (same profile/seed/scale/day)."""
    from intercom_emulator.store import Workspace

    return Workspace(profile=profile, seed=seed, scale=scale)


def _local_day(epoch: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).astimezone(zone).strftime("%Y-%m-%d")


def compute(
    ws: Any,
    streams: tuple[str, ...] = ALL_STREAMS,
    *,
    now: int | None = None,
    scroll_page_size: int = 50,
    activity_logs_per_page: int = 20,
    conversations_day_granular: bool = False,
    count_parts: bool = True,
) -> Workload:
    """R, C and ground-truth row counts for a sync of `streams` of the workspace `ws`."""
    now = int(now if now is not None else ws.clock.now())
    zone = ZoneInfo(ws.timezone)
    counts: dict[str, int] = {}
    req: dict[str, int] = {"GET /me": 1}
    chains: dict[str, int] = {}

    if "contacts" in streams:
        n = ws.count("contacts")
        counts["contacts"] = n
        req["POST /contacts/search"] = max(1, math.ceil(n / PAGE))
        by_day: Counter[str] = Counter(
            _local_day(int(ws.updated_at_of("contacts", cid)), zone) for cid in ws.ids("contacts")
        )
        longest_day = max(by_day.values()) if by_day else 0
        chains["contacts search (longest single day) after /me"] = 1 + max(1, math.ceil(longest_day / PAGE))
        # embedded tags/companies lists stop at 10: contacts with more need GET /contacts/{id}/<list>
        gen = ws.gen
        special = sum(1 for i in range(0, n, 1) if gen.is_special(i)) if hasattr(gen, "is_special") else 0
        if special:
            req["GET /contacts/{id}/tags"] = special
            req["GET /contacts/{id}/companies"] = special
    else:
        by_day = Counter()

    if "companies" in streams:
        n = ws.count("companies")
        counts["companies"] = n
        pages = math.ceil(n / scroll_page_size) + 1  # the last, empty page ends the scroll
        req["GET /companies/scroll"] = pages
        req["GET /companies/{id}/segments"] = n  # company segments are only at this endpoint
        # each scroll page waits for the previous one; a page's segment calls can run concurrently
        chains["companies scroll (+ its segment calls)"] = pages + (pages - 1)

    if "conversations" in streams or "conversation_parts" in streams:
        n = ws.count("conversations")
        if "conversations" in streams:
            counts["conversations"] = n
        req["POST /conversations/search"] = max(1, math.ceil(n / PAGE))
        if "conversation_parts" in streams:
            req["GET /conversations/{id}"] = n
            if count_parts:
                counts["conversation_parts"] = sum(
                    min(MAX_RETURNED_PARTS, len(ws.conversation_parts(cid))) for cid in ws.ids("conversations")
                )
        if conversations_day_granular:
            days = Counter(_local_day(int(ws.updated_at_of("conversations", c)), zone) for c in ws.ids("conversations"))
            longest = max(days.values()) if days else 0
            chains["conversations search (longest day) + detail"] = max(1, math.ceil(longest / PAGE)) + 1
        else:
            chains["conversations search page + detail"] = 2

    if "tickets" in streams or "ticket_parts" in streams:
        n = ws.count("tickets")
        req["POST /tickets/search"] = max(1, math.ceil(n / PAGE))
        req["GET /tickets/{id}"] = n
        if "tickets" in streams:
            counts["tickets"] = n
        if "ticket_parts" in streams and count_parts:
            counts["ticket_parts"] = sum(len(ws.ticket_parts(t)) for t in ws.ids("tickets"))

    app = ws.me().get("app") or {}
    app_created = int(app.get("created_at") or now - 365 * 86400)
    if "activity_logs" in streams:
        created = [int(ws.updated_at_of("activity_logs", i)) for i in ws.ids("activity_logs")]
        counts["activity_logs"] = len(created)
        per_window: Counter[int] = Counter((c - app_created) // ACTIVITY_LOG_WINDOW for c in created if c >= app_created)
        n_windows = max(1, math.ceil((now - app_created) / ACTIVITY_LOG_WINDOW))
        req["GET /admins/activity_logs"] = sum(
            max(1, math.ceil(per_window.get(w, 0) / activity_logs_per_page)) for w in range(n_windows)
        )
        chains["activity logs window after /me"] = 2  # windows are second-granular: split at will

    for name, path in (("admins", "GET /admins"), ("tags", "GET /tags"), ("teams", "GET /teams"),
                       ("segments", "GET /segments")):
        if name in streams:
            counts[name] = ws.count(name)
            req[path] = 1
    if "data_attributes" in streams:
        counts["data_attributes"] = sum(len(ws.data_attributes(m)) for m in DATA_ATTRIBUTE_MODELS)
    typed = {"contacts": "contact", "companies": "company", "conversations": "conversation"}
    models = {m for s, m in typed.items() if s in streams}
    if "data_attributes" in streams:
        models = set(DATA_ATTRIBUTE_MODELS)
    if models:
        req["GET /data_attributes"] = len(models)

    what, chain = max(chains.items(), key=lambda kv: kv[1]) if chains else ("/me", 1)
    return Workload(
        counts=counts, requests=req, chain=chain, chain_what=what, app_created_at=app_created,
        contacts_by_day=by_day,
    )


def incremental_minimum(changed: dict[str, int], streams: tuple[str, ...] = ALL_STREAMS) -> dict[str, int]:
    """Fewest calls that can read `changed` records per model (companies scroll excluded: a full read).

    One search page per 150 changed records (at least one call to learn there is nothing), one
    detail per changed conversation or ticket, the segments of each changed company, one
    activity-log page per 20 new logs, and the single-page lists every run needs.
    """
    req: dict[str, int] = {"GET /me": 1}
    if "contacts" in streams:
        req["POST /contacts/search"] = max(1, math.ceil(changed.get("contacts", 0) / PAGE))
    if "conversations" in streams or "conversation_parts" in streams:
        req["POST /conversations/search"] = max(1, math.ceil(changed.get("conversations", 0) / PAGE))
        if "conversation_parts" in streams:
            req["GET /conversations/{id}"] = changed.get("conversations", 0)
    if "companies" in streams:
        req["GET /companies/{id}/segments"] = changed.get("companies", 0)  # segments of changed companies
    if "tickets" in streams or "ticket_parts" in streams:
        req["POST /tickets/search"] = max(1, math.ceil(changed.get("tickets", 0) / PAGE))
        if "ticket_parts" in streams:
            req["GET /tickets/{id}"] = changed.get("tickets", 0)
    if "activity_logs" in streams:
        req["GET /admins/activity_logs"] = max(1, math.ceil(changed.get("activity_logs", 0) / 20))
    for name, path in (("admins", "GET /admins"), ("tags", "GET /tags"), ("teams", "GET /teams"),
                       ("segments", "GET /segments")):
        if name in streams:
            req[path] = 1
    typed = {"contacts", "companies", "conversations", "data_attributes"}
    if typed & set(streams):
        req["GET /data_attributes"] = 3 if "data_attributes" in streams else len(
            {"contacts", "companies", "conversations"} & set(streams)
        )
    return req

"""Deterministic record generation: profiles, ids, and the workspace's people and accounts.

Every record is a pure function of (seed, model, index, anchor): `random.Random(record_seed(...))`
draws it, so one record can be re-materialised alone, in any order, without holding the workspace
in memory. The draws that other records depend on (timestamps, role, company and segment
membership) come first in a record's "core", which the store also runs once at build time to fill
its compact columns and reverse counts. Conversations and tickets live in generator_conv.py.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from typing import Any

from intercom_emulator import attributes
from intercom_emulator import generator_text as txt

DAY = 86_400
MASK56 = (1 << 56) - 1
_K = 0x9E3779B97F4A7C15 & MASK56 | 1  # odd, so invertible modulo 2**56
_KINV = pow(_K, -1, 1 << 56)

# Numeric id bases (ids are numeric strings in the API).
ADMIN_BASE = 5_100_000
BOT_ADMIN_ID = "5099999"
TEAM_BASE = 7_200_000
TAG_BASE = 9_300_000
CONV_BASE = 100_000_000
PART_BASE = 10_000_000_000
PARTS_PER_CONV = 100_000  # part id space reserved per conversation
NOTE_BASE = 40_000_000
NOTES_PER_CONTACT = 100
ALOG_BASE = 3_000_000
TICKET_BASE = 600_000_000
TPART_BASE = 20_000_000_000
TPARTS_PER_TICKET = 1_000

MODEL_NO = {"contacts": 1, "companies": 2, "conversations": 3, "tickets": 4, "activity_logs": 5,
            "segments": 6, "identity": 7}
# Shapes of real responses (spec divergences, docs/emulator-contract.md) are drawn from a second
# generator per record, seeded with this salt, so the draws of the original fields never move.
SHAPE_SALT = 0x5EED_5EED


@dataclass(frozen=True)
class Profile:
    """Record counts of a profile before scaling (scale multiplies the four big models)."""

    contacts: int
    companies: int
    conversations: int
    admins: int
    teams: int
    tags: int
    segments: int
    activity_logs: int
    tickets: int
    long_conversations: tuple[int, ...]  # part counts of the conversations with > 500 parts
    avg_parts: int = 8
    history_days: int = 730


PROFILES: dict[str, Profile] = {
    "tiny": Profile(contacts=40, companies=15, conversations=30, admins=5, teams=3, tags=30,
                    segments=4, activity_logs=50, tickets=6, long_conversations=(520,), avg_parts=6),
    "demo": Profile(contacts=2_000, companies=400, conversations=1_000, admins=12, teams=5, tags=60,
                    segments=10, activity_logs=2_000, tickets=100, long_conversations=(650, 510)),
    "bench": Profile(contacts=20_000, companies=5_000, conversations=10_000, admins=40, teams=15,
                     tags=150, segments=30, activity_logs=20_000, tickets=2_000,
                     long_conversations=(1_200, 800, 620, 540, 505)),
}

OPTIONAL_COMPANY_FIELDS = ("website", "industry", "size", "remote_created_at", "last_request_at")
ACTIVITY_TYPES = (
    "admin_login_success", "admin_login_success", "admin_login_success", "admin_logout",
    "admin_away_mode_change", "admin_login_failure", "admin_permission_change", "app_team_membership_modification",
    "macro_creation", "macro_update", "inbox_access_change", "admin_invite_creation", "office_hours_change",
    "bulk_export", "conversation_topic_creation", "app_webhook_creation", "seat_change",
)


def admin_avatar_url(admin_id: str) -> str | None:
    """An admin's avatar image: not in admin records (list, GET /admins/{id}); /me sends it as an object."""
    i = int(admin_id) - ADMIN_BASE
    return None if i % 4 == 3 else f"https://static.intercomassets.test/avatars/{admin_id}.png"


def shape_rng(seed: int, model: str, index: int) -> random.Random:
    """The record's second generator: real-response shape choices, independent of its field draws."""
    return random.Random(record_seed(seed, model, index) ^ SHAPE_SALT)


def record_seed(seed: int, model: str, index: int) -> int:
    """The per-record seed: a record is reproducible alone from (seed, model, index)."""
    return (seed * 1_000_003 + index) * 31 + MODEL_NO[model]


def hex_prefix(seed: int, model: str) -> int:
    """40-bit id prefix per (seed, model); crc32 because str hash() is salted per process."""
    return 0x6000000000 | ((zlib.crc32(f"{seed}:{model}".encode()) << 4) & 0x0FFFFFFFFF)


def _offset(prefix: int) -> int:
    return (prefix * 0xD1B54A32D192ED03) & MASK56


def hex_id(prefix: int, index: int) -> str:
    """A 24-hex id (like Intercom's contact/company ids) that maps back to its index."""
    return f"{prefix:010x}{(index * _K + _offset(prefix)) & MASK56:014x}"


def hex_index(prefix: int, ident: str) -> int | None:
    """Inverse of hex_id, or None if the id is not of this (seed, model)."""
    if not isinstance(ident, str) or len(ident) != 24 or ident[:10] != f"{prefix:010x}":
        return None
    try:
        v = int(ident[10:], 16)
    except ValueError:
        return None
    return ((v - _offset(prefix)) * _KINV) & MASK56


def num_index(base: int, ident: Any, limit: int) -> int | None:
    """Index of a numeric-string id `base + index`, or None if out of range / malformed."""
    try:
        i = int(str(ident)) - base
    except ValueError:
        return None
    return i if 0 <= i < limit else None


def spread(start: int, span: int, n: int, index: int) -> int:
    """Monotonic timestamps: index order is creation order, with per-record jitter."""
    step = max(1, span // max(1, n))
    return start + (index * span) // max(1, n) + (index * 2_654_435_761) % step


@dataclass
class Counts:
    """Scaled record counts of one workspace."""

    contacts: int
    companies: int
    conversations: int
    admins: int
    teams: int
    tags: int
    segments: int
    activity_logs: int
    tickets: int

    @classmethod
    def of(cls, p: Profile, scale: float) -> Counts:
        def s(n: int) -> int:
            return max(1, int(round(n * scale)))
        return cls(contacts=s(p.contacts), companies=s(p.companies), conversations=s(p.conversations),
                   admins=p.admins, teams=p.teams, tags=p.tags, segments=p.segments,
                   activity_logs=s(p.activity_logs), tickets=p.tickets)


@dataclass
class Generator:
    """Generates records for one (profile, seed, scale, anchor)."""

    profile: Profile
    seed: int
    scale: float
    anchor: int
    timezone: str
    counts: Counts = field(init=False)
    app_id: str = field(init=False)

    def __post_init__(self) -> None:
        self.counts = Counts.of(self.profile, self.scale)
        self.app_id = f"{zlib.crc32(f'app:{self.seed}'.encode()) & 0xFFFFFFFF:08x}"
        self.history_start = self.anchor - self.profile.history_days * DAY
        self.span = self.anchor - 3_600 - self.history_start
        self.prefix = {m: hex_prefix(self.seed, m) for m in ("contacts", "companies", "segments")}
        self.companies_with_users = max(1, int(self.counts.companies * 0.8))
        self.special_every = max(20, self.counts.contacts // 10)
        n = self.counts.conversations
        k = len(self.profile.long_conversations)
        self.long_conv = {((j + 1) * n) // (k + 1): parts for j, parts in enumerate(self.profile.long_conversations)
                          if n > k}
        self.admins = [self._admin(i) for i in range(self.counts.admins)]
        self.teams = [self._team(i) for i in range(self.counts.teams)]
        self.tags = [self._tag(i) for i in range(self.counts.tags)]
        self.segments = [self._segment(i) for i in range(self.counts.segments)]

    def external_id(self, contact_index: int) -> str | None:
        """external_id of a contact (users have one, leads none); the store sets `roles`."""
        roles = getattr(self, "roles", None)
        if roles is not None and contact_index < len(roles) and roles[contact_index] == 0:
            return None
        return f"user-{contact_index}"

    # ---- ids -------------------------------------------------------------------------------------
    def contact_id(self, index: int) -> str:
        return hex_id(self.prefix["contacts"], index)

    def company_id(self, index: int) -> str:
        return hex_id(self.prefix["companies"], index)

    def segment_id(self, index: int) -> str:
        return hex_id(self.prefix["segments"], index)

    def created_at(self, model: str, index: int) -> int:
        """Creation time of a generated record: monotonic in index, all before the anchor."""
        if model == "activity_logs":
            start = self.anchor - 365 * DAY
            return spread(start, 365 * DAY - 60, self.counts.activity_logs, index)
        n = getattr(self.counts, model)
        return spread(self.history_start, self.span, n, index)

    # ---- small models ----------------------------------------------------------------------------
    def _admin(self, i: int) -> dict:
        rng = random.Random(self.seed * 7_919 + i)
        first, last = txt.FIRST_NAMES[(i * 7 + self.seed) % len(txt.FIRST_NAMES)], rng.choice(txt.LAST_NAMES)
        team_ids = sorted({TEAM_BASE + (i + k) % self.profile.teams for k in range(1 + i % 2)}) if self.profile.teams else []
        return {
            "type": "admin", "id": str(ADMIN_BASE + i), "name": f"{first} {last}",
            "email": f"{first.lower()}.{last.lower().replace(chr(39), '')}{i}@{self.app_id}.example.com",
            "job_title": rng.choice(txt.JOB_TITLES), "away_mode_enabled": i % 9 == 4,
            "away_mode_reassign": i % 9 == 4 and rng.random() < 0.5, "away_status_reason_id": None,
            "has_inbox_seat": i % 6 != 5, "team_ids": team_ids,
            "team_priority_level": {"primary_team_ids": team_ids[:1], "secondary_team_ids": team_ids[1:]},
        }

    def _team(self, i: int) -> dict:
        admin_ids = [ADMIN_BASE + a for a in range(self.profile.admins)
                     if TEAM_BASE + i in self._team_ids_of(a)]
        return {"type": "team", "id": str(TEAM_BASE + i), "name": txt.TEAM_NAMES[i % len(txt.TEAM_NAMES)],
                "admin_ids": admin_ids,
                "admin_priority_level": {"primary_admin_ids": admin_ids, "secondary_admin_ids": []},
                "assignment_limit": None if i % 3 else 25,
                "distribution_method": "round_robin" if i % 2 == 0 else "balanced"}

    def _team_ids_of(self, a: int) -> set[int]:
        return {TEAM_BASE + (a + k) % self.profile.teams for k in range(1 + a % 2)} if self.profile.teams else set()

    def _tag(self, i: int) -> dict:
        w = txt.TAG_WORDS[i % len(txt.TAG_WORDS)]
        name = w if i < len(txt.TAG_WORDS) else f"{w}-{i // len(txt.TAG_WORDS) + 1}"
        # applied_at/applied_by are "only present when the tag is returned as part of a tagging
        # operation" (2.15 schema); GET /tags's example leaves them out, so a listed tag has neither.
        return {"type": "tag", "id": str(TAG_BASE + i), "name": name}

    def _segment(self, i: int) -> dict:
        created = self.history_start + (i * self.span) // max(1, self.profile.segments)
        w = txt.SEGMENT_WORDS[i % len(txt.SEGMENT_WORDS)]
        name = w if i < len(txt.SEGMENT_WORDS) else f"{w} {i // len(txt.SEGMENT_WORDS) + 1}"
        return {"type": "segment", "id": self.segment_id(i), "name": name, "created_at": created,
                "updated_at": created + (self.anchor - created) // 3,
                "person_type": "user" if i % 3 else "contact", "count": 0}

    def data_attributes(self, model: str) -> list[dict]:
        """GET /data_attributes rows for one model (see attributes.py)."""
        return attributes.data_attribute_rows(model, self.history_start, ADMIN_BASE)

    @staticmethod
    def custom_attributes(rng: random.Random, model: str, updated: int) -> dict:
        return attributes.custom_values(rng, model, updated)

    @staticmethod
    def real_named_attributes(shape: random.Random, model: str) -> dict:
        return attributes.real_named_values(shape, model)

    # ---- contacts --------------------------------------------------------------------------------
    def is_special(self, index: int) -> bool:
        """Contacts with 25 tags, 12 companies and 12 notes (embedded lists truncated, has_more)."""
        return index < self.counts.contacts and index % self.special_every == 3

    def contact_core(self, rng: random.Random, index: int, created: int) -> tuple[int, str, list[int], list[int]]:
        """(updated_at, role, company indices, segment indices): the draws other records depend on."""
        special = self.is_special(index)
        role = "user" if special or rng.random() < 0.75 else "lead"
        r = rng.random()
        updated = created if r < 0.3 else created + int((self.anchor - created) * rng.random())
        if special:
            companies = rng.sample(range(self.companies_with_users), min(12, self.companies_with_users))
        elif role == "user":
            k = 0 if r < 0.1 else (1 if rng.random() < 0.75 else 2)
            companies = rng.sample(range(self.companies_with_users), min(k, self.companies_with_users))
        else:
            companies = []
        n_seg = rng.randrange(0, 3)
        segments = rng.sample(range(self.counts.segments), min(n_seg, self.counts.segments))
        return updated, role, companies, segments

    def identity(self, index: int) -> tuple[str, str]:
        """(name, email) of a contact, cheap: conversations name their authors without a full contact."""
        rng = random.Random(record_seed(self.seed, "identity", index))
        first, last = rng.choice(txt.FIRST_NAMES), rng.choice(txt.LAST_NAMES)
        dom = rng.choice(txt.EMAIL_DOMAINS)
        return f"{first} {last}", f"{first.lower()}.{last.lower().replace(chr(39), '')}.{index}@{dom}"

    def contact(self, index: int) -> tuple[dict, dict]:
        """(record without embedded lists, relations) of a generated contact."""
        rng = random.Random(record_seed(self.seed, "contacts", index))
        created = self.created_at("contacts", index)
        updated, role, companies, segments = self.contact_core(rng, index, created)
        special = self.is_special(index)
        name, email = self.identity(index)
        country, region, city = rng.choice(txt.LOCATIONS)
        browser, bver = rng.choice(txt.BROWSERS)
        ios = rng.random() < 0.15

        def before(lo: int, p: float = 0.8) -> int | None:
            return lo + int((updated - lo) * rng.random()) if rng.random() < p else None

        cid = self.contact_id(index)
        n_tags = 25 if special else rng.choice((0, 0, 1, 1, 2, 3))
        tag_idx = rng.sample(range(len(self.tags)), min(n_tags, len(self.tags)))
        tags = [(t, created + int((updated - created) * rng.random()), rng.randrange(self.counts.admins))
                for t in tag_idx]
        n_notes = 12 if special else rng.choice((0, 0, 0, 1, 2))
        notes = [(k, created + int((updated - created) * (k + 1) / (n_notes + 1)), rng.randrange(self.counts.admins),
                  txt.html_body(rng)) for k in range(n_notes)]
        rec = {
            "type": "contact", "id": cid, "workspace_id": self.app_id,
            "external_id": f"user-{index}" if role == "user" else None, "role": role,
            "email": email,
            "phone": f"+1555{rng.randrange(10**7):07d}" if rng.random() < 0.6 else None, "name": name,
            "owner_id": ADMIN_BASE + rng.randrange(self.counts.admins) if rng.random() < 0.4 else None,
            "has_hard_bounced": rng.random() < 0.02, "marked_email_as_spam": rng.random() < 0.01,
            "unsubscribed_from_emails": rng.random() < 0.15, "created_at": created, "updated_at": updated,
            "signed_up_at": created if role == "user" else None, "last_seen_at": before(created, 0.9),
            "last_replied_at": before(created, 0.5), "last_contacted_at": before(created, 0.6),
            "last_email_opened_at": before(created, 0.4), "last_email_clicked_at": before(created, 0.2),
            "language_override": rng.choice(txt.LANGUAGES) if rng.random() < 0.1 else None,
            "browser": browser, "browser_version": bver, "browser_language": rng.choice(txt.LANGUAGES),
            "os": rng.choice(txt.OSES),
            "android_app_name": None, "android_app_version": None, "android_device": None,
            "android_os_version": None, "android_sdk_version": None, "android_last_seen_at": None,
            "ios_app_name": "Acme" if ios else None, "ios_app_version": "4.2.1" if ios else None,
            "ios_device": "iPhone15,2" if ios else None, "ios_os_version": "17.4" if ios else None,
            "ios_sdk_version": "17.1.0" if ios else None, "ios_last_seen_at": before(created, 1.0) if ios else None,
            "custom_attributes": self.custom_attributes(rng, "contact", updated)
            | self.real_named_attributes(shape_rng(self.seed, "contacts", index), "contact"),
            # a URL string or null (real responses, tap-intercom, Airbyte, the SDK; the spec says object)
            "avatar": f"https://static.intercomassets.test/a/{cid}.png" if rng.random() < 0.3 else None,
            "location": {"type": "location", "country": country, "region": region, "city": city},
            "social_profiles": {"type": "social_profile.list", "data": [
                {"type": "social_profile", "name": s, "url": f"https://{s.lower()}.com/{cid[-8:]}"}
                for s in rng.sample(txt.SOCIAL, rng.randrange(0, 3))]},
        }
        rel = {"tags": tags, "companies": companies, "notes": notes, "segments": segments}
        return rec, rel

    # ---- companies -------------------------------------------------------------------------------
    def company_core(self, rng: random.Random, created: int) -> int:
        """updated_at of a company: its first draws (the store's build loop runs only this)."""
        return created if rng.random() < 0.3 else created + int((self.anchor - created) * rng.random())

    def company(self, index: int) -> dict:
        """A generated company without user_count (the store knows the reverse counts)."""
        rng = random.Random(record_seed(self.seed, "companies", index))
        created = self.created_at("companies", index)
        updated = self.company_core(rng, created)
        plan = rng.randrange(len(txt.PLANS))
        name = txt.company_name(index)
        tags = [self.tag_applied(t, created, updated, rng)
                for t in rng.sample(range(len(self.tags)), min(rng.choice((0, 0, 1, 2)), len(self.tags)))]
        segs = [self.segments[s] for s in rng.sample(range(len(self.segments)), min(rng.randrange(0, 2), len(self.segments)))]
        rec = {
            "type": "company", "id": self.company_id(index), "name": name, "app_id": self.app_id,
            "plan": {"type": "plan", "id": str(300 + plan), "name": txt.PLANS[plan]},
            "company_id": f"cmp-{index:07d}", "remote_created_at": created - rng.randrange(0, 400) * DAY,
            "created_at": created, "updated_at": updated,
            "last_request_at": created + int((updated - created) * rng.random()),
            "size": rng.choice((1, 5, 12, 50, 120, 500, 2_000)),
            "website": f"https://www.{name.lower().replace(' ', '')}.example",
            "industry": rng.choice(txt.INDUSTRIES), "monthly_spend": rng.randrange(0, 20_000),
            "session_count": rng.randrange(0, 5_000), "user_count": 0,
            "custom_attributes": self.custom_attributes(rng, "company", updated),
            "tags": {"type": "tag.list", "tags": tags},
            "segments": {"type": "segment.list", "segments": segs},
        }
        # Real responses: a company without a plan has `plan: {}`, and these fields are ABSENT (not
        # null) until set. The shape generator picks which; the field draws above stay as they were.
        shape = shape_rng(self.seed, "companies", index)
        if shape.random() < 0.2:
            rec["plan"] = {}
        for key in OPTIONAL_COMPANY_FIELDS:
            if shape.random() < 0.25:
                del rec[key]
        return rec

    def tag_applied(self, t: int, lo: int, hi: int, rng: random.Random) -> dict:
        """A tag as attached to a record: with applied_at/applied_by."""
        tag = self.tags[t]
        return {"type": "tag", "id": tag["id"], "name": tag["name"], "applied_at": lo + int((hi - lo) * rng.random()),
                "applied_by": {"type": "admin", "id": str(ADMIN_BASE + rng.randrange(self.counts.admins))}}

    def company_index(self, company_id: str) -> int | None:
        """Index from the external company_id (`cmp-0000042`), for generated companies."""
        if isinstance(company_id, str) and company_id.startswith("cmp-") and company_id[4:].isdigit():
            return int(company_id[4:])
        return None

    # ---- activity logs ---------------------------------------------------------------------------
    def activity_log(self, index: int) -> dict:
        """One admin activity-log entry in the last year."""
        rng = random.Random(record_seed(self.seed, "activity_logs", index))
        admin = self.admins[rng.randrange(len(self.admins))]
        atype = rng.choice(ACTIVITY_TYPES)
        return self.make_activity_log(ALOG_BASE + index, self.created_at("activity_logs", index), admin, atype, rng)

    def make_activity_log(self, ident: int, created: int, admin: dict, atype: str, rng: random.Random) -> dict:
        """Shape of an activity log with type-specific metadata (free object in the spec)."""
        meta: dict[str, Any] = {}
        if atype.startswith("admin_login"):
            meta = {"sign_in_method": rng.choice(("email_password", "google_sso", "saml"))}
        elif atype == "admin_away_mode_change":
            meta = {"away_mode": rng.random() < 0.5, "away_status_reason": "On a break",
                    "reassign_conversations": rng.random() < 0.5}
        elif atype == "admin_permission_change":
            meta = {"before": {"can_export": False}, "after": {"can_export": True}}
        elif atype != "admin_logout":
            meta = {"source": f"admin update from web - Admin id: {admin['id']}",
                    "update_by": int(admin["id"]), "update_by_name": admin["name"]}
        desc = f"{admin['name']} {atype.replace('_', ' ')}"
        return {"id": str(ident), "performed_by": {"type": "admin", "id": admin["id"], "email": admin["email"],
                                                   "ip": f"203.0.113.{rng.randrange(1, 255)}"},
                "metadata": meta, "created_at": created, "activity_type": atype, "activity_description": desc}

"""Replay records of admins, teams, tags, segments, activity logs, companies, contacts and data
attributes, in the shapes real Intercom sends per `Intercom-Version` (2.11, 2.15, 2.16).

A handful of records per object, each built to the shape of a public capture (`captures.py`,
noted in `Workspace.follows`) with values of our own, including the oddities that break
connectors written from the OpenAPI text: built-in data attributes without `id`, `plan: {}`,
`source: null` and `source.type: null`, teammates as `admin.list`, a string avatar on contacts,
statistics with every key null, custom attribute names with spaces and colons, `ticket_state` a
string at 2.11. Timestamps are recent (relative to `now`) so a first sync reads all of them.
Conversations, tickets and `build()` are in `workspace.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.replay import captures
from tests.replay.captures import Capture

VERSIONS = ("2.11", "2.15", "2.16")
HOUR = 3600
DAY = 24 * HOUR
Record = dict[str, Any]


@dataclass
class Workspace:
    """What the replay server serves for one version, and which capture each record follows."""

    version: str
    now: int
    me: Record = field(default_factory=dict)
    admins: list[Record] = field(default_factory=list)
    teams: list[Record] = field(default_factory=list)
    tags: list[Record] = field(default_factory=list)
    segments: list[Record] = field(default_factory=list)
    companies: list[Record] = field(default_factory=list)
    company_segments: dict[str, list[str]] = field(default_factory=dict)  # company id -> segment ids
    contacts: list[Record] = field(default_factory=list)
    contact_tags: dict[str, list[str]] = field(default_factory=dict)  # complete lists (embedded stop at 10)
    conversations: list[Record] = field(default_factory=list)  # detail shape, with conversation_parts
    tickets: list[Record] = field(default_factory=list)  # with ticket_parts
    activity_logs: list[Record] = field(default_factory=list)
    data_attributes: dict[str, list[Record]] = field(default_factory=dict)  # model -> attributes
    follows: dict[tuple[str, str], Capture] = field(default_factory=dict)  # (object, id) -> capture

    def note(self, kind: str, key: str, capture: Capture) -> None:
        self.follows[(kind, key)] = capture

    def tag(self, tag_id: str) -> Record:
        return next(t for t in self.tags if t["id"] == tag_id)

    def segment(self, segment_id: str) -> Record:
        return next(s for s in self.segments if s["id"] == segment_id)

    def company(self, company_id: str) -> Record:
        return next(c for c in self.companies if c["id"] == company_id)


# ----------------------------------------------------------------------------- admins & co
ADMIN_IDS = ("5100001", "5100002", "5100003")
TEAM_IDS = ("6200001", "6200002")


def add_people(ws: Workspace) -> None:
    t = ws.now
    # GET /me: the admin with its workspace (`app.timezone` drives the day-safe search bounds);
    # the avatar object appears only here (OPENAPI_215 example, issue 15)
    ws.me = {
        "type": "admin", "id": ADMIN_IDS[0], "email": "ops@replay.example", "name": "Replay Ops",
        "email_verified": True,
        "app": {"type": "app", "id_code": "rpl4y000", "name": "Replay", "created_at": t - 12 * DAY,
                "secure": False, "identity_verification": False, "timezone": "Europe/Dublin", "region": "US"},
        "avatar": {"type": "avatar", "image_url": "https://replay.example/avatars/ops.png"},
        "has_inbox_seat": True,
    }
    ws.note("me", ADMIN_IDS[0], captures.OPENAPI_215)
    # GET /admins: no avatar, `team_priority_level: {}`, job_title only when set
    for admin_id, name, email, extra in (
        (ADMIN_IDS[0], "Replay Ops", "ops@replay.example", {"job_title": "Support Lead"}),
        (ADMIN_IDS[1], "Fin", "operator+rpl4y000@intercom.io", {}),
        (ADMIN_IDS[2], "Ada Agent", "ada@replay.example", {}),
    ):
        ws.admins.append({
            "type": "admin", "email": email, "id": admin_id, "name": name, **extra,
            "away_mode_enabled": admin_id == ADMIN_IDS[2], "away_mode_reassign": False,
            "has_inbox_seat": admin_id != ADMIN_IDS[1], "team_ids": [int(TEAM_IDS[0])] if admin_id == ADMIN_IDS[2] else [],
            "team_priority_level": {},
        })
        ws.note("admins", admin_id, captures.NANGO_ADMINS)
    # GET /teams (team.list): admin_ids are integers, often empty
    ws.teams = [
        {"type": "team", "id": TEAM_IDS[0], "name": "Tier 1: billing", "admin_ids": [int(ADMIN_IDS[2])]},
        {"type": "team", "id": TEAM_IDS[1], "name": "test", "admin_ids": []},
    ]
    for team in ws.teams:
        ws.note("teams", team["id"], captures.AIRBYTE_RECORDS)
    # GET /tags: eleven, so one contact holds more than the 10 a contact embeds
    ws.tags = [{"type": "tag", "id": str(7800200 + i), "name": f"CSV Import - 2026-01-{i + 1:02d} 13:36:22 UTC"}
               for i in range(11)]
    for tag in ws.tags:
        ws.note("tags", tag["id"], captures.AIRBYTE_RECORDS)
    ws.segments = [
        {"type": "segment", "id": f"63ea19b36ea882cf2f785a4{i}", "name": name, "created_at": t - (9 - i) * DAY,
         "updated_at": t - (5 - i) * DAY, "person_type": "user"}
        for i, name in enumerate(("Active: last 30 days", "Companies less than 100 people", "New"))
    ]
    for seg in ws.segments:
        ws.note("segments", seg["id"], captures.AIRBYTE_RECORDS)
    # activity logs: performed_by with ip, free-form metadata, UUID ids; one per 5-day window
    for i, (kind, text) in enumerate((
        ("app_team_creation", "Replay Ops created a new team, test, with 1 member."),
        ("admin_permission_change", "Replay Ops changed Ada Agent's permissions."),
        ("admin_away_mode_change", "Ada Agent changed their away mode."),
    )):
        log = {
            "id": f"f7cf4eba-3a37-44b0-aecf-f347fe11671{i}",
            "performed_by": {"type": "admin", "id": ADMIN_IDS[0], "email": "ops@replay.example", "ip": "192.0.2.10"},
            "metadata": {"team": {"id": int(TEAM_IDS[1]), "name": "test", "member_count": 1}} if i == 0 else
                        {"admin": {"id": int(ADMIN_IDS[2]), "first_name": "Ada", "last_name": "Agent"},
                         "before": {"permissions": {"export_data": False}, "conversation_access": {}},
                         "after": {"permissions": {"export_data": True},
                                   "conversation_access": {"access_type": "all", "assignee_blocked_list": None}}},
            "created_at": t - (11 - 4 * i) * DAY, "activity_type": kind, "activity_description": text,
        }
        ws.activity_logs.append(log)
        ws.note("activity_logs", log["id"], captures.AIRBYTE_RECORDS)


# ----------------------------------------------------------------------------- companies
COMPANY_IDS = ("63ecc5731d460cdc137c906c", "63ecc52f00fc87e58e8fb1f1", "63ecc46a811f1737ded479ee")


def add_companies(ws: Workspace) -> None:
    t = ws.now
    for i, cid in enumerate(COMPANY_IDS):
        company: Record = {
            "type": "company", "company_id": f"{cid}-qualification-company", "id": cid, "app_id": "rpl4y000",
            "name": f"Replay Company {i + 1}", "created_at": t - (10 - i) * DAY, "updated_at": t - (6 - i) * DAY,
            "monthly_spend": [4800, 0, 0][i], "session_count": [342, 0, 3][i], "user_count": [2, 1, 0][i],
        }
        if i == 0:  # the optional keys exist only once set (absent, not null, otherwise)
            company.update({"size": 150, "website": "www.company1.example", "industry": "Software",
                            "remote_created_at": t - 400 * DAY, "last_request_at": t - 2 * DAY})
        company["tags"] = {"type": "tag.list", "tags": [
            {"type": "tag", "id": ws.tags[0]["id"], "name": ws.tags[0]["name"]}] if i == 2 else []}
        company["segments"] = {"type": "segment.list", "segments": []}
        # a company without a plan has `plan: {}`
        company["plan"] = {"type": "plan", "id": "269315", "name": "Growth"} if i == 0 else {}
        company["custom_attributes"] = (
            {"creation_source": "api", "ARR (USD)": 48000, "Renewal: date": t + 200 * DAY} if i == 0
            else {"creation_source": "api"}
        )
        if ws.version == "2.16":
            company["notes"] = {"type": "note.list", "notes": []}
            ws.note("companies", cid, captures.OPENAPI_216)
        else:
            ws.note("companies", cid, captures.AIRBYTE_RECORDS)
        ws.companies.append(company)
    ws.company_segments = {
        COMPANY_IDS[0]: [ws.segments[0]["id"], ws.segments[1]["id"]],
        COMPANY_IDS[1]: [],
        COMPANY_IDS[2]: [ws.segments[1]["id"]],
    }


# ----------------------------------------------------------------------------- contacts
CONTACT_IDS = ("66f7ee5ea9e2c41564b4c362", "66fadfecea421c7b5057f6f0", "66fae008c39645865b3c0443",
               "66fae01ac4f9bc7fb131a4a6")


def _sub_list(contact_id: str, what: str, refs: list[Record], total: int | None = None) -> Record:
    count = len(refs) if total is None else total
    return {"type": "list", "data": refs, "url": f"/contacts/{contact_id}/{what}", "total_count": count,
            "has_more": count > len(refs)}


def add_contacts(ws: Workspace) -> None:
    t = ws.now
    customs: list[Record] = [
        # names with spaces and colons; a float sent as a whole number and a date as Unix seconds
        {"Plan tier": "pro", "Seats: purchased": 12, "Trial ends": t + 30 * DAY, "Churn risk": 3, "Beta user": True,
         "plan_tier": "legacy"},  # two names, one snake_case column name
        {"Plan tier": "free", "Churn risk": 0.25, "Beta user": False},
        {},
        {"Seats: purchased": 3, "Trial ends": None},
    ]
    company_refs = {
        CONTACT_IDS[0]: [COMPANY_IDS[0]],
        CONTACT_IDS[3]: [COMPANY_IDS[0], COMPANY_IDS[1]],
    }
    ws.contact_tags = {
        CONTACT_IDS[0]: [ws.tags[3]["id"]],
        CONTACT_IDS[1]: [tag["id"] for tag in ws.tags],  # 11: the embedded list stops at 10
    }
    for i, cid in enumerate(CONTACT_IDS):
        tag_ids = ws.contact_tags.get(cid, [])
        tag_refs = [{"id": tid, "type": "tag", "url": f"/tags/{tid}"} for tid in tag_ids[:10]]
        companies = [{"id": co, "type": "company", "url": f"/companies/{co}"} for co in company_refs.get(cid, [])]
        contact: Record = {
            "type": "contact", "id": cid, "workspace_id": "rpl4y000", "external_id": f"ext-{i + 1}",
            "role": "lead" if i == 2 else "user", "email": f"person{i + 1}@replay.example", "phone": None,
            "name": None if i == 2 else f"Person {i + 1}",
            # a contact's avatar is a URL string or null (an admin's is an object)
            "avatar": "https://replay.example/avatars/person1.png" if i == 0 else None,
            "owner_id": int(ADMIN_IDS[0]) if i == 0 else None,
            "social_profiles": {"type": "list", "data": []},
            "has_hard_bounced": False, "marked_email_as_spam": False, "unsubscribed_from_emails": i == 3,
            "created_at": t - (10 - i) * DAY, "updated_at": t - (8 - i) * DAY,
            "signed_up_at": t - (10 - i) * DAY if i != 2 else None,
            "last_seen_at": t - 3 * DAY if i == 0 else None, "last_replied_at": t - 2 * DAY if i == 0 else None,
            "last_contacted_at": t - 2 * DAY if i == 0 else None, "last_email_opened_at": None,
            "last_email_clicked_at": None, "language_override": None, "browser": None, "browser_version": None,
            "browser_language": None, "os": None,
            "location": {"type": "location", "country": "Ireland" if i == 0 else None,
                         "region": "Leinster" if i == 0 else None, "city": "Dublin" if i == 0 else None,
                         "country_code": "IRL" if i == 0 else None, "continent_code": "EU" if i == 0 else None},
            **{f"android_{k}": None for k in ("app_name", "app_version", "device", "os_version", "sdk_version",
                                              "last_seen_at")},
            **{f"ios_{k}": None for k in ("app_name", "app_version", "device", "os_version", "sdk_version",
                                          "last_seen_at")},
            "custom_attributes": customs[i],
            "tags": _sub_list(cid, "tags", tag_refs, total=len(tag_ids)),
            "notes": _sub_list(cid, "notes", []),
            "companies": _sub_list(cid, "companies", companies),
            "opted_out_subscription_types": _sub_list(cid, "subscriptions", []),
            "opted_in_subscription_types": _sub_list(cid, "subscriptions", []),
            **{f"utm_{k}": None for k in ("campaign", "content", "medium", "source", "term")},
            "referrer": None, "sms_consent": False, "unsubscribed_from_sms": False,
        }
        if ws.version == "2.16":
            contact["email_domain"] = "replay.example"
            ws.note("contacts", cid, captures.OPENAPI_216)
        else:
            ws.note("contacts", cid, captures.NANGO_CONTACTS)
        ws.contacts.append(contact)


# ----------------------------------------------------------------------------- data attributes
def _builtin(model: str, name: str, full_name: str, label: str, data_type: str) -> Record:
    """A built-in attribute: no `id`, no `created_at`/`updated_at` (AIRBYTE_RECORDS)."""
    return {"type": "data_attribute", "name": name, "full_name": full_name, "label": label,
            "description": f"The {label.lower()}", "data_type": data_type, "api_writable": False,
            "ui_writable": False, "messenger_writable": True, "custom": False, "archived": False, "model": model}


def _custom(ws: Workspace, model: str, attr_id: int, name: str, data_type: str) -> Record:
    """A custom attribute: `id`, timestamps, `admin_id` (OPENAPI_215's data_attribute schema)."""
    return {"type": "data_attribute", "id": attr_id, "model": model, "name": name,
            "full_name": f"custom_attributes.{name}", "label": name, "description": "", "data_type": data_type,
            "api_writable": True, "ui_writable": True, "messenger_writable": False, "custom": True, "archived": False,
            "admin_id": ADMIN_IDS[0], "created_at": ws.now - 11 * DAY, "updated_at": ws.now - 11 * DAY}


CUSTOM_TYPES: dict[str, dict[str, str]] = {
    "contact": {"Plan tier": "string", "Seats: purchased": "integer", "Trial ends": "date", "Churn risk": "float",
                "Beta user": "boolean", "plan_tier": "string"},
    "company": {"creation_source": "string", "ARR (USD)": "float", "Renewal: date": "date"},
    "conversation": {"Copilot used": "boolean", "Fin AI Agent: Preview": "boolean", "Language": "string"},
}


def add_data_attributes(ws: Workspace) -> None:
    builtins = {
        "contact": [("name", "name", "Name", "string"), ("role", "role", "Contact role", "string"),
                    ("owner_id", "owner_id", "Owner", "integer"), ("email", "email", "Email", "string")],
        # `name` and `id` repeat within the model: only full_name is unique
        "company": [("name", "name", "Company name", "string"), ("name", "plan.name", "Plan name", "string"),
                    ("id", "id", "Company ID", "string"), ("id", "plan.id", "Plan ID", "string"),
                    ("last_request_at", "last_request_at", "Company last seen", "date")],
        "conversation": [],
    }
    next_id = 1000
    for model, rows in builtins.items():
        attrs = [_builtin(model, *row) for row in rows]
        for name, data_type in CUSTOM_TYPES[model].items():
            next_id += 1
            attrs.append(_custom(ws, model, next_id, name, data_type))
        ws.data_attributes[model] = attrs
        for attr in attrs:
            capture = captures.AIRBYTE_RECORDS if attr["custom"] is False else captures.OPENAPI_215
            ws.note("data_attributes", f"{model}:{attr['full_name']}", capture)

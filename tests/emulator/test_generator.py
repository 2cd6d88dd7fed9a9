"""The generated workspace: profile counts, determinism, 2.15 shapes and cross-record invariants."""

from __future__ import annotations

import re
import resource
import time

import pytest
import yaml

from intercom_emulator import PROFILES, Workspace
from intercom_emulator.generator import Counts, Generator
from tests.openapi_files import require_openapi

ANCHOR = 1_750_000_000  # fixed so the expected values do not depend on the day the tests run
HEX24 = re.compile(r"^[0-9a-f]{24}$")
NUM = re.compile(r"^[0-9]+$")
JSON_TYPES = {"string": str, "integer": int, "boolean": bool, "object": dict, "array": list, "number": (int, float)}
SCHEMA_OF = {"contacts": "contact", "companies": "company", "conversations": "conversation", "admins": "admin",
             "teams": "team", "tags": "tag", "segments": "segment", "activity_logs": "activity_log",
             "tickets": "ticket"}


@pytest.fixture(scope="module")
def spec() -> dict:
    with open(require_openapi("2.15")) as fh:
        return yaml.safe_load(fh)["components"]["schemas"]


@pytest.fixture(scope="module")
def tiny() -> Workspace:
    return Workspace("tiny", seed=1, anchor=ANCHOR)


@pytest.fixture(scope="module")
def demo() -> Workspace:
    return Workspace("demo", seed=7, anchor=ANCHOR)


# Where real 2.15 responses differ from the 2.15 schema (evidence: docs/emulator-contract.md).
# Keys real responses leave out (always or sometimes) although the schema lists them:
REAL_ABSENT: dict[str, set[str]] = {
    "contact": {"email_domain"},  # a 2.16 key
    "company": {"website", "industry", "size", "remote_created_at", "last_request_at"},  # absent until set
    "admin": {"avatar"},  # only /me sends an avatar
}
# Keys whose real type differs from the schema's: (schema name, key) -> the real JSON type.
REAL_TYPES: dict[tuple[str, str], type] = {("contact", "avatar"): str}  # a URL string (schema: object)


def _check_shape(schemas: dict, name: str, rec: dict, where: str) -> None:
    """Every property of the 2.15 schema is present; non-null values have the declared JSON type."""
    props = schemas[name].get("properties", {})
    missing = set(props) - set(rec) - REAL_ABSENT.get(name, set())
    missing.discard("conversation_parts")  # lists/search and store.get omit parts by design
    missing.discard("ticket_parts")
    if name == "data_attribute":
        missing.discard("options")  # only attributes with predefined options carry it
        if rec.get("custom") is False:
            # built-ins have no creating admin (Intercom's example omits it), and no id or timestamps
            # ("Only available for custom attributes"; real responses)
            missing -= {"admin_id", "id", "created_at", "updated_at"}
    if name == "tag":
        missing -= {"applied_at", "applied_by"}  # "only present when ... part of a tagging operation"
    assert not missing, f"{where}: missing {sorted(missing)}"
    for key, p in props.items():
        v = rec.get(key)
        if v is None:
            continue
        if (name, key) in REAL_TYPES:
            assert isinstance(v, REAL_TYPES[name, key]), f"{where}.{key}: {v!r}"
            continue
        t = p.get("type")
        if t is None and "$ref" in p:
            t = schemas[p["$ref"].rsplit("/", 1)[1]].get("type", "object")
        if t in JSON_TYPES:
            ok = isinstance(v, JSON_TYPES[t]) and not (t in ("integer", "number") and isinstance(v, bool))
            assert ok, f"{where}.{key}: {v!r} is not {t}"
        if "enum" in p:
            assert v in p["enum"], f"{where}.{key}: {v!r} not in enum"


@pytest.mark.parametrize("name", ["tiny", "demo"])
def test_profile_counts_are_exact(name: str) -> None:
    ws = Workspace(name, seed=3, anchor=ANCHOR)
    p = PROFILES[name]
    for model in SCHEMA_OF:
        assert ws.count(model) == getattr(p, model) == len(ws.ids(model)) == sum(1 for _ in ws.iter(model)), model


def test_documented_profile_numbers_and_scaling() -> None:
    b = PROFILES["bench"]
    assert (b.contacts, b.companies, b.conversations, b.admins, b.teams, b.tags, b.segments,
            b.activity_logs, b.tickets) == (20_000, 5_000, 10_000, 40, 15, 150, 30, 20_000, 2_000)
    c = Counts.of(b, 50)
    assert (c.contacts, c.companies, c.conversations, c.activity_logs) == (1_000_000, 250_000, 500_000, 1_000_000)
    assert (c.admins, c.tags, c.tickets) == (40, 150, 2_000)  # small models do not scale


def test_same_seed_is_identical_other_seed_differs(tiny: Workspace) -> None:
    again = Workspace("tiny", seed=1, anchor=ANCHOR)
    other = Workspace("tiny", seed=2, anchor=ANCHOR)
    for stream in ("contacts", "conversations", "conversation_parts", "companies", "activity_logs", "tickets"):
        assert tiny.ground_truth(stream) == again.ground_truth(stream), stream
        assert tiny.ground_truth(stream) != other.ground_truth(stream), stream
    assert tiny.ids("contacts") != other.ids("contacts")


def test_records_follow_the_2_15_schemas(tiny: Workspace, spec: dict) -> None:
    for model, schema in SCHEMA_OF.items():
        for rec in tiny.iter(model):
            _check_shape(spec, schema, rec, f"{model}/{rec['id']}")
    for conv_id in tiny.ids("conversations")[:10]:
        for part in tiny.conversation_parts(conv_id):
            _check_shape(spec, "conversation_part", part, f"part/{part['id']}")
    for t in tiny.ids("tickets"):
        for part in tiny.ticket_parts(t):
            _check_shape(spec, "ticket_part", part, f"ticket_part/{part['id']}")
    for row in tiny.data_attributes("contact") + tiny.data_attributes("company"):
        _check_shape(spec, "data_attribute", row, f"data_attribute/{row['name']}")
    me = tiny.me()
    _check_shape(spec, "admin_with_app", me, "me")
    _check_shape(spec, "app", me["app"], "me.app")
    assert me["app"]["timezone"] == "America/New_York"


def test_id_formats(tiny: Workspace) -> None:
    for model in ("contacts", "companies", "segments"):
        assert all(HEX24.match(i) for i in tiny.ids(model)), model
    for model in ("conversations", "admins", "teams", "tags", "tickets", "activity_logs"):
        assert all(NUM.match(i) for i in tiny.ids(model)), model
    conv_id = tiny.ids("conversations")[0]
    assert all(NUM.match(p["id"]) for p in tiny.conversation_parts(conv_id))
    all_ids = [i for m in SCHEMA_OF for i in tiny.ids(m)]
    assert len(all_ids) == len(set(all_ids))


def test_timestamps_are_ordered_and_before_anchor(demo: Workspace) -> None:
    for model in ("contacts", "companies", "conversations", "tickets", "segments"):
        prev = 0
        for rec in demo.iter(model):
            assert rec["created_at"] <= rec["updated_at"] <= ANCHOR, (model, rec["id"])
            if model != "segments":
                assert rec["created_at"] >= prev, "creation order"
            prev = rec["created_at"]
    logs = list(demo.iter("activity_logs"))
    assert ANCHOR - 366 * 86_400 < logs[0]["created_at"] <= logs[-1]["created_at"] <= ANCHOR


STATISTICS_KEYS = {
    "type", "time_to_assignment", "time_to_admin_reply", "time_to_first_close", "time_to_last_close",
    "median_time_to_reply", "first_contact_reply_at", "first_assignment_at", "first_admin_reply_at",
    "first_close_at", "last_assignment_at", "last_assignment_admin_reply_at", "last_contact_reply_at",
    "last_admin_reply_at", "last_close_at", "last_closed_by_id", "count_reopens", "count_assignments",
    "count_conversation_parts", "assigned_team_first_response_time",
    "assigned_team_first_response_time_in_office_hours", "handling_time", "adjusted_handling_time",
}


def test_conversation_statistics_are_consistent_with_parts(demo: Workspace) -> None:
    seen_types = set()
    for conv in demo.iter("conversations"):
        parts = demo.conversation_parts(conv["id"])
        s = conv["statistics"]
        assert s["count_conversation_parts"] == len(parts)
        assert [p["created_at"] for p in parts] == sorted(p["created_at"] for p in parts)
        assert all(conv["created_at"] <= p["created_at"] <= conv["updated_at"] for p in parts)
        assert conv["state"] == (parts[-1]["state"] if parts else "open")
        assert conv["open"] == (conv["state"] != "closed")
        # real responses send every statistics key, null while unknown
        assert set(s) == STATISTICS_KEYS
        closes = [p for p in parts if p["part_type"] == "close"]
        assert s.get("first_close_at") == (closes[0]["created_at"] if closes else None)
        assert s.get("last_close_at") == (closes[-1]["created_at"] if closes else None)
        # an integer in real responses (the spec: string)
        assert s.get("last_closed_by_id") == (int(closes[-1]["author"]["id"]) if closes else None)
        assert s.get("time_to_first_close") == (closes[0]["created_at"] - conv["created_at"] if closes else None)
        user_c = [p["created_at"] for p in parts if p["part_type"] == "comment" and p["author"]["type"] == "user"]
        admin_c = [p["created_at"] for p in parts if p["part_type"] == "comment" and p["author"]["type"] == "admin"]
        assert s.get("first_contact_reply_at") == (user_c[0] if user_c else None)
        assert s.get("last_contact_reply_at") == (user_c[-1] if user_c else None)
        assert s.get("first_admin_reply_at") == (admin_c[0] if admin_c else None)
        assert s.get("last_admin_reply_at") == (admin_c[-1] if admin_c else None)
        assert s.get("time_to_admin_reply") == (admin_c[0] - conv["created_at"] if admin_c else None)
        asg = [p["created_at"] for p in parts if p["part_type"] in (
            "assignment", "default_assignment", "away_mode_assignment", "assign_and_reopen")]
        assert s.get("first_assignment_at") == (asg[0] if asg else None)
        assert s.get("last_assignment_at") == (asg[-1] if asg else None)
        assert (s["median_time_to_reply"] is not None) == bool(admin_c)
        for key in ("type", "count_reopens", "count_assignments", "count_conversation_parts", "handling_time"):
            assert key in s, key
        assert s["count_assignments"] == sum(p["part_type"] in (
            "assignment", "default_assignment", "away_mode_assignment", "assign_and_reopen") for p in parts)
        assert conv["admin_assignee_id"] is None or isinstance(conv["admin_assignee_id"], int)
        assert conv["team_assignee_id"] is None or isinstance(conv["team_assignee_id"], int)
        assert (conv["snoozed_until"] is not None) == (conv["state"] == "snoozed")
        if conv["conversation_rating"]:
            assert 1 <= conv["conversation_rating"]["rating"] <= 5 and closes
            assert conv["conversation_rating"].get("remark", "") is not None  # no remark: key left out
        for p in parts:
            seen_types.add(p["part_type"])
            assert p["author"]["type"] in ("user", "admin", "bot", "team")
            if p["part_type"] in ("comment", "note"):
                assert p["body"].startswith("<p>") and p["body"].endswith("</p>")
    assert {"comment", "note", "assignment", "open", "close", "snoozed", "assign_and_reopen", "quick_reply",
            "conversation_attribute_updated_by_admin", "away_mode_assignment", "default_assignment"} <= seen_types
    states = {c["state"] for c in demo.iter("conversations")}
    assert states == {"open", "closed", "snoozed"}


def test_long_conversations(tiny: Workspace, demo: Workspace) -> None:
    assert sorted(len(tiny.conversation_parts(c)) for c in tiny.ids("conversations"))[-1] == 520
    longs = sorted(c["statistics"]["count_conversation_parts"] for c in demo.iter("conversations"))[-2:]
    assert longs == [510, 650]


def test_embedded_lists_match_full_lists(tiny: Workspace) -> None:
    truncated = 0
    for c in tiny.iter("contacts"):
        for key, full in (("tags", tiny.contact_tags(c["id"])), ("companies", tiny.contact_companies(c["id"])),
                          ("notes", tiny.contact_notes(c["id"]))):
            emb = c[key]
            assert emb["type"] == "list" and emb["url"] == f"/contacts/{c['id']}/{key}"
            assert emb["total_count"] == len(full)
            assert emb["has_more"] == (len(full) > 10)
            assert [x["id"] for x in emb["data"]] == [x["id"] for x in full][:10]
            truncated += emb["has_more"]
    assert truncated >= 6  # tiny has two special contacts: 25 tags, 12 companies, 12 notes each
    assert max(len(tiny.contact_tags(i)) for i in tiny.ids("contacts")) == 25


def test_company_user_counts_match_contacts(demo: Workspace) -> None:
    attached: dict[str, int] = {}
    for cid in demo.ids("contacts"):
        for co in demo.contact_companies(cid):
            attached[co["id"]] = attached.get(co["id"], 0) + 1
    companies = list(demo.iter("companies"))
    for co in companies:
        assert co["user_count"] == attached.get(co["id"], 0) == demo.company_contact_count(co["id"])
        assert co["tags"]["type"] == "tag.list" and co["segments"]["type"] == "segment.list"
    assert sum(co["user_count"] == 0 for co in companies) >= 80  # the last 20% have no users
    first = companies[5]
    assert demo.company_by_company_id(first["company_id"])["id"] == first["id"]
    assert demo.company_by_name(first["name"])["id"] == first["id"]
    assert demo.company_by_name("No Such Company") is None


def test_custom_attributes_are_declared_and_typed(demo: Workspace) -> None:
    types = {"string": str, "integer": int, "float": float, "boolean": bool, "date": int}
    for model, attr_model in (("contacts", "contact"), ("companies", "company"), ("conversations", "conversation")):
        declared = {a["name"]: a for a in demo.data_attributes(attr_model) if a["custom"]}
        assert {a["data_type"] for a in declared.values()} == set(types)
        assert all(a["full_name"] == f"custom_attributes.{n}" for n, a in declared.items())
        seen, records, unset = set(), 0, 0
        for rec in demo.iter(model):
            records += 1
            # unset attributes are left out (never null): no Intercom example has a null one
            assert set(rec["custom_attributes"]) <= set(declared)
            unset += len(declared) - len(rec["custom_attributes"])
            for k, v in rec["custom_attributes"].items():
                assert v is not None, (model, k)
                assert isinstance(v, types[declared[k]["data_type"]]) and not (
                    declared[k]["data_type"] != "boolean" and isinstance(v, bool)), (k, v)
                seen.add(k)
        assert seen == set(declared)
        assert 0.05 < unset / (records * len(declared)) < 0.2  # ~12% unset


def test_contacts_are_realistic(demo: Workspace) -> None:
    contacts = list(demo.iter("contacts"))
    roles = {c["role"] for c in contacts}
    assert roles == {"user", "lead"}
    assert all(c["external_id"] is None for c in contacts if c["role"] == "lead")
    # email_domain is a 2.16 key (added at the server edge, tests/emulator/test_version_shapes.py)
    assert all("@" in c["email"] and "email_domain" not in c for c in contacts)
    assert any(c["unsubscribed_from_emails"] for c in contacts)
    assert any(c["social_profiles"]["data"] for c in contacts)
    seg = demo.contact_segments(contacts[0]["id"])
    assert all(s["type"] == "segment" for s in seg)


def test_teams_and_admins_agree(tiny: Workspace) -> None:
    admins = {a["id"]: a for a in tiny.iter("admins")}
    for team in tiny.iter("teams"):
        for aid in team["admin_ids"]:
            assert int(team["id"]) in admins[str(aid)]["team_ids"]


def test_activity_types_are_in_the_spec_enum(demo: Workspace, spec: dict) -> None:
    enum = set(spec["activity_log"]["properties"]["activity_type"]["enum"])
    logs = list(demo.iter("activity_logs"))
    assert {entry["activity_type"] for entry in logs} <= enum
    assert all(entry["performed_by"]["type"] == "admin" for entry in logs)


def test_scale_stays_compact_and_records_are_reproducible() -> None:
    t0 = time.perf_counter()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ws = Workspace("bench", seed=5, scale=10, anchor=ANCHOR)
    built = time.perf_counter() - t0
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    assert ws.count("contacts") == 200_000 and ws.count("conversations") == 100_000
    assert built < 20, built
    assert grown_mb < 150, grown_mb
    cid = ws.gen.contact_id(123_456)
    first = ws.get("contacts", cid)
    assert first == ws.get("contacts", cid)
    alone = Generator(PROFILES["bench"], 5, 10, ANCHOR, "America/New_York").contact(123_456)[0]
    assert {k: v for k, v in first.items() if k not in ("tags", "notes", "companies")} == alone
    conv_id = ws.ids("conversations")[-1]
    assert ws.conversation_parts(conv_id) == ws.conversation_parts(conv_id)

"""The emulator answers like real Intercom where real responses and the 2.15 OpenAPI text disagree.

Over real HTTP at the default version (2.15). Each test names the divergence it pins (issue 15; the
evidence per field is in docs/emulator-contract.md), so a regression to the spec's picture fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from intercom_emulator.generator import admin_avatar_url
from intercom_emulator.testing import EmulatorServer, json_body

OPTIONAL_COMPANY_FIELDS = ("website", "industry", "size", "remote_created_at", "last_request_at")
EVENT_PART_TYPES = {"company_updated", "conversation_tags_updated", "entity_linked", "language_detection_details",
                    "ticket_state_updated_by_admin"}
STATISTICS_KEYS = {
    "type", "time_to_assignment", "time_to_admin_reply", "time_to_first_close", "time_to_last_close",
    "median_time_to_reply", "first_contact_reply_at", "first_assignment_at", "first_admin_reply_at",
    "first_close_at", "last_assignment_at", "last_assignment_admin_reply_at", "last_contact_reply_at",
    "last_admin_reply_at", "last_close_at", "last_closed_by_id", "count_reopens", "count_assignments",
    "count_conversation_parts",
}


def walk_list(api: httpx.Client, path: str, key: str, per_page: int | None = None) -> Iterator[dict[str, Any]]:
    """Every record of a cursor list (GET /contacts, GET /conversations)."""
    params: dict[str, Any] = {} if per_page is None else {"per_page": per_page}
    while True:
        body = json_body(api.get(path, params=params))
        yield from body[key]
        nxt = body["pages"].get("next")
        if not nxt:
            return
        params = {**params, "starting_after": nxt["starting_after"]}


def search_pages(api: httpx.Client, path: str, body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """Every record of a search, resending the same body with the cursor in `pagination`."""
    out: list[dict[str, Any]] = []
    request = dict(body)
    while True:
        page = json_body(api.post(path, json=request))
        out += page[key]
        nxt = page["pages"].get("next")
        if not nxt:
            return out
        request = {**body, "pagination": {**body.get("pagination", {}), "starting_after": nxt["starting_after"]}}


def snake(name: str) -> str:
    """A column name as a snake_case normaliser makes it (lowercase, runs of other characters -> _)."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


# ---------------------------------------------------------------------------------------------- data attributes


def test_builtin_data_attributes_have_no_id_and_only_full_name_is_unique(api: httpx.Client) -> None:
    rows = json_body(api.get("/data_attributes"))["data"]
    builtins = [r for r in rows if not r["custom"]]
    customs = [r for r in rows if r["custom"]]
    assert builtins and customs
    # "Only available for custom attributes": no id, and no timestamps either
    assert all({"id", "created_at", "updated_at", "admin_id"}.isdisjoint(r) for r in builtins)
    assert all(isinstance(r["id"], int) and isinstance(r["created_at"], int) for r in customs)
    keys = [(r["model"], r["full_name"]) for r in rows]
    assert len(keys) == len(set(keys))
    company = [r for r in rows if r["model"] == "company"]
    by_name = {n: sorted(r["full_name"] for r in company if r["name"] == n) for n in ("name", "id")}
    assert by_name == {"name": ["name", "plan.name"], "id": ["id", "plan.id"]}


def test_custom_attribute_names_hold_spaces_and_colons_and_can_collide(api: httpx.Client,
                                                                      emulator: EmulatorServer) -> None:
    rows = json_body(api.get("/data_attributes", params={"model": "conversation"}))["data"]
    names = {r["name"]: r for r in rows if r["custom"]}
    assert {"Fin AI Agent: Preview", "Copilot used", "Fin AI agent preview"} <= set(names)
    assert names["Fin AI Agent: Preview"]["full_name"] == "custom_attributes.Fin AI Agent: Preview"
    # two attributes of different types whose names map to one snake_case column
    assert snake("Fin AI Agent: Preview") == snake("Fin AI agent preview")
    assert names["Fin AI Agent: Preview"]["data_type"] != names["Fin AI agent preview"]["data_type"]
    served = list(walk_list(api, "/conversations", "conversations"))
    both = [c for c in served if {"Fin AI Agent: Preview", "Fin AI agent preview"} <= set(c["custom_attributes"])]
    assert both and all(isinstance(c["custom_attributes"]["Fin AI Agent: Preview"], bool) for c in both)
    assert all(isinstance(c["custom_attributes"]["Fin AI agent preview"], str) for c in both)


# ---------------------------------------------------------------------------------------------- conversations


def test_conversation_sources_statistics_teammates_topics_ticket(api: httpx.Client, emulator: EmulatorServer) -> None:
    convs = list(walk_list(api, "/conversations", "conversations"))
    assert len(convs) == emulator.workspace.count("conversations")
    sources = [c["source"] for c in convs]
    assert any(s is None for s in sources)
    assert {None, "unknown", "admin_initiated", "conversation"} <= {s["type"] for s in sources if s is not None}
    replies = [c["first_contact_reply"] for c in convs if c["first_contact_reply"] is not None]
    assert any(r["type"] is None for r in replies) and any(r["type"] == "conversation" for r in replies)
    for c in convs:
        stats = c["statistics"]
        assert set(stats) >= STATISTICS_KEYS, c["id"]  # every key, null while unknown
        assert stats["last_closed_by_id"] is None or type(stats["last_closed_by_id"]) is int
        assert c["teammates"]["type"] == "admin.list" and "teammates" not in c["teammates"]
        assert all(a["type"] == "admin" and isinstance(a["id"], str) for a in c["teammates"]["admins"])
        assert c["topics"]["type"] == "topic.list"
        assert c["topics"]["total_count"] == len(c["topics"]["topics"])
        assert "ticket" in c and (c["ticket"] is None or isinstance(c["ticket"]["id"], str))
    assert any(s["last_closed_by_id"] is None for s in (c["statistics"] for c in convs))
    assert any(type(c["statistics"]["last_closed_by_id"]) is int for c in convs)
    assert any(c["teammates"]["admins"] for c in convs)
    assert any(c["ticket"] for c in convs) and any(c["topics"]["topics"] for c in convs)


def test_conversation_search_and_detail_carry_the_same_real_shape(api: httpx.Client) -> None:
    listed = {c["id"]: c for c in walk_list(api, "/conversations", "conversations")}
    searched = search_pages(api, "/conversations/search",
                            {"query": {"field": "created_at", "operator": ">", "value": 0}}, "conversations")
    assert {c["id"]: c for c in searched} == listed
    for cid, conv in listed.items():
        detail = json_body(api.get(f"/conversations/{cid}"))
        parts = detail.pop("conversation_parts")
        assert detail == conv
        assert parts["total_count"] >= len(parts["conversation_parts"])


def test_event_part_types_have_no_body(api: httpx.Client, emulator: EmulatorServer) -> None:
    seen: set[str] = set()
    for cid in emulator.workspace.ids("conversations"):
        for part in json_body(api.get(f"/conversations/{cid}"))["conversation_parts"]["conversation_parts"]:
            if part["part_type"] in EVENT_PART_TYPES:
                seen.add(part["part_type"])
                assert part["body"] is None, part
    assert seen == EVENT_PART_TYPES


def test_conversations_list_echoes_a_passed_per_page_as_a_string(api: httpx.Client) -> None:
    assert json_body(api.get("/conversations", params={"per_page": 5}))["pages"]["per_page"] == "5"
    assert json_body(api.get("/conversations"))["pages"]["per_page"] == 20
    assert json_body(api.get("/contacts", params={"per_page": 5}))["pages"]["per_page"] == 5


# ---------------------------------------------------------------------------------------------- companies, contacts, admins


def test_companies_without_plan_and_optional_fields_absent(api: httpx.Client, emulator: EmulatorServer) -> None:
    companies = [json_body(api.get(f"/companies/{cid}")) for cid in emulator.workspace.ids("companies")]
    assert any(c["plan"] == {} for c in companies)
    assert any(c["plan"].get("type") == "plan" for c in companies)
    for key in OPTIONAL_COMPANY_FIELDS:
        assert any(key not in c for c in companies), key  # absent, not null, unless set
        assert any(key in c for c in companies), key
        assert all(c.get(key, 0) is not None for c in companies), key


def test_contact_avatar_is_a_url_or_null(api: httpx.Client) -> None:
    contacts = list(walk_list(api, "/contacts", "data"))
    avatars = [c["avatar"] for c in contacts]
    assert all(a is None or (isinstance(a, str) and a.startswith("https://")) for a in avatars)
    assert any(a is None for a in avatars) and any(isinstance(a, str) for a in avatars)
    assert all("email_domain" not in c for c in contacts)  # a 2.16 key (test_version_shapes.py)


def test_admin_avatar_is_an_object_and_only_on_me(api: httpx.Client, emulator: EmulatorServer) -> None:
    admins = json_body(api.get("/admins"))["admins"]
    assert admins and all("avatar" not in a for a in admins)
    for admin in admins:
        assert "avatar" not in json_body(api.get(f"/admins/{admin['id']}"))
    me = json_body(api.get("/me"))
    assert me["avatar"] == {"type": "avatar", "image_url": admin_avatar_url(me["id"])}
    assert isinstance(me["avatar"]["image_url"], str)


# ---------------------------------------------------------------------------------------------- tickets


def test_ticket_search_items_embed_parts_and_real_shapes(api: httpx.Client, emulator: EmulatorServer) -> None:
    ws = emulator.workspace
    tickets = search_pages(api, "/tickets/search", {"query": {"field": "created_at", "operator": ">", "value": 0}},
                           "tickets")
    assert sorted(t["id"] for t in tickets) == sorted(ws.ids("tickets"))
    for t in tickets:
        assert t["ticket_parts"]["type"] == "ticket_part.list"
        assert t["ticket_parts"]["ticket_parts"] == ws.ticket_parts(t["id"])
        assert t["ticket_parts"]["total_count"] == len(ws.ticket_parts(t["id"]))
        attrs = t["ticket_type"]["ticket_type_attributes"]
        assert attrs["type"] == "list" and isinstance(attrs["data"], list) and attrs["data"]
        assert t["ticket_state"]["type"] == "ticket_state" and "ticket_state_internal_label" not in t
        assert isinstance(t["admin_assignee_id"], str)
    assert any(isinstance(v, list) for t in tickets for v in t["ticket_attributes"].values())


# ---------------------------------------------------------------------------------------------- tap-intercom's search


def tap_body(last_processed: str, bookmark: int) -> dict[str, Any]:
    """Exactly the body singer-io/tap-intercom (tap_intercom/streams.py, Conversations.get_records) sends."""
    return {
        "pagination": {"per_page": 150},
        "query": {
            "operator": "AND",
            "value": [
                {"operator": "OR", "value": [
                    {"field": "id", "operator": ">", "value": last_processed},
                    {"field": "id", "operator": "=", "value": last_processed}]},
                {"operator": "OR", "value": [
                    {"field": "updated_at", "operator": ">", "value": bookmark},
                    {"field": "updated_at", "operator": "=", "value": bookmark}]},
            ],
        },
        "sort": {"field": "id", "order": "ascending"},
    }


@pytest.fixture
def many_conversations() -> Iterator[EmulatorServer]:
    """The demo profile: more conversations than one page of 150."""
    with EmulatorServer(profile="demo", seed=3) as emu:
        yield emu


def test_tap_intercom_conversation_query_returns_records(many_conversations: EmulatorServer) -> None:
    ws = many_conversations.workspace
    convs = list(ws.iter("conversations"))
    bookmark = sorted(c["updated_at"] for c in convs)[len(convs) // 3]
    expected = sorted(c["id"] for c in convs if c["updated_at"] >= bookmark)
    assert len(expected) > 150
    with many_conversations.client(timeout=30) as api:
        got = [c["id"] for c in search_pages(api, "/conversations/search", tap_body("", bookmark), "conversations")]
        assert got == expected  # string comparison on id, sorted by id ascending, across pages
        resumed = expected[len(expected) // 2]  # the tap's `last_processed` after an interruption
        again = [c["id"] for c in search_pages(api, "/conversations/search", tap_body(resumed, bookmark),
                                               "conversations")]
        assert again == [i for i in expected if i >= resumed]


# ---------------------------------------------------------------------------------------------- ground truth


def test_ground_truth_is_what_the_server_serves_at_2_15(api: httpx.Client, emulator: EmulatorServer) -> None:
    ws = emulator.workspace
    assert list(walk_list(api, "/contacts", "data", per_page=7)) == ws.ground_truth("contacts")
    assert list(walk_list(api, "/conversations", "conversations", per_page=7)) == ws.ground_truth("conversations")
    assert json_body(api.get("/admins"))["admins"] == ws.ground_truth("admins")
    assert json_body(api.get("/data_attributes"))["data"] == ws.ground_truth("data_attributes")
    companies = [json_body(api.get(f"/companies/{cid}")) for cid in ws.ids("companies")]
    assert companies == ws.ground_truth("companies")
    parts = []
    for cid in ws.ids("conversations"):
        for part in json_body(api.get(f"/conversations/{cid}"))["conversation_parts"]["conversation_parts"]:
            parts.append({**part, "conversation_id": cid})
    assert parts == ws.ground_truth("conversation_parts")
    tickets = search_pages(api, "/tickets/search", {"query": {"field": "created_at", "operator": ">", "value": 0}},
                           "tickets")
    # ticket rows in ground truth leave the embedded parts to the ticket_parts stream
    assert sorted(({k: v for k, v in t.items() if k != "ticket_parts"} for t in tickets), key=lambda t: t["id"]) == \
        sorted(ws.ground_truth("tickets"), key=lambda t: t["id"])

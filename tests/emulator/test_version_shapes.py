"""Answers follow the request's `Intercom-Version` (2.11, 2.15, 2.16, ...) where Intercom's shapes differ.

Over real HTTP. Every test compares a version's body with the same request at 2.15 and checks that
only the documented keys differ, so a transform that touches anything else fails too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from intercom_emulator.testing import EmulatorServer, error_code, json_body

SEARCH_ALL = {"query": {"field": "created_at", "operator": ">", "value": 0}, "pagination": {"per_page": 150}}
CONVERSATION_2_16_KEYS = {"channel", "external_references", "sales_agent"}


@pytest.fixture
def at(emulator: EmulatorServer) -> Iterator[Any]:
    """`at(version)` -> an httpx client sending that Intercom-Version (None: no header at all)."""
    clients: list[httpx.Client] = []

    def client(version: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {emulator.token}"}
        if version is not None:
            headers["Intercom-Version"] = version
        c = httpx.Client(base_url=emulator.base_url, headers=headers, timeout=30)
        clients.append(c)
        return c

    yield client
    for c in clients:
        c.close()


def conversations(api: httpx.Client) -> list[dict[str, Any]]:
    return json_body(api.post("/conversations/search", json=SEARCH_ALL))["conversations"]


def tickets(api: httpx.Client) -> list[dict[str, Any]]:
    return json_body(api.post("/tickets/search", json=SEARCH_ALL))["tickets"]


def test_missing_header_answers_the_default_2_15(at: Any, emulator: EmulatorServer) -> None:
    cid = emulator.workspace.ids("conversations")[0]
    for path in (f"/conversations/{cid}", "/contacts", f"/companies/{emulator.workspace.ids('companies')[0]}"):
        assert json_body(at(None).get(path)) == json_body(at("2.15").get(path))
    assert tickets(at(None)) == tickets(at("2.15"))


@pytest.mark.parametrize("version", ["2.99", "2.17", "3", "latest", "2.15.0", ""])
def test_unknown_version_is_intercom_version_invalid(at: Any, version: str) -> None:
    resp = at(version).get("/me")
    assert resp.status_code == 400
    assert error_code(resp) == "intercom_version_invalid"


@pytest.mark.parametrize("version", ["2.12", "2.13", "2.14"])
def test_versions_sharing_the_store_shape_answer_identically(at: Any, version: str) -> None:
    assert conversations(at(version)) == conversations(at("2.15"))
    assert tickets(at(version)) == tickets(at("2.15"))


def test_2_16_conversations(at: Any) -> None:
    old, new = conversations(at("2.15")), conversations(at("2.16"))
    assert [c["id"] for c in old] == [c["id"] for c in new]
    priorities = {"not_priority": "none", "priority": "high"}
    for o, n in zip(old, new, strict=True):
        assert CONVERSATION_2_16_KEYS.isdisjoint(o) and set(n) >= CONVERSATION_2_16_KEYS
        assert n["external_references"] == [] and n["sales_agent"] is None
        assert n["channel"] == ({"initial": "messenger", "current": "messenger"} if o["source"] else None)
        for key in ("admin_assignee_id", "team_assignee_id"):
            assert n[key] == (0 if o[key] is None else o[key]), key
            assert type(n[key]) is int
        assert n["priority"] == priorities[o["priority"]]
        changed = CONVERSATION_2_16_KEYS | {"admin_assignee_id", "team_assignee_id", "priority"}
        assert {k: v for k, v in n.items() if k not in changed} == {k: v for k, v in o.items() if k not in changed}
    assert any(o["admin_assignee_id"] is None for o in old) and any(o["admin_assignee_id"] for o in old)
    assert {n["priority"] for n in new} == {"none", "high"}


def test_2_16_tickets_admin_assignee_is_an_integer(at: Any) -> None:
    old, new = tickets(at("2.15")), tickets(at("2.16"))
    for o, n in zip(old, new, strict=True):
        assert isinstance(o["admin_assignee_id"], str)
        assert n["admin_assignee_id"] == int(o["admin_assignee_id"])
        assert {k: v for k, v in n.items() if k != "admin_assignee_id"} == {
            k: v for k, v in o.items() if k != "admin_assignee_id"}


def test_2_11_ticket_state_is_a_string_with_labels(at: Any) -> None:
    old, legacy = tickets(at("2.15")), tickets(at("2.11"))
    labels = {"ticket_state_internal_label", "ticket_state_external_label"}
    for o, n in zip(old, legacy, strict=True):
        assert isinstance(o["ticket_state"], dict) and labels.isdisjoint(o)
        assert n["ticket_state"] == o["ticket_state"]["category"]
        assert n["ticket_state_internal_label"] == o["ticket_state"]["internal_label"]
        assert n["ticket_state_external_label"] == o["ticket_state"]["external_label"]
        assert isinstance(n["admin_assignee_id"], str)
        rest = labels | {"ticket_state"}
        assert {k: v for k, v in n.items() if k not in rest} == {k: v for k, v in o.items() if k not in rest}
    # conversations did not change shape between 2.11 and 2.15
    assert conversations(at("2.11")) == conversations(at("2.15"))


def test_2_9_linked_ticket_id_is_an_integer(at: Any) -> None:
    old, legacy = conversations(at("2.15")), conversations(at("2.9"))
    linked = [(o, n) for o, n in zip(old, legacy, strict=True) if o["ticket"]]
    assert linked
    for o, n in linked:
        assert isinstance(o["ticket"]["id"], str) and n["ticket"]["id"] == int(o["ticket"]["id"])


def test_2_16_contact_email_domain_and_company_notes(at: Any, emulator: EmulatorServer) -> None:
    new_id = emulator.workspace.create_contact(email="someone@new.example", name="New")
    old = json_body(at("2.15").get("/contacts", params={"per_page": 150}))["data"]
    new = json_body(at("2.16").get("/contacts", params={"per_page": 150}))["data"]
    assert [c["id"] for c in old] == [c["id"] for c in new] and new_id in {c["id"] for c in new}
    for o, n in zip(old, new, strict=True):
        assert "email_domain" not in o
        assert n["email_domain"] == o["email"].split("@", 1)[1]
        assert {k: v for k, v in n.items() if k != "email_domain"} == o
    assert json_body(at("2.16").get(f"/contacts/{new_id}"))["email_domain"] == "new.example"
    cid = emulator.workspace.ids("companies")[0]
    o, n = json_body(at("2.15").get(f"/companies/{cid}")), json_body(at("2.16").get(f"/companies/{cid}"))
    assert "notes" not in o and n.pop("notes") == {"type": "note.list", "notes": []} and n == o
    # embedded references are not full records: a conversation's contact list gains nothing
    conv = conversations(at("2.16"))[0]
    assert all("email_domain" not in ref for ref in conv["contacts"]["contacts"])


def test_preview_answers_the_newest_shape(at: Any) -> None:
    assert conversations(at("Preview")) == conversations(at("2.16"))


def test_other_versions_leave_the_store_and_ground_truth_2_15_shaped(at: Any, emulator: EmulatorServer) -> None:
    ws = emulator.workspace
    before = ws.ground_truth("conversations")
    cid = ws.ids("conversations")[0]
    for version in ("2.16", "2.11", "2.9"):
        conversations(at(version))
        tickets(at(version))
        at(version).get(f"/conversations/{cid}")
    assert ws.ground_truth("conversations") == before
    assert conversations(at("2.15")) == sorted(before, key=lambda c: (len(c["id"]), c["id"]))
    assert json_body(at("2.15").get(f"/conversations/{cid}"))["admin_assignee_id"] == ws.get("conversations", cid)[
        "admin_assignee_id"]

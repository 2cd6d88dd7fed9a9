"""Search endpoints over real HTTP: the DSL, its limits, calendar-day dates, sort, lag and cursors.

Expected sets are computed here from the workspace with plain Python + zoneinfo, independently of
intercom_emulator/search.py, so a wrong rule there makes these tests fail.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from intercom_emulator.testing import EmulatorServer, error_code, json_body


def search_all(
    api: httpx.Client, path: str, query: Any, per_page: int = 150, sort: dict | None = None, key: str = "data"
) -> list[str]:
    """Walk every page of a search, resending the same query with the cursor in the body."""
    ids: list[str] = []
    cursor = None
    for _ in range(1000):
        payload: dict[str, Any] = {"query": query, "pagination": {"per_page": per_page}}
        if sort:
            payload["sort"] = sort
        if cursor:
            payload["pagination"]["starting_after"] = cursor
        resp = api.post(path, json=payload)
        assert resp.status_code == 200, resp.text
        page = json_body(resp)
        ids.extend(str(r["id"]) for r in page[key])
        nxt = page["pages"].get("next")
        if not nxt:
            return ids
        cursor = nxt["starting_after"]
    raise AssertionError("search never ended")


def day_start(ts: int, tz: str) -> int:
    """Start of ts's calendar day in tz (independent re-implementation for expectations)."""
    zone = ZoneInfo(tz)
    d = dt.datetime.fromtimestamp(ts, zone).date()
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=zone).timestamp())


def next_day_start(ts: int, tz: str) -> int:
    zone = ZoneInfo(tz)
    d = dt.datetime.fromtimestamp(ts, zone).date() + dt.timedelta(days=1)
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=zone).timestamp())


def _clear_of_midnight(ws: Any) -> int:
    """Freeze the workspace clock at least 5 minutes from a local midnight and return now.

    Why: day-granular search compares calendar days; a value a minute before now lies in the
    previous day during the first minute after midnight (this failed once in CI at 00:00 in
    New York, the tiny workspace's zone).
    """
    now = ws.clock.freeze()
    start = day_start(now, ws.timezone)
    if now - start < 300:
        return ws.clock.advance(start + 300 - now)
    following = next_day_start(now, ws.timezone)
    if following - now < 300:
        return ws.clock.advance(following + 300 - now)
    return now


def test_contacts_search_matches_exact_sets_for_string_operators(emulator: EmulatorServer, api: httpx.Client) -> None:
    ws = emulator.workspace
    contacts = list(ws.iter("contacts"))
    tiers = ["pro", "enterprise"]
    expected_in = {c["id"] for c in contacts if (c.get("custom_attributes") or {}).get("plan_tier") in tiers}
    got = search_all(
        api, "/contacts/search", {"field": "custom_attributes.plan_tier", "operator": "IN", "value": tiers}
    )
    assert sorted(got) == sorted(expected_in)
    assert 0 < len(expected_in) < len(contacts)

    email = next(c["email"] for c in contacts if c.get("email"))
    domain = email.split("@", 1)[1]
    expected_suffix = {c["id"] for c in contacts if (c.get("email") or "").lower().endswith(domain.lower())}
    assert set(search_all(api, "/contacts/search", {"field": "email", "operator": "$", "value": domain})) == expected_suffix

    role_users = {c["id"] for c in contacts if c.get("role") == "user"}
    got_ne = search_all(api, "/contacts/search", {"field": "role", "operator": "!=", "value": "user"})
    assert set(got_ne) == {c["id"] for c in contacts} - role_users

    # AND of an OR group: (tier = pro OR tier = free) AND role = user
    query = {
        "operator": "AND",
        "value": [
            {
                "operator": "OR",
                "value": [
                    {"field": "custom_attributes.plan_tier", "operator": "=", "value": "pro"},
                    {"field": "custom_attributes.plan_tier", "operator": "=", "value": "free"},
                ],
            },
            {"field": "role", "operator": "=", "value": "user"},
        ],
    }
    expected = {
        c["id"]
        for c in contacts
        if (c.get("custom_attributes") or {}).get("plan_tier") in ("pro", "free") and c.get("role") == "user"
    }
    assert set(search_all(api, "/contacts/search", query)) == expected


def test_search_nesting_and_group_size_limits(api: httpx.Client) -> None:
    leaf = {"field": "role", "operator": "=", "value": "user"}
    fifteen = {"operator": "OR", "value": [leaf] * 15}
    assert api.post("/contacts/search", json={"query": fifteen}).status_code == 200
    sixteen = {"operator": "OR", "value": [leaf] * 16}
    resp = api.post("/contacts/search", json={"query": sixteen})
    assert resp.status_code == 400
    assert error_code(resp) == "parameter_invalid"
    two_levels = {"operator": "AND", "value": [{"operator": "OR", "value": [leaf, leaf]}, leaf]}
    assert api.post("/contacts/search", json={"query": two_levels}).status_code == 200
    three_levels = {"operator": "AND", "value": [{"operator": "OR", "value": [{"operator": "AND", "value": [leaf]}]}]}
    resp = api.post("/contacts/search", json={"query": three_levels})
    assert resp.status_code == 400
    assert error_code(resp) == "parameter_invalid"
    # date fields on contacts accept only = < >
    resp = api.post("/contacts/search", json={"query": {"field": "updated_at", "operator": ">=", "value": 1}})
    assert resp.status_code == 400
    assert error_code(resp) == "parameter_invalid"
    resp = api.post("/contacts/search", json={"query": {"field": "role", "operator": "LIKE", "value": "x"}})
    assert resp.status_code == 400


def test_contacts_search_dates_are_calendar_days_in_workspace_timezone(
    emulator: EmulatorServer, api: httpx.Client
) -> None:
    ws = emulator.workspace
    tz = ws.timezone
    target = ws.ids("contacts")[3]
    now = _clear_of_midnight(ws)
    # V is earlier the same local day as the update we are about to make
    v = now - 60
    ws.update_contact(target, name="Updated Later Same Day")
    updated = ws.get("contacts", target)["updated_at"]
    assert updated >= v and day_start(updated, tz) == day_start(v, tz)

    gt = search_all(api, "/contacts/search", {"field": "updated_at", "operator": ">", "value": v})
    assert target not in gt  # the trap: > V starts at the NEXT day
    contacts = list(ws.iter("contacts"))
    assert set(gt) == {c["id"] for c in contacts if c["updated_at"] >= next_day_start(v, tz)}

    eq = search_all(api, "/contacts/search", {"field": "updated_at", "operator": "=", "value": v})
    assert target in eq
    lo, hi = day_start(v, tz), next_day_start(v, tz)
    assert set(eq) == {c["id"] for c in contacts if lo <= c["updated_at"] < hi}

    lt = search_all(api, "/contacts/search", {"field": "created_at", "operator": "<", "value": v})
    assert set(lt) == {c["id"] for c in contacts if c["created_at"] < lo}
    assert len(lt) > 0


def test_conversations_search_is_full_second_by_default_and_day_granular_when_switched(
    emulator: EmulatorServer, api: httpx.Client
) -> None:
    ws = emulator.workspace
    conv = ws.ids("conversations")[0]
    now = _clear_of_midnight(ws)
    v = now - 60
    ws.add_conversation_part(conv, part_type="comment", author_type="user", body="<p>again</p>")
    updated = ws.get("conversations", conv)["updated_at"]
    assert updated >= v
    query = {"field": "updated_at", "operator": ">", "value": v - 1}
    got = search_all(api, "/conversations/search", query, key="conversations")
    assert conv in got
    assert set(got) == {c["id"] for c in ws.iter("conversations") if c["updated_at"] > v - 1}

    emulator.configure(conversations_search_day_granular=True)
    got_day = search_all(api, "/conversations/search", query, key="conversations")
    assert conv not in got_day


def test_search_sort_descending_and_cursor_walk_has_no_duplicates(emulator: EmulatorServer, api: httpx.Client) -> None:
    ws = emulator.workspace
    everyone = {"field": "created_at", "operator": ">", "value": 0}
    got = search_all(api, "/contacts/search", everyone, per_page=7, sort={"field": "created_at", "order": "descending"})
    assert len(got) == len(set(got)) == ws.count("contacts")
    created = {c["id"]: c["created_at"] for c in ws.iter("contacts")}
    values = [created[i] for i in got]
    assert values == sorted(values, reverse=True)


def test_search_caps_per_page_and_ignores_query_string_cursor(emulator: EmulatorServer, api: httpx.Client) -> None:
    everyone = {"field": "created_at", "operator": ">", "value": 0}
    first = json_body(api.post("/contacts/search", json={"query": everyone, "pagination": {"per_page": 5}}))
    cursor = first["pages"]["next"]["starting_after"]
    again = json_body(
        api.post(f"/contacts/search?starting_after={cursor}", json={"query": everyone, "pagination": {"per_page": 5}})
    )
    assert [r["id"] for r in again["data"]] == [r["id"] for r in first["data"]]
    big = json_body(api.post("/contacts/search", json={"query": everyone, "pagination": {"per_page": 500}}))
    assert big["pages"]["per_page"] == 150
    assert big["total_count"] == emulator.workspace.count("contacts")


def test_search_index_lag_hides_recent_updates_until_clock_moves(emulator: EmulatorServer, api: httpx.Client) -> None:
    ws = emulator.workspace
    emulator.configure(search_lag_seconds=300)
    target = ws.ids("contacts")[5]
    ws.update_contact(target, name="Fresh")
    by_id = {"field": "id", "operator": "=", "value": target}
    assert search_all(api, "/contacts/search", by_id) == []
    # the plain GET is not behind
    assert json_body(api.get(f"/contacts/{target}"))["name"] == "Fresh"
    ws.clock.advance(301)
    assert search_all(api, "/contacts/search", by_id) == [target]


def test_conversations_nested_field_and_tickets_search(emulator: EmulatorServer, api: httpx.Client) -> None:
    ws = emulator.workspace
    convs = [c for c in ws.iter("conversations") if c["source"] is not None]  # a real source can be null
    author_types = {c["source"]["author"]["type"] for c in convs}
    assert author_types == {"admin", "user"}
    for kind in sorted(author_types):
        got = search_all(
            api, "/conversations/search", {"field": "source.author.type", "operator": "=", "value": kind},
            key="conversations",
        )
        assert set(got) == {c["id"] for c in convs if c["source"]["author"]["type"] == kind}
    tickets = search_all(api, "/tickets/search", {"field": "created_at", "operator": ">", "value": 0}, key="tickets")
    assert sorted(tickets) == sorted(ws.ids("tickets"))
    assert len(tickets) == ws.count("tickets")


@pytest.mark.parametrize("path", ["/contacts/search", "/conversations/search"])
def test_search_rejects_non_json_body(api: httpx.Client, path: str) -> None:
    resp = api.post(path, content=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert error_code(resp) == "bad_request"


@pytest.mark.parametrize("model,key", [("contacts", "data"), ("conversations", "conversations")])
def test_date_and_id_searches_match_the_records_after_mutations(
    emulator: EmulatorServer, api: httpx.Client, model: str, key: str
) -> None:
    """Date/id-only queries are answered from the store's columns: same sets and order as the records."""
    ws = emulator.workspace
    emulator.configure(conversations_search_day_granular=False)
    first = ws.ids(model)[2]
    if model == "contacts":
        ws.update_contact(first, name="Changed")
        ws.delete_contact(ws.ids(model)[3])
        new = ws.create_contact(email="fresh@example.org")
    else:
        ws.add_conversation_part(first, "comment", "admin", body="<p>hi</p>")
        new = ws.create_conversation(ws.ids("contacts")[0], body="<p>new</p>")
    records = list(ws.iter(model))
    stamps = sorted(int(r["updated_at"]) for r in records)
    v = stamps[len(stamps) // 2]
    tz = ws.timezone
    lo = next_day_start(v, tz) if model == "contacts" else v + 1
    expected = sorted((r for r in records if int(r["updated_at"]) >= lo), key=lambda r: (int(r["updated_at"]), r["id"]))
    sort = {"field": "updated_at", "order": "ascending"}
    path = f"/{model}/search"
    got = search_all(api, path, {"field": "updated_at", "operator": ">", "value": v}, per_page=7, sort=sort, key=key)
    assert got == [r["id"] for r in expected] and first in got and new in got
    ids = [first, new, ws.ids(model)[0]]
    grp = {"operator": "AND", "value": [{"field": "id", "operator": "IN", "value": ids},
                                        {"field": "created_at", "operator": ">", "value": 0}]}
    assert sorted(search_all(api, path, grp, key=key)) == sorted(ids)
    # a page holds current records (materialised per page), with every field
    page = json_body(api.post(path, json={"query": {"field": "id", "operator": "=", "value": first}}))
    assert page[key] == [ws.get(model, first)]


def test_search_lag_result_is_reused_while_the_hidden_set_is_unchanged(
    emulator: EmulatorServer, api: httpx.Client
) -> None:
    """With a lag, pages of one walk share a result although the cutoff moves each second."""
    ws = emulator.workspace
    emulator.configure(search_lag_seconds=300)
    target = ws.ids("contacts")[5]
    ws.update_contact(target, name="Fresh")
    everyone = {"field": "created_at", "operator": ">", "value": 0}
    first = search_all(api, "/contacts/search", everyone, per_page=7)
    assert target not in first and len(first) == ws.count("contacts") - 1
    ws.clock.advance(100)  # still hidden: same result
    assert search_all(api, "/contacts/search", everyone, per_page=7) == first
    ws.clock.advance(201)
    assert target in search_all(api, "/contacts/search", everyone, per_page=7)

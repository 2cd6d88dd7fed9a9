"""Lists, pagination and detail shapes over real HTTP, checked against the workspace store."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from intercom_emulator.generator import admin_avatar_url
from intercom_emulator.testing import EmulatorServer, error_code, json_body


def walk_cursor_list(api: httpx.Client, path: str, key: str, per_page: int) -> tuple[list[str], list[int]]:
    """Follow pages.next.starting_after until it disappears; return ids and page sizes."""
    ids: list[str] = []
    sizes: list[int] = []
    params: dict[str, str | int] = {"per_page": per_page}
    for _ in range(1000):
        resp = api.get(path, params=params)
        assert resp.status_code == 200, resp.text
        page = json_body(resp)
        sizes.append(len(page[key]))
        ids.extend(str(r["id"]) for r in page[key])
        nxt = page["pages"].get("next")
        if nxt is None:
            return ids, sizes
        params = {"per_page": per_page, "starting_after": nxt["starting_after"]}
    raise AssertionError("list never ended")


@pytest.fixture
def big_emulator() -> Iterator[EmulatorServer]:
    """A workspace with >300 contacts (tiny profile scaled) for page-size checks."""
    with EmulatorServer(profile="tiny", seed=2, scale=9) as emu:
        yield emu


def test_get_contacts_walks_in_pages_of_150(big_emulator: EmulatorServer) -> None:
    ws = big_emulator.workspace
    total = ws.count("contacts")
    assert total > 300
    with big_emulator.client(timeout=30) as api:
        ids, sizes = walk_cursor_list(api, "/contacts", "data", per_page=500)
    assert len(ids) == len(set(ids)) == total
    assert set(ids) == set(ws.ids("contacts"))
    assert sizes[:-1] == [150] * (len(sizes) - 1)
    assert sizes[-1] == total - 150 * (len(sizes) - 1)


def test_get_conversations_cursor_list_is_complete_without_parts(emulator: EmulatorServer, api: httpx.Client) -> None:
    ws = emulator.workspace
    ids, sizes = walk_cursor_list(api, "/conversations", "conversations", per_page=7)
    assert sorted(ids) == sorted(ws.ids("conversations"))
    assert len(ids) == ws.count("conversations")
    first = json_body(api.get("/conversations", params={"per_page": 2}))
    assert first["type"] == "conversation.list"
    assert all("conversation_parts" not in c for c in first["conversations"])


def test_bad_cursor_is_400(api: httpx.Client) -> None:
    resp = api.get("/contacts", params={"starting_after": "not-a-cursor!!"})
    assert resp.status_code == 400
    assert error_code(resp) == "parameter_invalid"


def test_conversation_detail_returns_newest_500_parts_with_true_total(emulator: EmulatorServer, api: httpx.Client) -> None:
    ws = emulator.workspace
    long_id = next(cid for cid in ws.ids("conversations") if len(ws.conversation_parts(cid)) > 500)
    all_parts = ws.conversation_parts(long_id)
    conv = json_body(api.get(f"/conversations/{long_id}"))
    parts = conv["conversation_parts"]
    assert parts["type"] == "conversation_part.list"
    assert len(parts["conversation_parts"]) == 500
    assert parts["total_count"] == len(all_parts) > 500
    assert conv["statistics"]["count_conversation_parts"] == len(all_parts)
    assert [p["id"] for p in parts["conversation_parts"]] == [p["id"] for p in all_parts[-500:]]


def test_conversation_plaintext_strips_html(emulator: EmulatorServer, api: httpx.Client) -> None:
    ws = emulator.workspace
    cid = ws.ids("conversations")[0]
    ws.add_conversation_part(cid, part_type="comment", author_type="admin", body="<p>Hello <b>there</b> &amp; bye</p>")
    html_conv = json_body(api.get(f"/conversations/{cid}"))
    assert html_conv["conversation_parts"]["conversation_parts"][-1]["body"] == "<p>Hello <b>there</b> &amp; bye</p>"
    plain = json_body(api.get(f"/conversations/{cid}", params={"display_as": "plaintext"}))
    assert plain["conversation_parts"]["conversation_parts"][-1]["body"] == "Hello there & bye"
    assert "<" not in (plain["source"]["body"] or "")


def test_missing_records_are_404_with_intercom_codes(api: httpx.Client) -> None:
    resp = api.get("/contacts/ffffffffffffffffffffffff")
    assert resp.status_code == 404
    assert error_code(resp) == "not_found"
    resp = api.get("/companies/ffffffffffffffffffffffff")
    assert resp.status_code == 404
    assert error_code(resp) == "company_not_found"
    resp = api.get("/conversations/999999999")
    assert resp.status_code == 404
    assert error_code(resp) == "not_found"
    resp = api.get("/no/such/route")
    assert resp.status_code == 404
    assert error_code(resp) == "not_found"


def test_contact_subresources_return_full_lists(emulator: EmulatorServer, api: httpx.Client) -> None:
    ws = emulator.workspace
    for cid in ws.ids("contacts")[:10]:
        companies = json_body(api.get(f"/contacts/{cid}/companies"))
        assert [c["id"] for c in companies["data"]] == [c["id"] for c in ws.contact_companies(cid)]
        assert companies["total_count"] == len(ws.contact_companies(cid))
        tags = json_body(api.get(f"/contacts/{cid}/tags"))
        assert [t["id"] for t in tags["data"]] == [t["id"] for t in ws.contact_tags(cid)]
        segments = json_body(api.get(f"/contacts/{cid}/segments"))
        assert [s["id"] for s in segments["data"]] == [s["id"] for s in ws.contact_segments(cid)]


def test_small_lists_and_single_lookups(emulator: EmulatorServer, api: httpx.Client) -> None:
    ws = emulator.workspace
    me = json_body(api.get("/me"))
    assert me["type"] == "admin" and me["app"]["timezone"] == ws.timezone
    admins = json_body(api.get("/admins"))
    assert admins["type"] == "admin.list" and len(admins["admins"]) == ws.count("admins")
    one = ws.ids("admins")[0]
    assert json_body(api.get(f"/admins/{one}"))["id"] == one
    teams = json_body(api.get("/teams"))
    assert teams["type"] == "team.list" and len(teams["teams"]) == ws.count("teams")
    tags = json_body(api.get("/tags"))
    assert tags["type"] == "list" and len(tags["data"]) == ws.count("tags")
    segs = json_body(api.get("/segments"))
    assert segs["type"] == "segment.list" and len(segs["segments"]) == ws.count("segments")
    assert all("count" not in s for s in segs["segments"])
    counted = json_body(api.get("/segments", params={"include_count": "true"}))
    expected = {s["id"]: 0 for s in counted["segments"]}
    for cid in ws.ids("contacts"):
        for s in ws.contact_segments(cid):
            expected[s["id"]] += 1
    assert {s["id"]: s["count"] for s in counted["segments"]} == expected
    for model in ("contact", "company", "conversation"):
        attrs = json_body(api.get("/data_attributes", params={"model": model}))
        assert len(attrs["data"]) == len(ws.data_attributes(model))
        assert {a["model"] for a in attrs["data"]} == {model}
    assert api.get("/data_attributes", params={"model": "widget"}).status_code == 400
    company = ws.get("companies", ws.ids("companies")[0])
    by_cid = json_body(api.get("/companies", params={"company_id": company["company_id"]}))
    assert by_cid["id"] == company["id"]
    by_name = json_body(api.get("/companies", params={"name": company["name"]}))
    assert by_name["id"] == ws.company_by_name(company["name"])["id"]
    assert json_body(api.get(f"/companies/{company['id']}"))["id"] == company["id"]
    segs = json_body(api.get(f"/companies/{company['id']}/segments"))
    assert [s["id"] for s in segs["data"]] == [s["id"] for s in ws.company_segments(company["id"])]


def test_company_page_lists_skip_companies_without_users_and_stop_at_cap(
    emulator: EmulatorServer, api: httpx.Client
) -> None:
    ws = emulator.workspace
    with_users = {c["id"] for c in ws.iter("companies") if ws.company_contact_count(c["id"]) > 0}
    without = {c["id"] for c in ws.iter("companies")} - with_users
    assert with_users, "tiny workspace should have companies with users"

    def walk(method: str, path: str) -> list[str]:
        ids: list[str] = []
        page = 1
        while True:
            resp = api.request(method, path, params={"page": page, "per_page": 4})
            assert resp.status_code == 200, resp.text
            data = json_body(resp)
            ids.extend(c["id"] for c in data["data"])
            if page >= data["pages"]["total_pages"]:
                assert data["pages"]["next"] is None
                return ids
            assert data["pages"]["next"].endswith(f"page={page + 1}")
            page += 1

    for method, path in (("GET", "/companies"), ("POST", "/companies/list")):
        got = walk(method, path)
        assert sorted(got) == sorted(with_users)
        assert not set(got) & without

    emulator.configure(company_list_cap=3)  # stands in for Intercom's 10,000 (too big for tiny)
    capped = walk("POST", "/companies/list")
    assert len(capped) == 3
    data = json_body(api.post("/companies/list", params={"page": 2, "per_page": 4}))
    assert data["data"] == []
    assert data["total_count"] == len(with_users)


def test_companies_scroll_rules(emulator: EmulatorServer, api: httpx.Client) -> None:
    ws = emulator.workspace
    emulator.configure(scroll_page_size=4)
    first = json_body(api.get("/companies/scroll"))
    param = first["scroll_param"]
    seen = [c["id"] for c in first["data"]]
    assert len(seen) == 4
    # a second scroll while one is open
    resp = api.get("/companies/scroll")
    assert resp.status_code == 400
    assert error_code(resp) == "scroll_exists"
    while True:
        page = json_body(api.get("/companies/scroll", params={"scroll_param": param}))
        assert page["scroll_param"] == param  # the same param on every page
        if not page["data"]:
            break
        seen.extend(c["id"] for c in page["data"])
    assert sorted(seen) == sorted(ws.ids("companies"))  # scroll includes companies without users
    assert len(seen) == ws.count("companies")
    # the finished scroll is gone: a new one may start
    assert api.get("/companies/scroll").status_code == 200


def test_companies_scroll_expires_after_idle_timeout(emulator: EmulatorServer, api: httpx.Client) -> None:
    # a second of idle time: a busy machine's stall between the first two calls must not expire it
    emulator.configure(scroll_idle_timeout=1.0, scroll_page_size=2)
    param = json_body(api.get("/companies/scroll"))["scroll_param"]
    assert api.get("/companies/scroll", params={"scroll_param": param}).status_code == 200
    time.sleep(1.3)
    resp = api.get("/companies/scroll", params={"scroll_param": param})
    assert resp.status_code == 404
    assert error_code(resp) == "scroll_parameter_not_found"
    assert api.get("/companies/scroll").status_code == 200  # expired scroll frees the slot


def test_activity_logs_require_window_and_follow_next_urls(emulator: EmulatorServer, api: httpx.Client) -> None:
    ws = emulator.workspace
    resp = api.get("/admins/activity_logs")
    assert resp.status_code == 400
    assert error_code(resp) == "parameter_invalid"
    logs = list(ws.iter("activity_logs"))
    times = sorted(int(r["created_at"]) for r in logs)
    after, before = times[len(times) // 4], times[3 * len(times) // 4]
    expected = {r["id"] for r in logs if after <= int(r["created_at"]) <= before}
    got: list[str] = []
    url: str | None = f"/admins/activity_logs?created_at_after={after}&created_at_before={before}"
    pages = 0
    while url:
        data = json_body(api.get(url))
        assert data["type"] == "activity_log.list"
        got.extend(r["id"] for r in data["activity_logs"])
        url = data["pages"]["next"]
        if url:
            assert url.startswith(emulator.base_url + "/admins/activity_logs?")
        pages += 1
    assert sorted(got) == sorted(expected)
    assert len(got) == len(expected)
    assert pages == -(-len(expected) // 20)


def test_next_urls_use_the_request_host_port_and_keep_filters(emulator: EmulatorServer, api: httpx.Client) -> None:
    """pages.next (company page lists, activity logs) is absolute on the host:port the request came to."""
    ws = emulator.workspace
    port = emulator.base_url.rsplit(":", 1)[1]
    data = json_body(api.post("/companies/list", params={"per_page": 2, "order": "asc"}))
    nxt = httpx.URL(data["pages"]["next"])
    assert (nxt.host, str(nxt.port), nxt.path) == ("127.0.0.1", port, "/companies/list")
    assert dict(nxt.params) == {"order": "asc", "per_page": "2", "page": "2"}
    # another Host header (a proxy, a container port mapping): the URL follows it
    data = json_body(api.get("/companies", params={"per_page": 2}, headers={"Host": "intercom.local:8123"}))
    assert data["pages"]["next"].startswith("http://intercom.local:8123/companies?")
    first = min(int(r["created_at"]) for r in ws.iter("activity_logs"))
    data = json_body(api.get("/admins/activity_logs", params={"created_at_after": first}))
    assert data["pages"]["next"].startswith(f"http://127.0.0.1:{port}/admins/activity_logs?")


def test_companies_list_order_is_lenient(emulator: EmulatorServer, api: httpx.Client) -> None:
    """`order` is "asc or desc, defaults to desc" with no documented 400: unknown/empty values mean desc."""
    def ids(params: dict[str, str]) -> list[str]:
        resp = api.post("/companies/list", params={"per_page": 60, **params})
        assert resp.status_code == 200, resp.text
        return [c["id"] for c in json_body(resp)["data"]]

    desc = ids({})
    assert ids({"order": "desc"}) == ids({"order": "bogus"}) == ids({"order": ""}) == desc
    assert ids({"order": "asc"}) == ids({"order": "ASC"}) == desc[::-1]


def test_admins_avatar_only_on_request_and_clean_small_lists(emulator: EmulatorServer, api: httpx.Client) -> None:
    """GET /admins: avatar only with display_avatar=true; tags without applied_*; 404 message as the spec."""
    ws = emulator.workspace
    plain = json_body(api.get("/admins"))["admins"]
    assert plain and all("avatar" not in a for a in plain)
    with_avatar = json_body(api.get("/admins", params={"display_avatar": "true"}))["admins"]
    # with display_avatar=true the object /me sends; the store's admin records carry no avatar
    assert [a.get("avatar") for a in with_avatar] == [
        {"type": "avatar", "image_url": admin_avatar_url(a["id"])} for a in ws.iter("admins")]
    assert all("avatar" not in a for a in ws.iter("admins"))
    tags = json_body(api.get("/tags"))["data"]
    assert tags and all(set(t) == {"type", "id", "name"} for t in tags)
    resp = api.get("/admins/999999999")
    assert resp.status_code == 404 and json_body(resp)["errors"] == [
        {"code": "admin_not_found", "message": "Admin not found"}]
    attrs = json_body(api.get("/data_attributes"))["data"]
    assert all(("admin_id" in a) == a["custom"] for a in attrs)


def test_segment_counts_follow_contact_removals(emulator: EmulatorServer, api: httpx.Client) -> None:
    """include_count counts live contacts, kept by the store (no per-request scan of contacts)."""
    ws = emulator.workspace

    def counts() -> dict[str, int]:
        segs = json_body(api.get("/segments", params={"include_count": "true"}))["segments"]
        return {s["id"]: s["count"] for s in segs}

    member = next(c for c in ws.ids("contacts") if ws.contact_segments(c))
    segs = [s["id"] for s in ws.contact_segments(member)]
    before = counts()
    ws.delete_contact(member)
    after = counts()
    assert after == {k: v - (k in segs) for k, v in before.items()}
    expected = {k: 0 for k in after}
    for cid in ws.ids("contacts"):
        for s in ws.contact_segments(cid):
            expected[s["id"]] += 1
    assert after == expected

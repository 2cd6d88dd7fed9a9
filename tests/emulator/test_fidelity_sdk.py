"""Fidelity of the emulator against Intercom's official Python SDK (python-intercom 5.0.1).

The SDK is an independent client: its pagers must walk the emulator's lists exactly, its typed
errors must come back with the right status codes, and EVERY raw body the emulator sends must
validate against the SDK's Pydantic models (explicit `model_validate`: the SDK itself parses
leniently). Search is paged by hand (the SDK's search pagers resend the same body and never
advance), and those bodies are validated too. Known SDK-model mismatches: `fidelity_baseline.py`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pydantic
import pytest

try:
    from tests.emulator.fidelity_baseline import sdk_waived
except ImportError:  # rootdir-relative import mode without packages
    from fidelity_baseline import sdk_waived  # type: ignore[no-redef]

intercom = pytest.importorskip("intercom")
testing = pytest.importorskip("intercom_emulator.testing")

from intercom import Intercom  # noqa: E402
from intercom import types as T  # noqa: E402
from intercom.core.api_error import ApiError  # noqa: E402
from intercom.errors import NotFoundError, UnauthorizedError  # noqa: E402

TOKEN = "emulator-token"
VERSION_HEADERS = {"Intercom-Version": "2.15"}

# (method, path regex) -> the SDK model of a 2xx body.
MODELS: list[tuple[str, str, type[pydantic.BaseModel]]] = [
    ("GET", r"/me", T.AdminWithApp),
    ("GET", r"/contacts", T.ContactList),
    ("POST", r"/contacts/search", T.ContactList),
    ("GET", r"/contacts/[^/]+", intercom.ContactsFindResponse),
    ("GET", r"/contacts/[^/]+/companies", T.ContactAttachedCompanies),
    ("GET", r"/contacts/[^/]+/tags", T.TagList),
    ("GET", r"/contacts/[^/]+/segments", T.ContactSegments),
    ("GET", r"/companies", T.CompanyList),
    ("POST", r"/companies/list", T.CompanyList),
    ("GET", r"/companies/scroll", T.CompanyScroll),
    ("GET", r"/companies/[^/]+", intercom.Company),
    ("GET", r"/companies/[^/]+/segments", T.CompanyAttachedSegments),
    ("GET", r"/conversations", T.ConversationList),
    ("POST", r"/conversations/search", T.ConversationList),
    ("GET", r"/conversations/[^/]+", intercom.Conversation),
    ("GET", r"/admins", T.AdminList),
    ("GET", r"/admins/activity_logs", T.ActivityLogList),
    ("GET", r"/admins/[^/]+", intercom.Admin),
    ("GET", r"/tags", T.TagList),
    ("GET", r"/teams", T.TeamList),
    ("GET", r"/segments", T.SegmentList),
    ("GET", r"/data_attributes", T.DataAttributeList),
    ("POST", r"/tickets/search", T.TicketList),
]


def model_for(method: str, path: str, status: int) -> type[pydantic.BaseModel]:
    """The SDK model for a captured response (errors: `Error`)."""
    if status >= 400:
        return T.Error
    for m, pattern, model in MODELS:
        if m == method and re.fullmatch(pattern, path):
            return model
    raise AssertionError(f"no SDK model mapped for {method} {path}")


@dataclass
class Captured:
    """One raw response seen on the wire."""

    method: str
    path: str
    status: int
    body: Any


def sdk_errors(captured: list[Captured]) -> list[str]:
    """Pydantic errors of every captured body against its SDK model, minus the baseline."""
    out: list[str] = []
    union_tag = re.compile(r"/(str|int|float|bool|datetime|date|[A-Z]\w+)$")
    for cap in captured:
        model = model_for(cap.method, cap.path, cap.status)
        try:
            model.model_validate(cap.body)
        except pydantic.ValidationError as exc:
            for err in exc.errors():
                loc = union_tag.sub("", "/".join(str(p) for p in err["loc"]))  # one line per union
                if sdk_waived(model.__name__, loc, err["type"], err.get("input")):
                    continue
                line = f"{cap.method} {cap.path} [{cap.status}] {model.__name__}: /{loc}: {str(err.get('input'))[:80]!r}"
                if line not in out:
                    out.append(line)
    return out


class Recorder:
    """An httpx response hook that keeps every raw JSON body."""

    def __init__(self) -> None:
        self.captured: list[Captured] = []

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        if response.request.url.path.startswith("/_emulator"):
            return
        try:
            body = response.json()
        except ValueError:
            body = response.text
        self.captured.append(Captured(response.request.method, response.request.url.path, response.status_code, body))

    def paths(self, method: str, pattern: str) -> list[Captured]:
        """Captured responses whose method and path match."""
        return [c for c in self.captured if c.method == method and re.fullmatch(pattern, c.path)]


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    """One tiny emulator (seed 1, faults off) for this module."""
    with testing.EmulatorServer(profile="tiny", seed=1) as srv:
        yield srv


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    """Every raw response of this module's SDK and raw calls."""
    return Recorder()


@pytest.fixture(scope="module")
def raw(server: Any, recorder: Recorder) -> Iterator[httpx.Client]:
    """A raw authenticated client that records into the same recorder."""
    with httpx.Client(base_url=server.base_url, timeout=30, event_hooks={"response": [recorder]},
                      headers={"Authorization": f"Bearer {TOKEN}", **VERSION_HEADERS}) as client:
        yield client


def make_sdk(server: Any, recorder: Recorder, token: str = TOKEN) -> Intercom:
    """The official SDK pointed at the emulator, recording raw bodies."""
    http = httpx.Client(timeout=30, event_hooks={"response": [recorder]})
    return Intercom(base_url=server.base_url, token=token, headers=dict(VERSION_HEADERS), httpx_client=http)


@pytest.fixture(scope="module")
def sdk(server: Any, recorder: Recorder) -> Intercom:
    """The SDK client for this module."""
    return make_sdk(server, recorder)


# --------------------------------------------------------------------------------------------
# Pagers
# --------------------------------------------------------------------------------------------


def test_contacts_pager_walks_all_contacts(sdk: Intercom, server: Any, recorder: Recorder) -> None:
    """`contacts.list` follows `pages.next.starting_after` over every contact, in order, once."""
    before = len(recorder.paths("GET", r"/contacts"))
    ids = [c.id for c in sdk.contacts.list(per_page=7)]
    assert ids == server.workspace.ids("contacts")
    pages = len(recorder.paths("GET", r"/contacts")) - before
    assert pages == -(-len(ids) // 7)


def test_conversations_pager_walks_all_conversations(sdk: Intercom, server: Any) -> None:
    """`conversations.list` walks every conversation exactly once."""
    ids = [c.id for c in sdk.conversations.list(per_page=4)]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(server.workspace.ids("conversations"))


def test_companies_scroll_pager_walks_all_companies(sdk: Intercom, server: Any, recorder: Recorder) -> None:
    """`companies.scroll` walks every company and stops at the empty page."""
    ids = [c.id for c in sdk.companies.scroll()]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(server.workspace.ids("companies"))
    last = recorder.paths("GET", r"/companies/scroll")[-1]
    assert last.status == 200 and last.body["data"] == []


def test_companies_list_pager_walks_companies_with_users(sdk: Intercom, server: Any) -> None:
    """`companies.list` (POST /companies/list, page numbers) returns companies that have users."""
    ws = server.workspace
    ids = [c.id for c in sdk.companies.list(per_page=4)]
    expected = [cid for cid in ws.ids("companies") if ws.company_contact_count(cid) > 0]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(expected)


def test_conversation_find_returns_newest_parts(sdk: Intercom, server: Any) -> None:
    """`conversations.find` on the longest conversation: min(500, total) parts, `total_count` = total."""
    ws = server.workspace
    cid = max(ws.ids("conversations"), key=lambda i: len(ws.conversation_parts(i)))
    parts = ws.conversation_parts(cid)
    assert len(parts) > 500  # the tiny profile has one long conversation
    conv = sdk.conversations.find(conversation_id=cid)
    assert conv.id == cid
    assert conv.conversation_parts is not None
    got = conv.conversation_parts.conversation_parts or []
    assert len(got) == min(500, len(parts))
    assert conv.conversation_parts.total_count == len(parts)
    assert [str(p.id) for p in got] == [str(p["id"]) for p in parts[-500:]]


def test_other_sdk_reads(sdk: Intercom, server: Any) -> None:
    """Single-page reads through the SDK return exactly the workspace's records."""
    ws = server.workspace
    me = sdk.admins.identify()
    assert me is not None and me.app is not None
    assert sorted(a.id for a in sdk.admins.list().admins or []) == sorted(ws.ids("admins"))
    first_admin = ws.ids("admins")[0]
    admin = sdk.admins.find(admin_id=int(first_admin))
    assert admin is not None and admin.id == first_admin
    assert sorted(t.id for t in sdk.tags.list().data or []) == sorted(ws.ids("tags"))
    assert sorted(t.id for t in sdk.teams.list().teams or []) == sorted(ws.ids("teams"))
    assert sorted(s.id for s in sdk.segments.list().segments or []) == sorted(ws.ids("segments"))
    for model in ("contact", "company", "conversation"):
        got = sdk.data_attributes.list(model=model).data or []
        assert len(got) == len(ws.data_attributes(model))
    contact = ws.ids("contacts")[0]
    found = sdk.contacts.find(contact_id=contact)
    assert found.id == contact
    assert sorted(t.id for t in sdk.contacts.list_attached_tags(contact_id=contact).data or []) == sorted(
        str(t["id"]) for t in ws.contact_tags(contact)
    )
    # The SDK's ContactAttachedCompanies reads `companies`; Intercom's example (and the emulator) send
    # `data`, so the SDK pager yields nothing (an SDK-model mismatch): check the raw body instead.
    assert [c.id for c in sdk.contacts.list_attached_companies(contact_id=contact)] == []
    raw_companies = httpx.get(f"{server.base_url}/contacts/{contact}/companies", timeout=30,
                              headers={"Authorization": f"Bearer {TOKEN}", **VERSION_HEADERS})
    assert sorted(c["id"] for c in raw_companies.json()["data"]) == sorted(
        str(c["id"]) for c in ws.contact_companies(contact)
    )
    segs = sdk.contacts.list_attached_segments(contact_id=contact).data or []
    assert sorted(s.id for s in segs) == sorted(str(s["id"]) for s in ws.contact_segments(contact))
    company = ws.ids("companies")[0]
    assert sdk.companies.find(company_id=company).id == company
    csegs = sdk.companies.list_attached_segments(company_id=company).data or []
    assert sorted(s.id for s in csegs) == sorted(str(s["id"]) for s in ws.company_segments(company))
    stamps = [int(a["created_at"]) for a in ws.iter("activity_logs")]
    logs = sdk.admins.list_all_activity_logs(created_at_after=str(min(stamps) - 1))
    assert logs.activity_logs  # first page only: the SDK has no pager here


# --------------------------------------------------------------------------------------------
# Search, paged by hand
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "key", "model"),
    [("/contacts/search", "data", "contacts"), ("/conversations/search", "conversations", "conversations"),
     ("/tickets/search", "tickets", "tickets")],
)
def test_search_paged_by_hand(raw: httpx.Client, server: Any, path: str, key: str, model: str) -> None:
    """`pagination.starting_after` in the body walks every record once; bodies are validated later."""
    query = {"operator": "AND", "value": [{"field": "created_at", "operator": ">", "value": "86400"}]}
    pagination: dict[str, Any] = {"per_page": 5}
    ids: list[str] = []
    for _ in range(200):
        resp = raw.post(path, json={"query": query, "pagination": pagination})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        ids += [str(r["id"]) for r in body[key]]
        nxt = (body.get("pages") or {}).get("next")
        if not nxt:
            break
        pagination = {"per_page": 5, "starting_after": nxt["starting_after"]}
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(server.workspace.ids(model))


def test_raw_reads_for_model_validation(raw: httpx.Client, server: Any) -> None:
    """Every record endpoint answers 200 for every real id."""
    raw_reads(raw, server.workspace)


def raw_reads(raw: httpx.Client, ws: Any) -> None:
    """Fetch the per-record endpoints for every id (their bodies get validated with the SDK models)."""
    for cid in ws.ids("contacts"):
        for suffix in ("", "/companies", "/tags", "/segments"):
            assert raw.get(f"/contacts/{cid}{suffix}").status_code == 200
    for cid in ws.ids("companies"):
        assert raw.get(f"/companies/{cid}").status_code == 200
        assert raw.get(f"/companies/{cid}/segments").status_code == 200
    for cid in ws.ids("conversations"):
        assert raw.get(f"/conversations/{cid}").status_code == 200
    for aid in ws.ids("admins"):
        assert raw.get(f"/admins/{aid}").status_code == 200
    assert raw.get("/companies", params={"per_page": 50}).status_code == 200
    assert raw.get("/segments", params={"include_count": "true"}).status_code == 200
    assert raw.get("/data_attributes").status_code == 200


# --------------------------------------------------------------------------------------------
# Typed errors
# --------------------------------------------------------------------------------------------


def test_bad_token_raises_unauthorized(server: Any, recorder: Recorder) -> None:
    """401 with a bad token, as the SDK's `UnauthorizedError` with an `unauthorized` error body."""
    bad = make_sdk(server, recorder, token="wrong-token")
    with pytest.raises(UnauthorizedError) as info:
        bad.contacts.list()
    assert info.value.status_code == 401
    assert [e.code for e in info.value.body.errors] == ["unauthorized"]
    with pytest.raises(UnauthorizedError):
        bad.admins.list()


def test_missing_contact_is_404(sdk: Intercom) -> None:
    """404 for a missing contact: `NotFoundError` where the SDK maps it, `ApiError(404)` otherwise."""
    missing = "0" * 24
    with pytest.raises(NotFoundError) as info:
        sdk.contacts.list_attached_tags(contact_id=missing)
    assert info.value.status_code == 404
    assert info.value.body["errors"][0]["code"] == "not_found"
    with pytest.raises(ApiError) as info2:
        sdk.contacts.find(contact_id=missing)  # the SDK maps only 401 here
    assert info2.value.status_code == 404
    assert info2.value.body["errors"][0]["code"] == "not_found"
    with pytest.raises(NotFoundError):
        sdk.conversations.find(conversation_id="999999999")


def test_rate_limit_raises_429(recorder: Recorder) -> None:
    """With a tiny quota the SDK surfaces 429 (`rate_limit_exceeded`) with X-RateLimit headers."""
    with testing.EmulatorServer(profile="tiny", seed=1, rate_limit_per_minute=12) as srv:
        sdk = make_sdk(srv, recorder)
        statuses = []
        for _ in range(4):  # 12/min = 2 per 10-second window
            try:
                sdk.tags.list()
                statuses.append(200)
            except ApiError as exc:
                statuses.append(exc.status_code)
                assert exc.body["errors"][0]["code"] == "rate_limit_exceeded"
                assert exc.headers is not None
                assert int(exc.headers["x-ratelimit-limit"]) > 0
                assert exc.headers["x-ratelimit-remaining"] == "0"
                assert int(exc.headers["x-ratelimit-reset"]) >= srv.workspace.clock.now() - 1
        assert statuses == [200, 200, 429, 429]


# --------------------------------------------------------------------------------------------
# Every captured body validates against the SDK models (self-contained: safe under xdist)
# --------------------------------------------------------------------------------------------


def exercise_everything(sdk: Intercom, raw: httpx.Client, bad: Intercom, ws: Any) -> None:
    """Drive every read endpoint through the SDK (pagers, finds, errors) and search by hand."""
    list(sdk.contacts.list(per_page=7))
    list(sdk.conversations.list(per_page=4))
    list(sdk.companies.scroll())
    list(sdk.companies.list(per_page=4))
    sdk.admins.identify()
    sdk.admins.list()
    sdk.tags.list()
    sdk.teams.list()
    sdk.segments.list()
    for model in ("contact", "company", "conversation"):
        sdk.data_attributes.list(model=model)
    stamps = [int(a["created_at"]) for a in ws.iter("activity_logs")]
    sdk.admins.list_all_activity_logs(created_at_after=str(min(stamps) - 1))
    for cid in ws.ids("conversations"):
        sdk.conversations.find(conversation_id=cid)
    for path, key in (("/contacts/search", "data"), ("/conversations/search", "conversations"),
                      ("/tickets/search", "tickets")):
        pagination: dict[str, Any] = {"per_page": 5}
        query = {"field": "created_at", "operator": ">", "value": 86_400}
        for _ in range(200):
            body = raw.post(path, json={"query": query, "pagination": pagination}).json()
            nxt = (body.get("pages") or {}).get("next")
            if not nxt or not body.get(key):
                break
            pagination = {"per_page": 5, "starting_after": nxt["starting_after"]}
    raw_reads(raw, ws)
    for call in (lambda: bad.contacts.list(), lambda: sdk.contacts.list_attached_tags(contact_id="0" * 24),
                 lambda: sdk.contacts.find(contact_id="0" * 24),
                 lambda: sdk.conversations.find(conversation_id="999999999"),
                 lambda: sdk.companies.find(company_id="0" * 24)):
        with pytest.raises(ApiError):
            call()


def test_every_captured_body_validates_with_sdk_models(server: Any) -> None:
    """All raw bodies (SDK pagers, finds, errors, hand-paged search, raw reads) validate with the SDK models."""
    recorder = Recorder()
    with httpx.Client(base_url=server.base_url, timeout=30, event_hooks={"response": [recorder]},
                      headers={"Authorization": f"Bearer {TOKEN}", **VERSION_HEADERS}) as raw:
        exercise_everything(make_sdk(server, recorder), raw, make_sdk(server, recorder, "wrong-token"),
                            server.workspace)
    seen = {model_for(c.method, c.path, c.status).__name__ for c in recorder.captured}
    expected_models = {
        "ContactList", "ConversationList", "CompanyScroll", "CompanyList", "Conversation", "AdminWithApp",
        "AdminList", "Admin", "TagList", "TeamList", "SegmentList", "DataAttributeList", "ContactsFindResponse",
        "ContactAttachedCompanies", "ContactSegments", "Company", "CompanyAttachedSegments", "ActivityLogList",
        "TicketList", "Error",
    }
    assert expected_models <= seen, sorted(expected_models - seen)
    assert len(recorder.captured) > 300
    errors = sdk_errors(recorder.captured)
    assert errors == [], "\n".join(errors[:40]) + f"\n... {len(errors)} errors in total"

"""Auth, scopes, API version validation and rate limits over real HTTP."""

from __future__ import annotations

import re
import time

import httpx
import yaml

from intercom_emulator.state import ACCEPTED_VERSIONS, DEFAULT_VERSION, SPEC_VERSIONS
from intercom_emulator.testing import EmulatorServer, error_code, json_body
from tests.openapi_files import require_openapi


def _spec_version_enum(version: str) -> list[str]:
    """The `components.schemas.intercom_version` enum of one OpenAPI file (that block only)."""
    text = require_openapi(version).read_text()
    start = text.index("\n    intercom_version:\n") + 1
    end = re.compile(r"^    \S", re.M).search(text, start + 5)
    block = yaml.safe_load(text[start : end.start() if end else len(text)])
    return [str(v) for v in block["intercom_version"]["enum"]]


def test_hard_coded_versions_match_the_newest_spec() -> None:
    """The emulator's built-in list is the 2.16 enum (+ Preview/Unstable), a superset of 2.13's and 2.15's."""
    newest = _spec_version_enum("2.16")
    assert list(SPEC_VERSIONS) == newest
    assert frozenset([*newest, "Preview", "Unstable"]) == ACCEPTED_VERSIONS
    for older in ("2.13", "2.15"):
        assert set(_spec_version_enum(older)) <= ACCEPTED_VERSIONS, older
    assert DEFAULT_VERSION == "2.15" and DEFAULT_VERSION in ACCEPTED_VERSIONS


def test_missing_or_bad_token_is_401_unauthorized(emulator: EmulatorServer) -> None:
    resp = httpx.get(f"{emulator.base_url}/me")
    assert resp.status_code == 401
    assert error_code(resp) == "unauthorized"
    resp = httpx.get(f"{emulator.base_url}/me", headers={"Authorization": "Bearer wrong"})
    assert resp.status_code == 401
    assert error_code(resp) == "unauthorized"
    assert "X-RateLimit-Limit" not in resp.headers


def test_token_without_scope_gets_token_unauthorized() -> None:
    tokens = ["convs-only:read_conversations", "full"]
    with EmulatorServer(profile="tiny", seed=1, tokens=tokens) as emu:
        limited = {"Authorization": "Bearer convs-only"}
        ok = httpx.get(f"{emu.base_url}/conversations", headers=limited)
        assert ok.status_code == 200
        # GET /me needs no scope: any valid token may identify itself
        assert httpx.get(f"{emu.base_url}/me", headers=limited).status_code == 200
        for path in ("/contacts", "/companies/scroll", "/tags", "/admins", "/data_attributes", "/segments"):
            resp = httpx.get(f"{emu.base_url}{path}", headers=limited)
            assert resp.status_code == 401, path
            assert error_code(resp) == "token_unauthorized", path
        resp = httpx.post(f"{emu.base_url}/tickets/search", headers=limited, json={"query": {}})
        assert error_code(resp) == "token_unauthorized"
        full = httpx.get(f"{emu.base_url}/contacts", headers={"Authorization": "Bearer full"})
        assert full.status_code == 200
        # the default token is not accepted once tokens are configured
        assert httpx.get(f"{emu.base_url}/me", headers={"Authorization": "Bearer emulator-token"}).status_code == 401


def test_intercom_version_header_is_validated(emulator: EmulatorServer) -> None:
    auth = {"Authorization": f"Bearer {emulator.token}"}
    for good in ("2.15", "2.16", "2.14", "2.13", "1.0", "Preview", "Unstable"):
        resp = httpx.get(f"{emulator.base_url}/me", headers={**auth, "Intercom-Version": good})
        assert resp.status_code == 200, good
    assert httpx.get(f"{emulator.base_url}/me", headers=auth).status_code == 200  # default 2.15
    for bad in ("2.1.0", "3.0", "latest", "2.150", "2.17"):
        resp = httpx.get(f"{emulator.base_url}/me", headers={**auth, "Intercom-Version": bad})
        assert resp.status_code == 400, bad
        assert error_code(resp) == "intercom_version_invalid"
        assert "X-RateLimit-Remaining" in resp.headers


def test_rate_limit_headers_on_every_response_and_429_beyond_quota() -> None:
    # 60/min -> 10 calls per 10-second window
    with EmulatorServer(profile="tiny", seed=1, rate_limit_per_minute=60) as emu, emu.client() as api:
        started = time.time()
        remaining = []
        for _ in range(10):
            resp = api.get("/tags")
            assert resp.status_code == 200
            assert resp.headers["X-RateLimit-Limit"] == "10"
            remaining.append(int(resp.headers["X-RateLimit-Remaining"]))
            reset = int(resp.headers["X-RateLimit-Reset"])
            assert started - 1 <= reset <= started + 11
        assert remaining == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
        resp = api.get("/tags")
        assert resp.status_code == 429
        assert error_code(resp) == "rate_limit_exceeded"
        assert resp.headers["X-RateLimit-Remaining"] == "0"
        # error responses of authenticated calls carry the headers too
        emu.configure(rate_limit_per_minute=600)
        resp = api.get("/contacts/ffffffffffffffffffffffff")
        assert resp.status_code == 404
        assert resp.headers["X-RateLimit-Limit"] == "100"
        assert emu.log.count("GET /tags", 429) == 1


def test_workspace_quota_is_shared_with_other_apps() -> None:
    knobs = {
        "tokens": ["app-a", "app-b"],
        "rate_limit_per_minute": 600,  # 100 per window per app
        "workspace_rate_limit_per_minute": 120,  # 20 per window for the whole workspace
        "other_apps_per_minute": 60,  # another app already burns 10 per window
    }
    with EmulatorServer(profile="tiny", seed=1, **knobs) as emu:
        a = {"Authorization": "Bearer app-a"}
        b = {"Authorization": "Bearer app-b"}
        statuses = [httpx.get(f"{emu.base_url}/tags", headers=a).status_code for _ in range(6)]
        statuses += [httpx.get(f"{emu.base_url}/tags", headers=b).status_code for _ in range(6)]
        assert statuses.count(200) == 10
        assert statuses[-2:] == [429, 429]


def test_request_log_counts_templates_and_statuses(emulator: EmulatorServer, api: httpx.Client) -> None:
    ws = emulator.workspace
    emulator.reset_log()
    for cid in ws.ids("conversations")[:4]:
        assert api.get(f"/conversations/{cid}").status_code == 200
    api.post("/contacts/search", json={"query": {"field": "role", "operator": "=", "value": "user"}})
    api.get("/contacts/ffffffffffffffffffffffff")
    assert emulator.request_log == {
        "GET /conversations/{id}": 4,
        "POST /contacts/search": 1,
        "GET /contacts/{id}": 1,
    }
    assert emulator.log.statuses() == {200: 5, 404: 1}
    snap = json_body(httpx.get(f"{emulator.base_url}/_emulator/requests"))
    assert snap["endpoints"]["GET /conversations/{id}"] == 4
    assert snap["by_endpoint_status"]["GET /contacts/{id}"] == {"404": 1}
    httpx.post(f"{emulator.base_url}/_emulator/requests/reset")
    assert emulator.request_log == {}

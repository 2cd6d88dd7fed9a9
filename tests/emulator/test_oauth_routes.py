"""The emulator's OAuth install routes over real HTTP: the authorize page, approve/deny redirects and
the token endpoint (single-use codes that expire on the virtual clock), without a bearer token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from intercom_emulator.testing import EmulatorServer, error_code

REDIRECT = "https://app.example.com/intercom/callback?tenant=7"


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(profile="tiny", seed=2, oauth_client_id="cid", oauth_client_secret="csecret") as server:
        yield server


def _decide(emu: EmulatorServer, decision: str, state: str = "s1") -> dict[str, list[str]]:
    page = httpx.get(f"{emu.base_url}/oauth", params={"client_id": "cid", "state": state, "redirect_uri": REDIRECT})
    assert page.status_code == 200 and "id='approve'" in page.text and "id='deny'" in page.text
    workspace = re.search(r"<option value='([^']+)'", page.text)
    assert workspace is not None and workspace.group(1) == emu.workspace.app["id_code"]
    answer = httpx.post(
        f"{emu.base_url}/oauth/decide",
        data={"client_id": "cid", "state": state, "redirect_uri": REDIRECT, "workspace": workspace.group(1),
              "decision": decision},
    )
    assert answer.status_code == 302
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT.split("?")[0]
    return parse_qs(location.query)


def test_approve_redirects_with_code_and_state_and_the_code_buys_a_working_token(emu):
    query = _decide(emu, "approve")
    assert query["state"] == ["s1"] and query["tenant"] == ["7"] and query["code"]
    answer = httpx.post(
        f"{emu.base_url}/auth/eagle/token",
        params={"code": query["code"][0], "client_id": "cid", "client_secret": "csecret"},
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["token"] == body["access_token"] and body["token_type"] == "Bearer"
    me = httpx.get(f"{emu.base_url}/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200 and me.json()["app"]["id_code"] == emu.workspace.app["id_code"]


def test_deny_redirects_with_access_denied_and_state(emu):
    query = _decide(emu, "deny")
    assert query["error"] == ["access_denied"] and query["state"] == ["s1"] and "code" not in query


def test_codes_are_single_use_and_expire_on_the_virtual_clock(emu):
    secret = {"client_id": "cid", "client_secret": "csecret"}
    used = _decide(emu, "approve")["code"][0]
    assert httpx.post(f"{emu.base_url}/auth/eagle/token", data={"code": used, **secret}).status_code == 200
    again = httpx.post(f"{emu.base_url}/auth/eagle/token", data={"code": used, **secret})
    assert again.status_code == 401 and error_code(again) == "invalid_code"
    httpx.post(f"{emu.base_url}/_emulator/config", json={"oauth_code_ttl_seconds": 60})
    late = _decide(emu, "approve")["code"][0]
    httpx.post(f"{emu.base_url}/_emulator/clock/advance", json={"seconds": 61})
    expired = httpx.post(f"{emu.base_url}/auth/eagle/token", json={"code": late, **secret})
    assert expired.status_code == 401 and error_code(expired) == "code_expired"


def test_unknown_app_gets_an_error_page(emu):
    page = httpx.get(f"{emu.base_url}/oauth", params={"client_id": "other", "state": "s", "redirect_uri": REDIRECT})
    assert page.status_code == 400 and "Unknown app" in page.text


def test_serve_flags_set_the_public_app():
    """`intercom-emulator serve --oauth-client-id/--oauth-client-secret` (the demo / manual tries)."""
    from intercom_emulator.testing import EmulatorProcess

    with EmulatorProcess(args=["--oauth-client-id", "flag-id", "--oauth-client-secret", "flag-secret"]) as proc:
        ok = httpx.get(f"{proc.base_url}/oauth", params={"client_id": "flag-id", "state": "s", "redirect_uri": REDIRECT})
        default = httpx.get(
            f"{proc.base_url}/oauth", params={"client_id": "emulator-client-id", "state": "s", "redirect_uri": REDIRECT}
        )
        wrong = httpx.post(
            f"{proc.base_url}/auth/eagle/token", data={"code": "c", "client_id": "flag-id", "client_secret": "x"}
        )
    assert ok.status_code == 200 and default.status_code == 400
    assert wrong.status_code == 401 and error_code(wrong) == "invalid_client"

"""Intercom's authorization-code flow for a public app, from the installing side.

Why stdlib `http.server`: the callback is one request on 127.0.0.1 and then the server is gone; no
event loop is worth starting for it. The flow: the authorize URL with a random `state` ->
one callback (its `state` compared in constant time) -> `POST /auth/eagle/token` with the code
and the app's client id and secret -> `GET /me` for the workspace's id_code, name and region.
Intercom issues no refresh token and the token does not expire (docs/emulator-contract.md "OAuth").
Nothing here logs or raises with the token, the client secret or the code.
"""

from __future__ import annotations

import hmac
import html
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from intercom_elt.pipelines import oauth_errors
from intercom_elt.sources.intercom import settings as source_settings

# the app host a customer approves on, per data region (Intercom's OAuth docs name app.intercom.com;
# the regional app hosts are those of the regional workspaces, see the contract)
AUTHORIZE_HOSTS = {
    "us": "https://app.intercom.com",
    "eu": "https://app.eu.intercom.com",
    "au": "https://app.au.intercom.com",
}
AUTHORIZE_PATH = "/oauth"
TOKEN_PATH = "/auth/eagle/token"
CALLBACK_PATH = "/callback"
DEFAULT_PORT = 8719
HTTP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Endpoints:
    """Where the customer approves and where the code is traded; a base_url serves all three."""

    authorize_url: str
    token_url: str
    api_url: str

    @classmethod
    def for_workspace(cls, region: str | None, base_url: str | None) -> Endpoints:
        if base_url:
            root = base_url.rstrip("/")
            return cls(root + AUTHORIZE_PATH, root + TOKEN_PATH, root)
        region = region or source_settings.DEFAULT_REGION
        api = source_settings.REGIONS[region]
        return cls(AUTHORIZE_HOSTS[region] + AUTHORIZE_PATH, api + TOKEN_PATH, api)


@dataclass(frozen=True)
class AppCredentials:
    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True)
class Installation:
    """What a successful install yields: the token (never printed by repr) and the workspace it opens."""

    token: str = field(repr=False)
    id_code: str = ""
    name: str = ""
    region: str = ""


def new_state() -> str:
    """A fresh unguessable `state` for one authorize round trip."""
    return secrets.token_urlsafe(32)


def authorize_url(endpoints: Endpoints, client_id: str, state: str, redirect_uri: str) -> str:
    return f"{endpoints.authorize_url}?{urlencode({'client_id': client_id, 'state': state, 'redirect_uri': redirect_uri})}"


class _CallbackServer(ThreadingHTTPServer):
    """Keeps the query of the first request on CALLBACK_PATH; any other path is a 404. Threads, so a
    browser's idle preconnect socket cannot hold up the real redirect."""

    daemon_threads = True

    def __init__(self, port: int, expected_state: str) -> None:
        super().__init__(("127.0.0.1", port), _CallbackHandler)
        self.expected_state = expected_state
        self.query: dict[str, str] | None = None
        self.answered = threading.Event()
        self._first = threading.Lock()

    def keep(self, query: dict[str, str]) -> None:
        with self._first:
            if self.query is None:
                self.query = query
                self.answered.set()


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _CallbackServer
    timeout = 10  # seconds an accepted connection may stay silent

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        parts = urlsplit(self.path)
        if parts.path != CALLBACK_PATH:
            self.send_error(404)
            return
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        state_ok = hmac.compare_digest(query.get("state", "").encode(), self.server.expected_state.encode())
        if not state_ok:
            message = "This answer does not belong to the running connect (state mismatch). See the terminal."
        elif "error" in query:
            message = "The install was not approved. See the terminal."
        else:
            message = "intercom-sync received Intercom's answer. See the terminal for the result; you can close this tab."
        body = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>intercom-sync connect</title></head>"
            f"<body><p id='result'>{html.escape(message)}</p></body></html>"
        ).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)
        finally:  # after the page (connect may exit as soon as it has the query), even if the browser left
            self.server.keep(query)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Silent: the default writes the request line, code included, to stderr."""


class Callback:
    """The local redirect target, served from a thread from construction on: bound first (a busy
    port fails before any URL is shown), and answering even while a browser launcher blocks."""

    def __init__(self, port: int, expected_state: str) -> None:
        try:
            self._server = _CallbackServer(port, expected_state)
        except OSError:
            raise oauth_errors.port_in_use(port) from None
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def wait(self, timeout: float) -> dict[str, str]:
        """The first callback's query; UserError when none came within `timeout` seconds."""
        try:
            if not self._server.answered.wait(timeout) or self._server.query is None:
                raise oauth_errors.timed_out(timeout)
            return self._server.query
        finally:
            self._server.shutdown()
            self._server.server_close()


def check_callback(query: dict[str, str], expected_state: str) -> str:
    """The authorization code, once the state matches and Intercom did not report a refusal."""
    if not hmac.compare_digest(query.get("state", "").encode(), expected_state.encode()):
        raise oauth_errors.bad_state()
    if "error" in query:
        raise oauth_errors.denied(query["error"][:60] or "error")
    code = query.get("code", "")
    if not code:
        raise oauth_errors.no_code()
    return code


def _error_code(resp: httpx.Response) -> str:
    try:
        body = resp.json()
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("code", ""))[:60]
        if isinstance(body, dict) and body.get("error"):
            return str(body["error"])[:60]
    except ValueError:
        pass
    return "no error code"


def exchange(endpoints: Endpoints, app: AppCredentials, code: str) -> str:
    """POST the code with the app's credentials; the token from `token` or `access_token`."""
    form = {"code": code, "client_id": app.client_id, "client_secret": app.client_secret}
    try:
        resp = httpx.post(endpoints.token_url, data=form, headers={"Accept": "application/json"}, timeout=HTTP_TIMEOUT)
    except httpx.HTTPError:
        raise oauth_errors.unreachable("token endpoint", endpoints.token_url) from None
    if resp.status_code >= 500:
        raise oauth_errors.unreachable("token endpoint", endpoints.token_url)
    if resp.status_code >= 400:
        error = _error_code(resp)
        if "client" in error or "secret" in error:
            raise oauth_errors.wrong_client(resp.status_code, error)
        if "expired" in error:
            raise oauth_errors.expired_code()
        raise oauth_errors.refused_code(resp.status_code, error)
    try:
        body = resp.json()
    except ValueError:
        raise oauth_errors.no_token_in_answer() from None
    token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
    if not isinstance(token, str) or not token.strip():
        raise oauth_errors.no_token_in_answer()
    return token.strip()


def identify(endpoints: Endpoints, token: str, intercom_version: str) -> Installation:
    """GET /me with the new token: which workspace it opens (its id_code, name and region)."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", "Intercom-Version": intercom_version}
    try:
        resp = httpx.get(endpoints.api_url + "/me", headers=headers, timeout=HTTP_TIMEOUT)
    except httpx.HTTPError:
        raise oauth_errors.unreachable("API", endpoints.api_url) from None
    if resp.status_code != 200:
        raise oauth_errors.me_refused(resp.status_code)
    app = resp.json().get("app") or {}
    return Installation(
        token=token, id_code=str(app.get("id_code", "")), name=str(app.get("name", "")),
        region=str(app.get("region", "")).lower(),
    )


"""Intercom's OAuth install flow for a public app: the authorize page and the token endpoint.

Why here: `intercom-sync connect` (and its tests, in a real browser) walk the whole install against
something that answers like Intercom: `GET /oauth` shows an approve page (on Intercom the app host
`app.intercom.com/oauth`; the emulator serves it on its one port), approve redirects to the app's
`redirect_uri` with `code` and `state`, deny with `error=access_denied` and `state`, and
`POST /auth/eagle/token` trades a code (single use, expires after `oauth_code_ttl_seconds` of the
*virtual* clock, so `/_emulator/clock/advance` expires it without sleeping) for a token the
emulator then accepts. What is documented and what is the emulator's guess: docs/emulator-contract.md
"OAuth". These paths need no bearer token (the middleware lets them through).
"""

from __future__ import annotations

import hmac
import html
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from aiohttp import web

from intercom_emulator.routes.common import state_of
from intercom_emulator.state import ALL_SCOPES, ApiError

AUTHORIZE_PATH = "/oauth"
DECIDE_PATH = "/oauth/decide"
TOKEN_PATH = "/auth/eagle/token"
PUBLIC_PATHS = frozenset({AUTHORIZE_PATH, DECIDE_PATH, TOKEN_PATH})
DENIED_DESCRIPTION = "The user denied the authorization request"


@dataclass
class Grant:
    """An authorization code handed out by an approve, until it is traded or expires."""

    workspace: str  # the chosen workspace's id_code
    issued_at: int  # virtual unix seconds
    redirect_uri: str


def _redirect(url: str) -> web.Response:
    return web.Response(status=302, headers={"Location": url})


def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(text=text, status=status, content_type="text/html")


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _redirect_ok(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


async def authorize_page(request: web.Request) -> web.Response:
    """GET /oauth?client_id=&state=&redirect_uri=: the approve page, a workspace choice and two buttons."""
    state = state_of(request)
    q = request.query
    if not hmac.compare_digest(q.get("client_id", ""), state.knobs.oauth_client_id):
        return _page("Unknown app", "<p>No app has this client_id.</p>", status=400)
    redirect_uri = q.get("redirect_uri", "")
    if not _redirect_ok(redirect_uri):
        return _page("Bad redirect", "<p>redirect_uri must be an http(s) URL.</p>", status=400)
    app = state.ws.app
    hidden = "".join(
        f"<input type='hidden' name='{name}' value='{html.escape(q.get(name, ''), quote=True)}'>"
        for name in ("client_id", "state", "redirect_uri")
    )
    option = (
        f"<option value='{html.escape(str(app['id_code']), quote=True)}'>"
        f"{html.escape(str(app['name']))} ({html.escape(str(app['id_code']))})</option>"
    )
    body = (
        f"<p>{html.escape(state.knobs.oauth_app_name)} would like to read your Intercom data.</p>"
        f"<form method='post' action='{DECIDE_PATH}'>{hidden}"
        f"<label for='workspace'>Workspace</label> <select id='workspace' name='workspace'>{option}</select>"
        "<p><button id='approve' type='submit' name='decision' value='approve'>Authorize access</button> "
        "<button id='deny' type='submit' name='decision' value='deny'>Cancel</button></p></form>"
    )
    return _page(f"Connect {state.knobs.oauth_app_name} to Intercom", body)


async def decide(request: web.Request) -> web.Response:
    """POST /oauth/decide: approve -> redirect with code and state; deny -> with error=access_denied."""
    state = state_of(request)
    form = await request.post()
    client_id, redirect_uri = str(form.get("client_id", "")), str(form.get("redirect_uri", ""))
    if not hmac.compare_digest(client_id, state.knobs.oauth_client_id) or not _redirect_ok(redirect_uri):
        return _page("Unknown app", "<p>No app has this client_id or redirect_uri.</p>", status=400)
    echo = {"state": str(form["state"])} if form.get("state") else {}
    if form.get("decision") != "approve":
        params = {"error": "access_denied", "error_description": DENIED_DESCRIPTION, **echo}
        return _redirect(_with_query(redirect_uri, params))
    workspace = str(form.get("workspace", ""))
    if workspace != str(state.ws.app["id_code"]):
        return _page("Unknown workspace", "<p>Choose one of your workspaces.</p>", status=400)
    code = secrets.token_urlsafe(24)
    state.oauth_grants[code] = Grant(workspace, state.ws.clock.now(), redirect_uri)
    return _redirect(_with_query(redirect_uri, {"code": code, **echo}))


async def _params(request: web.Request) -> dict[str, str]:
    """The exchange's fields from the query, a form body or a JSON body (clients send all three)."""
    out: dict[str, str] = {k: v for k, v in request.query.items()}
    if request.content_type == "application/json":
        raw = await request.read()
        body: Any = orjson.loads(raw) if raw else {}
        if isinstance(body, dict):
            out.update({str(k): str(v) for k, v in body.items() if v is not None})
    elif request.can_read_body:
        out.update({k: str(v) for k, v in (await request.post()).items()})
    return out


async def token(request: web.Request) -> web.Response:
    """POST /auth/eagle/token: code + client_id + client_secret -> {token, access_token, token_type}."""
    state = state_of(request)
    params = await _params(request)
    for name in ("code", "client_id", "client_secret"):
        if not params.get(name):
            raise ApiError(400, "parameter_not_found", f"{name} is required")
    knobs = state.knobs
    same_id = hmac.compare_digest(params["client_id"], knobs.oauth_client_id)
    if not (same_id and hmac.compare_digest(params["client_secret"], knobs.oauth_client_secret)):
        raise ApiError(401, "invalid_client", "Client authentication failed: unknown client_id or wrong client_secret")
    grant = state.oauth_grants.pop(params["code"], None)  # single use: gone whatever happens next
    if grant is None:
        raise ApiError(401, "invalid_code", "Unauthorized Code")
    if state.ws.clock.now() - grant.issued_at > knobs.oauth_code_ttl_seconds:
        raise ApiError(401, "code_expired", "Unauthorized Code: the code expired")
    minted = "dG9rOm" + secrets.token_urlsafe(30)  # Intercom tokens are base64 of "tok:..."
    state.tokens[minted] = ALL_SCOPES  # scopes are set on the app, not per install
    return web.Response(
        body=orjson.dumps({"token": minted, "access_token": minted, "token_type": "Bearer"}),
        content_type="application/json",
    )


def register(app: web.Application) -> None:
    """Add the OAuth routes (served without a bearer token)."""
    r = app.router
    r.add_get(AUTHORIZE_PATH, authorize_page)
    r.add_post(DECIDE_PATH, decide)
    r.add_post(TOKEN_PATH, token)

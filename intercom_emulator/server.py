"""The emulator's HTTP server: an aiohttp app that answers like Intercom's REST API 2.15.

Why a real server: the connector, its tests, the benchmarks and the no-token demo all talk HTTP
to it, so retries, pagination and throttling are exercised exactly as against Intercom.

Request pipeline (one middleware, in this order): route match -> auth (401 ``unauthorized``) ->
rate limit (429 ``rate_limit_exceeded``) -> ``Intercom-Version`` check (400
``intercom_version_invalid``) -> scope check (401 ``token_unauthorized``) -> injected faults ->
handler -> per-version reshaping (`versions.py`) -> X-RateLimit-* headers -> request log. Routes live in `routes/`; the
unauthenticated ``/_emulator/`` control API in `control.py`.

Token scopes (Intercom permission names) and the endpoints they open:

=========================  ==========================================================
``read_users_companies``   /contacts*, /companies*, /segments, /data_attributes
``read_conversations``     /conversations*
``read_admins``            /admins, /admins/{id}, /admins/activity_logs, /teams
``read_tags``              /tags
``read_tickets``           /tickets/search
=========================  ==========================================================

GET /me needs no scope: it identifies the token's admin and workspace, which any valid token may
ask (a client's permission check starts there).

A token configured without scopes has all of them (the default ``emulator-token`` does).

The OAuth install paths (``GET /oauth``, ``POST /oauth/decide``, ``POST /auth/eagle/token``,
`routes/oauth.py`) skip auth, rate limit and version checks: they run before the app holds a token.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from aiohttp import web

from intercom_emulator import control, routes, versions, webhooks
from intercom_emulator.limits import FaultInjector, RateLimiter
from intercom_emulator.routes import oauth
from intercom_emulator.state import (
    DEFAULT_VERSION,
    FATE_KEY,
    STATE_KEY,
    ApiError,
    EmulatorState,
    error_body,
    parse_tokens,
    scope_for,
)

log = logging.getLogger(__name__)


def _template(request: web.Request) -> str:
    info = request.match_info
    route = info.route if info is not None else None
    resource = route.resource if route is not None else None
    if resource is None:
        return f"{request.method} <unmatched>"
    return f"{request.method} {resource.canonical}"


def _rate_headers(decision: Any) -> dict[str, str]:
    return decision.headers() if decision is not None else {}


async def _drop(request: web.Request, body: bytes, headers: dict[str, str]) -> web.StreamResponse:
    """Send the headers and part of the body, then abort the connection."""
    resp = web.StreamResponse(status=200, headers=headers)
    resp.content_type = "application/json"
    resp.content_length = len(body)
    await resp.prepare(request)
    await resp.write(body[: max(1, len(body) // 3)])
    transport = request.transport
    if transport is not None:
        transport.abort()
    return resp


@web.middleware
async def intercom_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Auth, version, rate limit, scopes, faults, headers and logging around every API route."""
    path = request.path
    if path.startswith("/_emulator/") or path == "/_emulator":
        return await handler(request)
    state: EmulatorState = request.app[STATE_KEY]
    template = _template(request)
    status = 500
    try:
        resp = await _serve(request, handler, state, template)
        status = resp.status
        return resp
    except ApiError as err:
        status = err.status
        return web.Response(
            body=error_body(err.code, err.message),
            status=err.status,
            headers=err.headers,
            content_type="application/json",
        )
    finally:
        state.log.record(template, status)


async def _serve(request: web.Request, handler: Any, state: EmulatorState, template: str) -> web.StreamResponse:
    if request.path in oauth.PUBLIC_PATHS:  # the install flow runs before the app holds a token
        return await handler(request)
    auth = request.headers.get("Authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    scopes = state.tokens.get(token)
    if scopes is None:
        raise ApiError(401, "unauthorized", "Access Token Invalid")
    decision = state.limiter.hit(token)
    rate_headers = decision.headers()
    if not decision.allowed:
        raise ApiError(
            429, "rate_limit_exceeded", f"Exceeded rate limit of {decision.limit} in 10_seconds", rate_headers
        )
    version = request.headers.get("Intercom-Version", DEFAULT_VERSION)
    if version not in state.versions:
        raise ApiError(
            400, "intercom_version_invalid", f"The requested version {version!r} could not be found", rate_headers
        )
    if template.endswith("<unmatched>"):
        raise ApiError(404, "not_found", "Resource Not Found", rate_headers)
    needed = scope_for(request.path)
    if needed is not None and needed not in scopes:
        raise ApiError(
            401, "token_unauthorized", f"Not authorized to access resource (needs {needed})", rate_headers
        )
    fate = state.faults.decide(template)
    if fate.delay:
        await asyncio.sleep(fate.delay)
    if fate.status == 429:
        burst = dict(rate_headers, **{"X-RateLimit-Remaining": "0"})
        raise ApiError(429, "rate_limit_exceeded", "Exceeded rate limit (injected burst)", burst)
    if fate.status is not None:
        raise ApiError(fate.status, "server_error", "Server Error (injected)", rate_headers)
    request[FATE_KEY] = fate
    try:
        resp = await handler(request)
    except ApiError as err:
        err.headers = {**rate_headers, **err.headers}
        raise
    if resp.status == 200 and isinstance(resp, web.Response) and resp.body is not None:
        body = resp.body if isinstance(resp.body, bytes) else bytes(resp.body)
        if versions.reshapes(version):  # the store is 2.15-shaped; other versions are reshaped here
            body = orjson.dumps(versions.reshape(orjson.loads(body), version))
            resp = web.Response(body=body, status=200, content_type="application/json")
        if fate.drop:
            return await _drop(request, body, rate_headers)
        if fate.malformed:
            return web.Response(
                body=body[: max(1, len(body) // 2)], headers=rate_headers, content_type="application/json"
            )
    resp.headers.update(rate_headers)
    return resp


def create_app(state: EmulatorState) -> web.Application:
    """Build the aiohttp application around a prepared `EmulatorState`."""
    app = web.Application(middlewares=[intercom_middleware], client_max_size=4 * 1024 * 1024)
    app[STATE_KEY] = state
    routes.register(app)
    oauth.register(app)
    control.register(app)
    webhooks.register(app)
    return app


def build_state(
    workspace: Any,
    *,
    tokens: Any = None,
    rate_limit_per_minute: int = 10_000,
    workspace_rate_limit_per_minute: int = 25_000,
    other_apps_per_minute: int = 0,
    fault_seed: int = 1,
    faults: dict[str, Any] | None = None,
    endpoint_faults: dict[str, dict[str, Any]] | None = None,
    **knobs: Any,
) -> EmulatorState:
    """An `EmulatorState` from keyword knobs (shared by the CLI and `testing.EmulatorServer`)."""
    state = EmulatorState(
        ws=workspace,
        tokens=parse_tokens(tokens),
        limiter=RateLimiter(rate_limit_per_minute, workspace_rate_limit_per_minute, other_apps_per_minute),
        faults=FaultInjector(seed=fault_seed),
    )
    state.configure(faults=faults or {}, endpoint_faults=endpoint_faults or {}, **knobs)
    return state


def run(state: EmulatorState, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve forever (the CLI's `serve`)."""
    web.run_app(create_app(state), host=host, port=port, access_log=None, print=None)

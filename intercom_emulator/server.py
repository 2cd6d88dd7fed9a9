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
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from intercom_emulator import versions
from intercom_emulator.limits import Fate, FaultInjector, RateLimiter
from intercom_emulator.requestlog import RequestLog

log = logging.getLogger(__name__)

DEFAULT_TOKEN = "emulator-token"
ALL_SCOPES = frozenset(
    {
        "read_users_companies",
        "read_conversations",
        "read_admins",
        "read_tags",
        "read_tickets",
    }
)
SCOPE_BY_PREFIX: list[tuple[str, str]] = [
    ("/contacts", "read_users_companies"),
    ("/companies", "read_users_companies"),
    ("/segments", "read_users_companies"),
    ("/conversations", "read_conversations"),
    ("/admins", "read_admins"),
    ("/teams", "read_admins"),
    ("/tags", "read_tags"),
    ("/tickets", "read_tickets"),
    ("/data_attributes", "read_users_companies"),
]
DEFAULT_VERSION = "2.15"  # Intercom's current default (2.16 exists, see intercom-api-notes.md)
# Every `Intercom-Version` the emulator accepts: the union of the `components.schemas.intercom_version`
# enums of Intercom's official OpenAPI descriptions 2.13, 2.15 and 2.16 (github.com/intercom/
# Intercom-OpenAPI, descriptions/<v>/api.intercom.io.yaml, commit 8889625a; copies in
# shared/intercom-openapi). 2.16's enum is the superset. Hard-coded on purpose: the emulator ships
# without the spec files. tests/emulator/test_server_auth_limits.py compares it with the 2.16 yaml.
SPEC_VERSIONS: tuple[str, ...] = (
    "1.0", "1.1", "1.2", "1.3", "1.4", "2.0", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6", "2.7",
    "2.8", "2.9", "2.10", "2.11", "2.12", "2.13", "2.14", "2.15", "2.16",
)  # fmt: skip
# Not in the numbered enums but accepted by Intercom: the preview version (formerly "Unstable").
EXTRA_VERSIONS: tuple[str, ...] = ("Preview", "Unstable")
ACCEPTED_VERSIONS: frozenset[str] = frozenset(SPEC_VERSIONS + EXTRA_VERSIONS)


def load_versions() -> frozenset[str]:
    """The accepted `Intercom-Version` values (kept as a function for callers of the old API)."""
    return ACCEPTED_VERSIONS


def scope_for(path: str) -> str | None:
    """The scope an API path needs (None for paths no scope covers)."""
    for prefix, scope in SCOPE_BY_PREFIX:
        if path == prefix or path.startswith(prefix + "/"):
            return scope
    return None


class ApiError(Exception):
    """An Intercom error response (raised by handlers, rendered by the middleware)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(code: str, message: str) -> bytes:
    """Intercom's `error.list` body."""
    return orjson.dumps(
        {
            "type": "error.list",
            "request_id": str(uuid.uuid4()),
            "errors": [{"code": code, "message": message}],
        }
    )


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """orjson-serialised JSON response."""
    return web.Response(
        body=orjson.dumps(payload), status=status, headers=headers, content_type="application/json"
    )


@dataclass
class Knobs:
    """Server behaviour knobs that are not faults (settable at start and at runtime)."""

    search_lag_seconds: int = 0
    scroll_idle_timeout: float = 60.0
    scroll_page_size: int = 50
    conversations_search_day_granular: bool = False
    company_list_cap: int = 10_000
    activity_logs_per_page: int = 20
    activity_logs_max_window_seconds: int = 0  # >0: wider created_at windows answer 500


@dataclass
class ScrollState:
    """The one open companies scroll of the workspace."""

    param: str
    ids: list[str]
    position: int = 0
    page: int = 0
    last_used: float = 0.0
    done: bool = False


class LRU(OrderedDict):
    """A tiny bounded cache (the event loop is single-threaded, so no lock)."""

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.maxsize = maxsize

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.maxsize:
            self.popitem(last=False)

    def lookup(self, key: Any) -> Any:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value


@dataclass
class EmulatorState:
    """Everything the routes share: the workspace, tokens, limiter, faults, log and caches."""

    ws: Any
    tokens: dict[str, frozenset[str]] = field(default_factory=lambda: {DEFAULT_TOKEN: ALL_SCOPES})
    limiter: RateLimiter = field(default_factory=RateLimiter)
    faults: FaultInjector = field(default_factory=FaultInjector)
    knobs: Knobs = field(default_factory=Knobs)
    log: RequestLog = field(default_factory=RequestLog)

    def __post_init__(self) -> None:
        self.versions = load_versions()
        self.search_cache = LRU(64)
        self.model_cache = LRU(16)
        self.detail_cache = LRU(4096)
        self.scroll: ScrollState | None = None

    def configure(self, **knobs: Any) -> None:
        """Change faults, limits and behaviour knobs at runtime (control API, EmulatorServer)."""
        if knobs.pop("reset_faults", False):
            self.faults.reset()
        if "fault_seed" in knobs:
            self.faults.reset(seed=int(knobs.pop("fault_seed")))
        if "faults" in knobs:
            self.faults.set_global(knobs.pop("faults") or {})
        for template, cfg in (knobs.pop("endpoint_faults", None) or {}).items():
            self.faults.set_endpoint(template, cfg)
        limit_keys = {
            "rate_limit_per_minute": "per_minute",
            "workspace_rate_limit_per_minute": "workspace_per_minute",
            "other_apps_per_minute": "other_apps_per_minute",
        }
        limits = {limit_keys[k]: knobs.pop(k) for k in list(knobs) if k in limit_keys}
        if limits:
            self.limiter.configure(**limits)
        if "tokens" in knobs:
            self.tokens = parse_tokens(knobs.pop("tokens"))
        for key, value in knobs.items():
            if not hasattr(self.knobs, key):
                raise ValueError(f"unknown knob {key!r}")
            setattr(self.knobs, key, value)
        self.search_cache.clear()

    def describe(self) -> dict[str, Any]:
        """Current configuration as JSON (GET /_emulator/config)."""
        return {
            "faults": self.faults.global_config.to_dict(),
            "endpoint_faults": {k: v.to_dict() for k, v in self.faults.endpoint_configs.items()},
            "rate_limit_per_minute": self.limiter.per_minute,
            "workspace_rate_limit_per_minute": self.limiter.workspace_per_minute,
            "other_apps_per_minute": self.limiter.other_apps_per_minute,
            "tokens": {t: sorted(s) for t, s in self.tokens.items()},
            **self.knobs.__dict__,
        }


def parse_tokens(specs: Any) -> dict[str, frozenset[str]]:
    """``["tok", "tok2:read_tags,read_admins"]`` (or a dict) -> {token: scopes}; none -> the default."""
    if isinstance(specs, dict):
        return {t: frozenset(s) if s else ALL_SCOPES for t, s in specs.items()}
    out: dict[str, frozenset[str]] = {}
    for spec in specs or []:
        token, _, scopes = str(spec).partition(":")
        chosen = frozenset(s.strip() for s in scopes.split(",") if s.strip())
        unknown = chosen - ALL_SCOPES
        if unknown:
            raise ValueError(f"unknown scopes {sorted(unknown)}; known: {sorted(ALL_SCOPES)}")
        out[token] = chosen or ALL_SCOPES
    return out or {DEFAULT_TOKEN: ALL_SCOPES}


STATE_KEY = web.AppKey("emulator_state", EmulatorState)
FATE_KEY = web.RequestKey("emulator_fate", Fate)


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
    from intercom_emulator import control, routes, webhooks

    app = web.Application(middlewares=[intercom_middleware], client_max_size=4 * 1024 * 1024)
    app[STATE_KEY] = state
    routes.register(app)
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

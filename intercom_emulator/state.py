"""What every part of the emulator's server shares: its state, its errors and its constants.

Why apart from `server.py`: the routes, the control API and the webhooks need these types, and the
server builds its app from the routes; with the types in `server.py` the two imported each other.
Now the arrows point one way: `server` -> `routes`/`control` -> `state`.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from intercom_emulator.limits import Fate, FaultInjector, RateLimiter
from intercom_emulator.requestlog import RequestLog

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
    # the public app of the OAuth install flow (routes/oauth.py)
    oauth_client_id: str = "emulator-client-id"
    oauth_client_secret: str = "emulator-client-secret"
    oauth_app_name: str = "intercom-sync"
    oauth_code_ttl_seconds: int = 300  # Intercom: "the code will expire after about 5 minutes"


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
        self.oauth_grants: dict[str, Any] = {}  # authorization code -> routes.oauth.Grant

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

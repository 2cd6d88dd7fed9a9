"""Rate limiting and fault injection for the emulator's HTTP layer.

Why: a connector is only as good as its behaviour when Intercom is slow, throttles or breaks.
Everything here is deterministic for a given seed so a failing test can be replayed.

* `RateLimiter`: Intercom's per-app quota (default 10,000/min) and the workspace-wide quota
  (default 25,000/min shared by every app), both enforced in 10-second windows of quota/6 calls.
  Windows use the real monotonic clock (never the virtual workspace clock). The reported
  `X-RateLimit-Limit` is the per-window quota the `Remaining` counts down from, and
  `X-RateLimit-Reset` is the unix second at which the current window ends.
  `other_apps_per_minute` simulates another app eating part of the workspace budget.
* `FaultConfig`: one dataclass of fault knobs; set globally and/or per endpoint template
  (e.g. ``"GET /conversations/{id}"``). `FaultInjector` draws from a seeded `random.Random`.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from intercom_emulator.shape_drift import ServedInvalid, ShapeRates


@dataclass
class RateLimitDecision:
    """The outcome of one rate-limit check, with the header values to send."""

    allowed: bool
    limit: int
    remaining: int
    reset: int

    def headers(self) -> dict[str, str]:
        """The X-RateLimit-* headers Intercom puts on every authenticated response."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


class RateLimiter:
    """Per-app and per-workspace quotas in fixed 10-second windows (thread-safe)."""

    WINDOW_SECONDS = 10.0

    def __init__(
        self,
        per_minute: int = 10_000,
        workspace_per_minute: int = 25_000,
        other_apps_per_minute: int = 0,
    ) -> None:
        self.per_minute = per_minute
        self.workspace_per_minute = workspace_per_minute
        self.other_apps_per_minute = other_apps_per_minute
        self._lock = threading.Lock()
        self._origin = time.monotonic()
        self._window = -1
        self._app_used: dict[str, int] = {}
        self._ws_used = 0

    def configure(
        self,
        per_minute: int | None = None,
        workspace_per_minute: int | None = None,
        other_apps_per_minute: int | None = None,
    ) -> None:
        """Change quotas at runtime; the current window restarts so tests see the new quota at once."""
        with self._lock:
            if per_minute is not None:
                self.per_minute = int(per_minute)
            if workspace_per_minute is not None:
                self.workspace_per_minute = int(workspace_per_minute)
            if other_apps_per_minute is not None:
                self.other_apps_per_minute = int(other_apps_per_minute)
            self._origin = time.monotonic()
            self._window = -1

    @staticmethod
    def _per_window(per_minute: int) -> int:
        return max(1, math.floor(per_minute / 6))

    def _roll(self, now_mono: float) -> float:
        """Start a new window if the current one ended; return the current window's end (monotonic)."""
        index = int((now_mono - self._origin) // self.WINDOW_SECONDS)
        if index != self._window:
            self._window = index
            self._app_used = {}
            self._ws_used = min(
                self._per_window(self.workspace_per_minute) if self.workspace_per_minute else 0,
                math.floor(self.other_apps_per_minute / 6),
            )
        return self._origin + (index + 1) * self.WINDOW_SECONDS

    def hit(self, app: str) -> RateLimitDecision:
        """Count one call by `app` and say whether it is within both quotas."""
        now_mono = time.monotonic()
        with self._lock:
            end_mono = self._roll(now_mono)
            reset = math.ceil(time.time() + (end_mono - now_mono))
            app_quota = self._per_window(self.per_minute)
            used = self._app_used.get(app, 0)
            app_left = app_quota - used
            if self.workspace_per_minute:
                ws_left = self._per_window(self.workspace_per_minute) - self._ws_used
            else:
                ws_left = app_left
            if app_left <= 0 or ws_left <= 0:
                return RateLimitDecision(False, app_quota, 0, reset)
            self._app_used[app] = used + 1
            self._ws_used += 1
            return RateLimitDecision(True, app_quota, max(0, min(app_left, ws_left) - 1), reset)

    def peek(self, app: str) -> RateLimitDecision:
        """Header values without counting a call (for responses that must not consume quota)."""
        now_mono = time.monotonic()
        with self._lock:
            end_mono = self._roll(now_mono)
            reset = math.ceil(time.time() + (end_mono - now_mono))
            app_quota = self._per_window(self.per_minute)
            left = app_quota - self._app_used.get(app, 0)
            if self.workspace_per_minute:
                left = min(left, self._per_window(self.workspace_per_minute) - self._ws_used)
            return RateLimitDecision(left > 0, app_quota, max(0, left), reset)


@dataclass
class FaultConfig:
    """Fault knobs; every rate is a probability per request in [0, 1]. All default to off."""

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    error_rate: float = 0.0  # transient 5xx
    error_statuses: tuple[int, ...] = (500, 502, 503, 504)
    burst_429_every: int = 0  # cycle length M ...
    burst_429_length: int = 0  # ... of which the last N requests answer 429
    drop_rate: float = 0.0  # write part of the body, then close the connection
    slow_rate: float = 0.0  # sleep `slow_seconds` before answering
    slow_seconds: float = 0.0
    malformed_rate: float = 0.0  # 200 with a truncated JSON body
    extra_fields_rate: float = 0.0  # unknown fields added to returned objects
    type_drift_rate: float = 0.0  # integer timestamps/counts sent as strings
    # per record of list/search/scroll/activity-log pages (shape_drift.py):
    shape_drift_rate: float = 0.0  # valid drifts: optional field dropped, object nulled, swaps, list key
    missing_id_rate: float = 0.0  # served without `id` (invalid: a client must keep it aside)
    missing_cursor_rate: float = 0.0  # served without `updated_at` (`created_at` for activity logs)
    scroll_error_on_page: int = 0  # 500 when serving page k (1-based) of a companies scroll
    scroll_error_times: int = 1  # how many scrolls get that 500
    force_scroll_exists: bool = False  # a new scroll answers 400 scroll_exists
    search_cursor_once: bool = False  # a search cursor sent a second time answers 400 (as a stateful one would)

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: FaultConfig | None = None) -> FaultConfig:
        """Build from a JSON-ish dict, starting from `base`; unknown keys are an error (typos hide bugs)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault knobs: {sorted(unknown)}")
        merged = asdict(base) if base is not None else {}
        merged.update(data)
        if "error_statuses" in merged:
            merged["error_statuses"] = tuple(int(s) for s in merged["error_statuses"])
        return cls(**merged)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view for the control API."""
        out = asdict(self)
        out["error_statuses"] = list(self.error_statuses)
        return out


@dataclass
class Fate:
    """What the injector decided for one request."""

    delay: float = 0.0
    status: int | None = None  # forced error status (5xx or 429)
    drop: bool = False
    malformed: bool = False
    extra_fields_rate: float = 0.0
    type_drift_rate: float = 0.0
    shape: ShapeRates = field(default_factory=ShapeRates)
    search_cursor_once: bool = False


ONCE_MARK = "~"  # not a base64url character: ends a cursor's own text


@dataclass
class FaultInjector:
    """Decides each request's faults from a seeded RNG; global config plus per-template overrides."""

    seed: int = 1
    global_config: FaultConfig = field(default_factory=FaultConfig)
    endpoint_configs: dict[str, FaultConfig] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._counters: dict[str, int] = {}
        self.scroll_errors_fired = 0
        self.served_invalid = ServedInvalid()  # what shape drift served invalid (tests' ground truth)
        self._cursors_issued = 0  # `search_cursor_once`: each cursor handed out is unique ...
        self._cursors_sent: set[str] = set()  # ... and taken once

    def config_for(self, template: str) -> FaultConfig:
        """The per-endpoint config when one is set, else the global one."""
        return self.endpoint_configs.get(template, self.global_config)

    def set_global(self, data: dict[str, Any]) -> None:
        """Merge knobs into the global config."""
        self.global_config = FaultConfig.from_dict(data, self.global_config)

    def set_endpoint(self, template: str, data: dict[str, Any] | None) -> None:
        """Set (or with None, clear) the override for one endpoint template."""
        if data is None:
            self.endpoint_configs.pop(template, None)
        else:
            base = self.endpoint_configs.get(template, FaultConfig())
            self.endpoint_configs[template] = FaultConfig.from_dict(data, base)

    def reset(self, seed: int | None = None) -> None:
        """Back to no faults (and optionally a new seed)."""
        self.global_config = FaultConfig()
        self.endpoint_configs = {}
        self._counters = {}
        self.scroll_errors_fired = 0
        self.served_invalid.clear()
        self._cursors_sent.clear()
        self._cursors_issued = 0
        if seed is not None:
            self.seed = seed
        self.rng = random.Random(self.seed)

    def issue_cursor(self, cursor: str) -> str:
        """`search_cursor_once`: the cursor made unique to the answer that hands it out."""
        with self._lock:
            self._cursors_issued += 1
            return f"{cursor}{ONCE_MARK}{self._cursors_issued}"

    def take_cursor(self, cursor: str) -> str | None:
        """`search_cursor_once`: the cursor as issued, or None when it was sent before."""
        with self._lock:
            if cursor in self._cursors_sent:
                return None
            self._cursors_sent.add(cursor)
        return cursor.split(ONCE_MARK, 1)[0]

    def decide(self, template: str) -> Fate:
        """Draw this request's fate; the 429 burst counter is per endpoint when it has its own config."""
        cfg = self.config_for(template)
        key = template if template in self.endpoint_configs else "*"
        with self._lock:
            fate = Fate(
                extra_fields_rate=cfg.extra_fields_rate, type_drift_rate=cfg.type_drift_rate,
                shape=ShapeRates(cfg.shape_drift_rate, cfg.missing_id_rate, cfg.missing_cursor_rate),
                search_cursor_once=cfg.search_cursor_once,
            )
            rng = self.rng
            if cfg.latency_ms or cfg.latency_jitter_ms:
                jitter = rng.uniform(-cfg.latency_jitter_ms, cfg.latency_jitter_ms) if cfg.latency_jitter_ms else 0
                fate.delay += max(0.0, cfg.latency_ms + jitter) / 1000.0
            if cfg.slow_rate and rng.random() < cfg.slow_rate:
                fate.delay += cfg.slow_seconds
            if cfg.burst_429_every and cfg.burst_429_length:
                n = self._counters.get(key, 0)
                self._counters[key] = n + 1
                if n % cfg.burst_429_every >= cfg.burst_429_every - cfg.burst_429_length:
                    fate.status = 429
                    return fate
            if cfg.error_rate and rng.random() < cfg.error_rate:
                fate.status = rng.choice(cfg.error_statuses)
                return fate
            if cfg.drop_rate and rng.random() < cfg.drop_rate:
                fate.drop = True
            elif cfg.malformed_rate and rng.random() < cfg.malformed_rate:
                fate.malformed = True
            return fate

    def chance(self, rate: float) -> bool:
        """One seeded coin flip (used for per-record data faults)."""
        if rate <= 0:
            return False
        with self._lock:
            return self.rng.random() < rate

"""HTTP client for the Intercom REST API: auth, region, version, pagination, retries, stats.

It knows nothing of dlt. One instance serves every stream and is thread-safe, so the
conversation-detail pool shares its connection pool, its rate limiter and its statistics.
The access token lives only in the request headers (the httpx client's defaults and the header
sets `_send` reuses): it is never logged, never put into an exception message and never shown by
`repr`.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.request import getproxies

import httpx
import orjson

from . import settings
from .errors import (
    IntercomAPIError,
    IntercomAuthError,
    IntercomConfigError,
    IntercomMalformedResponseError,
    IntercomNotFoundError,
    IntercomPermissionError,
    IntercomRateLimitError,
    IntercomRegionError,
    IntercomScrollError,
    IntercomTransientError,
)
from .rate_limit import RateLimiter

logger = logging.getLogger(__name__)

_RETRYABLE_STATUS = frozenset({500, 502, 503, 504})


@dataclass
class ClientStats:
    """Counters for the run summary; every mutation goes through the lock (worker threads)."""

    requests: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    rate_limit_wait_seconds: float = 0.0
    backoff_seconds: float = 0.0
    not_found_skipped: Counter[str] = field(default_factory=Counter)
    scroll_restarts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, key: str | None = None, amount: float = 1) -> None:
        with self._lock:
            value = getattr(self, name)
            if isinstance(value, Counter):
                value[key] += int(amount)
            else:
                setattr(self, name, value + amount)

    @property
    def total_requests(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict snapshot for the pipeline's run summary."""
        with self._lock:
            return {
                "requests": dict(self.requests),
                "total_requests": sum(self.requests.values()),
                "retries": dict(self.retries),
                "total_retries": sum(self.retries.values()),
                "rate_limited": self.rate_limited,
                "rate_limit_wait_seconds": round(self.rate_limit_wait_seconds, 3),
                "backoff_seconds": round(self.backoff_seconds, 3),
                "not_found_skipped": dict(self.not_found_skipped),
                "scroll_restarts": self.scroll_restarts,
            }


def is_loopback(host: str | None) -> bool:
    """True for localhost and loopback IPs: the only hosts allowed over plain http."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_base_url(region: str = settings.DEFAULT_REGION, base_url: str | None = None) -> str:
    """Pick the API host: an explicit base_url (https unless loopback) or the region's host."""
    if base_url:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise IntercomConfigError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
        if parts.scheme != "https" and not is_loopback(parts.hostname):
            raise IntercomConfigError(
                f"base_url {base_url!r} must use https (plain http is only allowed for "
                "localhost/127.0.0.1, e.g. the emulator): the access token would travel in clear"
            )
        return base_url.rstrip("/")
    key = (region or "").lower()
    if key not in settings.REGIONS:
        raise IntercomConfigError(
            f"unknown region {region!r}: expected one of {', '.join(sorted(settings.REGIONS))}"
        )
    return settings.REGIONS[key]


def _error_details(response: httpx.Response) -> tuple[str | None, str | None, str | None]:
    """(code, message, request_id) from Intercom's error.list body, tolerating any body."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None, None, None
    if not isinstance(body, dict):
        return None, None, None
    errors = body.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    code = first.get("code") if isinstance(first.get("code"), str) else None
    message = first.get("message") if isinstance(first.get("message"), str) else None
    request_id = body.get("request_id") if isinstance(body.get("request_id"), str) else None
    return code, message, request_id


class IntercomClient:
    """Synchronous, thread-safe Intercom API client with one retry loop and a shared limiter."""

    def __init__(
        self,
        access_token: str,
        *,
        region: str = settings.DEFAULT_REGION,
        base_url: str | None = None,
        intercom_version: str = settings.DEFAULT_VERSION,
        max_workers: int = settings.DEFAULT_MAX_WORKERS,
        timeout: float = settings.REQUEST_TIMEOUT_SECONDS,
        max_retries: int = settings.MAX_RETRIES,
        max_rate_limit_retries: int = settings.MAX_RATE_LIMIT_RETRIES,
        backoff_base: float = settings.BACKOFF_BASE_SECONDS,
        backoff_max: float = settings.BACKOFF_MAX_SECONDS,
        rate_limiter: RateLimiter | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not access_token or not isinstance(access_token, str) or not access_token.strip():
            raise IntercomConfigError(
                "no Intercom access token: set [sources.intercom] access_token in .dlt/secrets.toml "
                "or the SOURCES__INTERCOM__ACCESS_TOKEN environment variable"
            )
        if not isinstance(intercom_version, str):
            raise IntercomConfigError(
                f"intercom_version must be a string such as '2.15', got {type(intercom_version).__name__}"
            )
        if intercom_version not in settings.SUPPORTED_VERSIONS:
            raise IntercomConfigError(
                f"Intercom-Version {intercom_version!r} is not one this connector is tested on: "
                f"use one of {', '.join(settings.SUPPORTED_VERSIONS)} (--intercom-version or intercom_version in config)"
            )
        self.base_url = resolve_base_url(region, base_url)
        self.region = region
        self.intercom_version = intercom_version
        self.max_retries = max_retries
        self.max_rate_limit_retries = max_rate_limit_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.stats = ClientStats()
        self.limiter = rate_limiter or RateLimiter(max_wait=settings.MAX_RATE_LIMIT_WAIT_SECONDS)
        pool = max(2, max_workers + settings.HTTP_POOL_EXTRA)
        self.max_workers = max_workers
        limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
        headers = {
            "Authorization": f"Bearer {access_token.strip()}",
            "Accept": "application/json",
            "Intercom-Version": intercom_version,
            "User-Agent": "intercom-elt/0.1 (dlt)",
        }
        # Requests go straight to the transport (see `_send`) unless the environment names a
        # proxy, which only httpx.Client knows how to route; both paths share one pool.
        if transport is None and not getproxies():
            transport = httpx.HTTPTransport(limits=limits)
        self._direct: httpx.BaseTransport | None = transport
        self._headers = httpx.Headers(headers)
        self._json_headers = httpx.Headers({**headers, "Content-Type": "application/json"})
        self._timeout = httpx.Timeout(timeout).as_dict()
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, limits=limits, transport=transport
        )
        self._me: dict[str, Any] | None = None
        self._data_attributes: dict[str, list[dict[str, Any]]] = {}
        self._cache_lock = threading.Lock()
        self._scroll_lock = threading.Lock()
        self._latency: float | None = None  # moving average of answer times, seconds
        # its own lock: `me()` holds `_cache_lock` while it sends a request (not reentrant)
        self._latency_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"IntercomClient(base_url={self.base_url!r}, version={self.intercom_version!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> IntercomClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ core request loop
    def _backoff(self, attempt: int, reason: str, template: str) -> None:
        delay = random.uniform(0, min(self.backoff_max, self.backoff_base * (2**attempt)))
        self.stats.add("retries", f"{template} {reason}")
        self.stats.add("backoff_seconds", amount=delay)
        logger.info("retrying %s after %s (attempt %d, sleeping %.2fs)", template, reason, attempt + 1, delay)
        time.sleep(delay)

    def request(
        self,
        endpoint: str,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        url: str | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """Send one API call and return its parsed JSON object.

        `endpoint` is a key of `settings.ENDPOINTS`; `url` overrides the path (e.g. a `pages.next`
        URL, which must point at our API host). Retries 5xx, timeouts, connection errors and
        malformed bodies with exponential backoff and full jitter; 429s wait for the reset.
        A call that is not `idempotent` (a scroll page: the server may have moved the scroll on
        before the answer was lost) is never resent after a failure; the caller restarts instead.
        """
        ep = settings.ENDPOINTS[endpoint]
        template = ep.template
        target = url if url is not None else ep.path.format(**(path_params or {}))
        if url is not None:
            target = self._same_origin(url)
        attempt = 0
        limited = 0
        while True:
            waited = self.limiter.acquire()
            if waited:
                self.stats.add("rate_limit_wait_seconds", amount=waited)
            self.stats.add("requests", template)
            try:
                sent = time.perf_counter()
                response = self._send(ep.method, target, params, json)
                self._observe_latency(time.perf_counter() - sent)
            except httpx.TransportError as exc:
                reason = type(exc).__name__
                if attempt >= self.max_retries or not idempotent:
                    raise IntercomTransientError(
                        f"{template}: {reason} persisted after {attempt + 1} attempts ({exc})",
                        endpoint=template,
                    ) from None
                self._backoff(attempt, reason, template)
                attempt += 1
                continue
            self.limiter.update(response.headers)
            status = response.status_code
            if status == 429:
                self.stats.add("rate_limited")
                self.limiter.exhausted()
                limited += 1
                if limited > self.max_rate_limit_retries:
                    raise IntercomRateLimitError(
                        f"{template}: still rate limited (429) after {limited} waits", status=429,
                        endpoint=template,
                    )
                if response.headers.get("x-ratelimit-reset") is None:
                    self._backoff(min(limited, 6), "429", template)
                else:
                    self.stats.add("retries", f"{template} 429")
                continue
            if status in _RETRYABLE_STATUS:
                if attempt >= self.max_retries or not idempotent:
                    code, message, request_id = _error_details(response)
                    raise IntercomTransientError(
                        f"{template}: HTTP {status} persisted after {attempt + 1} attempts "
                        f"({code or ''} {message or ''}).".replace(" ()", ""),
                        status=status, code=code, endpoint=template, request_id=request_id,
                    )
                self._backoff(attempt, f"HTTP {status}", template)
                attempt += 1
                continue
            if status >= 400:
                raise self._error_for(response, endpoint)
            try:
                body = orjson.loads(response.content)
                if not isinstance(body, dict):
                    raise ValueError(f"expected a JSON object, got {type(body).__name__}")
            except (orjson.JSONDecodeError, ValueError) as exc:
                if attempt >= self.max_retries or not idempotent:
                    raise IntercomMalformedResponseError(
                        f"{template}: HTTP {status} with a body that is not a JSON object after "
                        f"{attempt + 1} attempts ({exc})",
                        status=status, endpoint=template,
                    ) from None
                self._backoff(attempt, "malformed body", template)
                attempt += 1
                continue
            return body

    def _send(
        self, method: str, target: str, params: Mapping[str, Any] | None, json: Any
    ) -> httpx.Response:
        """One HTTP exchange, read to the end.

        Why not `httpx.Client.request`: its cookie, auth, redirect and URL-merging layers cost
        about 0.4 ms of CPU a call, a third of a call's cost, and a sync at Intercom's quota is
        bound by one Python process's CPU. None of those layers applies to Intercom's API, so
        the request goes to the client's transport directly.
        """
        if self._direct is None:  # a proxy from the environment: let httpx.Client route it
            return self._http.request(method, target, params=params, json=json)
        url = target if target.startswith(("http://", "https://")) else self.base_url + target
        body = orjson.dumps(json) if json is not None else None
        request = httpx.Request(
            method, url, params=params, content=body,
            headers=self._json_headers if body is not None else self._headers,
            extensions={"timeout": self._timeout},
        )
        response = self._direct.handle_request(request)
        try:
            response.read()
        finally:
            response.close()
        response.request = request
        return response

    def _observe_latency(self, seconds: float) -> None:
        with self._latency_lock:
            prev = self._latency
            self._latency = seconds if prev is None else 0.8 * prev + 0.2 * seconds

    def suggested_concurrency(self, max_workers: int | None = None) -> int:
        """Workers that keep the quota busy: calls/second allowed x observed latency, plus headroom.

        Why: with L seconds per call, a single worker makes 1/L calls a second; Intercom allows
        limit/10 s. More workers than that only queue in the rate limiter; fewer leave quota idle.
        Falls back to `max_workers` until both the limit and a latency sample are known.
        """
        cap = max(1, int(max_workers if max_workers is not None else self.max_workers))
        limit = self.limiter.snapshot().get("limit")
        with self._latency_lock:
            latency = self._latency
        if not limit or latency is None:
            return cap
        # X-RateLimit-Limit counts a 10-second window; past what our own CPU can send, more
        # threads only contend for the GIL and httpx's pool lock
        per_second = min(float(limit) / 10.0, settings.CLIENT_MAX_CALLS_PER_SECOND)
        return max(2, min(cap, math.ceil(per_second * latency * 1.5) + 2))

    def _same_origin(self, url: str) -> str:
        """Resolve a server-given next-page URL and refuse any other host (it would get our token)."""
        absolute = urljoin(self.base_url + "/", url)
        mine, theirs = urlsplit(self.base_url), urlsplit(absolute)
        if (mine.scheme, mine.netloc) != (theirs.scheme, theirs.netloc):
            raise IntercomAPIError(
                f"refusing to follow a next-page URL on another host ({theirs.netloc})"
            )
        return absolute

    def _error_for(self, response: httpx.Response, endpoint: str) -> IntercomAPIError:
        ep = settings.ENDPOINTS[endpoint]
        template = ep.template
        status = response.status_code
        code, message, request_id = _error_details(response)
        detail = f"HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
        common = {"status": status, "code": code, "endpoint": template, "request_id": request_id}
        if status == 401 and code in (None, "unauthorized"):
            return IntercomAuthError(
                f"{template}: the Intercom access token was rejected ({detail}). It is invalid or "
                "revoked: create a new access token in the Intercom Developer Hub and update "
                "[sources.intercom] access_token / SOURCES__INTERCOM__ACCESS_TOKEN.",
                **common,
            )
        if status in (401, 403):
            permission = ep.permission
            if code == "api_plan_restricted":
                hint = "this feature is not available on the workspace's Intercom plan"
            elif permission:
                hint = (
                    f"the token lacks the '{permission}' permission: enable it for your app in the "
                    "Intercom Developer Hub (Configure > Authentication), reinstall the app and use "
                    "the new token, or remove the streams that need it"
                )
            else:
                hint = "the token lacks the permission this endpoint needs"
            return IntercomPermissionError(
                f"{template}: access denied ({detail}): {hint}.", permission=permission, **common
            )
        if status == 404 and endpoint == "me":
            return IntercomRegionError(
                f"{template}: HTTP 404. The workspace is probably hosted in another region: set "
                f"region to one of {', '.join(settings.REGIONS)} (now {self.base_url}).",
                **common,
            )
        if status in (404, 410):
            return IntercomNotFoundError(f"{template}: {detail}", **common)
        return IntercomAPIError(f"{template}: {detail}", **common)

    # ------------------------------------------------------------------ endpoints
    def me(self) -> dict[str, Any]:
        """GET /me (cached): the token's admin with the workspace `app` (time zone, created_at)."""
        with self._cache_lock:
            if self._me is None:
                self._me = self.request("me")
            return self._me

    def workspace_timezone(self) -> str | None:
        """IANA time zone of the workspace; contacts search compares dates by day in it."""
        app = self.me().get("app")
        tz = app.get("timezone") if isinstance(app, dict) else None
        return tz if isinstance(tz, str) and tz else None

    def check_scopes(self, streams: Iterable[str] | None = None) -> dict[str, str | None]:
        """Probe each stream's permission with one cheap call: {stream: None | error text}."""
        result: dict[str, str | None] = {}
        probed: dict[str, str | None] = {}
        for stream in streams or settings.STREAMS:
            probe = settings.STREAM_PROBES[stream]
            if probe not in probed:
                try:
                    self._probe(probe)
                    probed[probe] = None
                except IntercomPermissionError as exc:
                    probed[probe] = str(exc)
            result[stream] = probed[probe]
        return result

    def _probe(self, endpoint: str) -> None:
        if endpoint.endswith("_search"):
            query = {"field": "updated_at", "operator": ">", "value": str(int(time.time()))}
            self.request(endpoint, json={"query": query, "pagination": {"per_page": 1}})
        elif endpoint == "companies_list":
            self.request(endpoint, params={"per_page": 1})
        elif endpoint == "activity_logs":
            self.request(endpoint, params={"created_at_after": str(int(time.time()) - 60)})
        elif endpoint == "data_attributes":
            self.request(endpoint, params={"model": "contact"})
        else:
            self.request(endpoint)

    def list_records(self, endpoint: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """One-page list endpoints (admins, tags, teams, segments, data_attributes)."""
        body = self.request(endpoint, params=params)
        key = settings.LIST_KEYS.get(endpoint, "data")
        records = body.get(key, body.get("data"))
        if not isinstance(records, list):
            raise IntercomMalformedResponseError(
                f"{settings.ENDPOINTS[endpoint].template}: answer has no '{key}' list", endpoint=endpoint
            )
        return [r for r in records if isinstance(r, dict)]

    def data_attributes(self, model: str) -> list[dict[str, Any]]:
        """GET /data_attributes?model=... once per client (used for typing and as a stream)."""
        with self._cache_lock:
            cached = self._data_attributes.get(model)
        if cached is None:
            cached = self.list_records("data_attributes", params={"model": model})
            with self._cache_lock:
                self._data_attributes[model] = cached
        return [dict(a) for a in cached]

    def search(
        self, endpoint: str, query: Mapping[str, Any], *, sort_field: str = "updated_at",
        per_page: int = settings.SEARCH_PAGE_SIZE,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of a search endpoint, ascending on `sort_field`; the cursor travels in the body."""
        starting_after: str | None = None
        while True:
            pagination: dict[str, Any] = {"per_page": per_page}
            if starting_after:
                pagination["starting_after"] = starting_after
            body = self.request(
                endpoint,
                json={"query": query, "sort": {"field": sort_field, "order": "ascending"}, "pagination": pagination},
            )
            data = body.get("data")
            if data is None:
                # conversations search answers with "conversations" in some versions
                data = body.get("conversations", [])
            if not isinstance(data, list):
                raise IntercomMalformedResponseError(f"{endpoint}: 'data' is not a list", endpoint=endpoint)
            yield [r for r in data if isinstance(r, dict)]
            nxt = (body.get("pages") or {}).get("next") if isinstance(body.get("pages"), dict) else None
            starting_after = nxt.get("starting_after") if isinstance(nxt, dict) else None
            if not starting_after or not data:
                return

    def get_conversation(self, conversation_id: str) -> dict[str, Any] | None:
        """GET /conversations/{id} with its parts (plain text bodies); None if it vanished (404)."""
        try:
            return self.request(
                "conversation", path_params={"id": conversation_id}, params={"display_as": "plaintext"}
            )
        except IntercomNotFoundError:
            self.stats.add("not_found_skipped", "GET /conversations/{id}")
            logger.info("conversation %s vanished before its detail fetch; skipped", conversation_id)
            return None

    def scroll_companies(self) -> Iterator[list[dict[str, Any]]]:
        """Every company via GET /companies/scroll, one scroll at a time per client.

        A busy scroll (400 scroll_exists) is waited out with backoff; a 5xx or an expired scroll
        (404) mid-way restarts from scratch, and companies already yielded are not yielded again.
        Only restarts in a row that brought no new company count against `SCROLL_MAX_RESTARTS`:
        a long scroll on a flaky day keeps going while it gets further, a scroll that keeps
        breaking at the same place gives up.
        """
        with self._scroll_lock:
            seen: set[str] = set()
            fruitless = 0
            while True:
                progressed = False
                try:
                    for page in self._scroll_once():
                        # a company without id passes on (kept aside downstream); never "None" for all
                        fresh = [c for c in page if c.get("id") is None or str(c["id"]) not in seen]
                        seen.update(str(c["id"]) for c in fresh if c.get("id") is not None)
                        if fresh:
                            progressed = True
                            yield fresh
                    return
                except (IntercomTransientError, IntercomNotFoundError) as exc:
                    if isinstance(exc, IntercomRateLimitError):
                        raise
                    self.stats.add("scroll_restarts")
                    fruitless = 0 if progressed else fruitless + 1
                    if fruitless > settings.SCROLL_MAX_RESTARTS:
                        raise IntercomScrollError(
                            f"GET /companies/scroll failed {fruitless} times in a row without reaching a new "
                            f"company ({exc})"
                        ) from None
                    logger.warning("companies scroll broke (%s); restarting it from scratch", exc)

    def _scroll_once(self) -> Iterator[list[dict[str, Any]]]:
        scroll_param: str | None = None
        busy_waited = 0.0
        attempt = 0
        while True:
            params = {"scroll_param": scroll_param} if scroll_param else None
            try:
                body = self.request("companies_scroll", params=params, idempotent=scroll_param is None)
            except IntercomAPIError as exc:
                if scroll_param is None and exc.status == 400 and exc.code == "scroll_exists":
                    delay = min(self.backoff_max, self.backoff_base * (2**attempt)) * random.uniform(0.5, 1.0)
                    if busy_waited + delay > settings.SCROLL_BUSY_MAX_WAIT_SECONDS:
                        raise IntercomScrollError(
                            "GET /companies/scroll: another scroll is open in this workspace (400 "
                            "scroll_exists) and did not expire in time; is another sync running?",
                            status=400, code="scroll_exists",
                        ) from None
                    self.stats.add("retries", "GET /companies/scroll scroll_exists")
                    logger.info("a companies scroll is already open; waiting %.1fs", delay)
                    time.sleep(delay)
                    busy_waited += delay
                    attempt += 1
                    continue
                raise
            data = body.get("data")
            if not isinstance(data, list):
                raise IntercomMalformedResponseError("GET /companies/scroll: 'data' is not a list")
            if not data:
                return
            yield [c for c in data if isinstance(c, dict)]
            scroll_param = body.get("scroll_param") or scroll_param
            if not scroll_param:
                return

    def activity_logs(self, created_at_after: int, created_at_before: int | None) -> Iterator[list[dict[str, Any]]]:
        """Pages of one activity-log window; `pages.next` is followed as a URL."""
        params: dict[str, str] | None = {"created_at_after": str(int(created_at_after))}
        if created_at_before is not None and params is not None:
            params["created_at_before"] = str(int(created_at_before))
        next_url: str | None = None
        while True:
            body = self.request("activity_logs", params=params if next_url is None else None, url=next_url)
            logs = body.get("activity_logs", [])
            if not isinstance(logs, list):
                raise IntercomMalformedResponseError("GET /admins/activity_logs: 'activity_logs' is not a list")
            yield [r for r in logs if isinstance(r, dict)]
            pages = body.get("pages")
            nxt = pages.get("next") if isinstance(pages, dict) else None
            if isinstance(nxt, dict):  # tolerate the cursor-list shape too
                nxt = nxt.get("url")
            if not nxt or not isinstance(nxt, str) or not logs:
                return
            next_url = nxt

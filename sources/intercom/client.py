"""The HTTP engine under every Intercom call: auth, region, version, retries, rate limit, stats,
and the one page loop (`paginate`, driven by the pagers of `pagers.py`).

Intercom's endpoints (what to ask, where the records are) are catalogued above it, in `api.py`.
It knows nothing of dlt. One instance serves every stream and is thread-safe, so the
conversation-detail pool shares its rate limiter and its statistics; each thread keeps its own
connection (transport.py).
The access token lives only in the request headers (the httpx client's defaults and the header
sets `_send` reuses): it is never logged, never put into an exception message and never shown by
`repr`.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit
from urllib.request import getproxies

import httpx
import orjson

from . import settings
from .errors import (
    IntercomAPIError,
    IntercomConfigError,
    IntercomMalformedResponseError,
    IntercomRateLimitError,
    IntercomTransientError,
    error_for_status,
    no_token_message,
)
from .pagers import P, PageParse, Pager, PageRequest, RecordsAt
from .rate_limit import RateLimiter
from .transport import ConnectionPerThread

logger = logging.getLogger(__name__)

_RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
_URLS_KEPT = 256  # parsed URLs a client keeps (`HttpClient._url`): the search paths, the first detail paths


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


def api_error(response: httpx.Response, endpoint: str, base_url: str) -> IntercomAPIError:
    """The typed error of a 4xx answer (its wording lives with the error types)."""
    code, message, request_id = _error_details(response)
    return error_for_status(
        settings.ENDPOINTS[endpoint], endpoint, response.status_code, code, message, request_id, base_url
    )


@dataclass(frozen=True)
class _Retry:
    """A failed attempt worth another: why, and the error to raise once the budget is spent."""

    reason: str
    give_up: Callable[[int], IntercomAPIError]  # attempts (or 429 waits) made -> the error
    rate_limited: bool = False
    reset_known: bool = True  # a 429 with X-RateLimit-Reset: the limiter waits for it


def _transport_failure(template: str, exc: httpx.TransportError) -> _Retry:
    reason = type(exc).__name__
    return _Retry(reason, lambda n: IntercomTransientError(
        f"{template}: {reason} persisted after {n} attempts ({exc})", endpoint=template,
    ))


def _rate_limited(template: str, response: httpx.Response) -> _Retry:
    return _Retry(
        "429",
        lambda n: IntercomRateLimitError(
            f"{template}: still rate limited (429) after {n} waits", status=429, endpoint=template
        ),
        rate_limited=True,
        reset_known=response.headers.get("x-ratelimit-reset") is not None,
    )


def _server_failure(template: str, response: httpx.Response) -> _Retry:
    status = response.status_code

    def give_up(n: int) -> IntercomAPIError:
        code, message, request_id = _error_details(response)
        return IntercomTransientError(
            f"{template}: HTTP {status} persisted after {n} attempts "
            f"({code or ''} {message or ''}).".replace(" ()", ""),
            status=status, code=code, endpoint=template, request_id=request_id,
        )

    return _Retry(f"HTTP {status}", give_up)


def _parse_body(template: str, response: httpx.Response) -> dict[str, Any] | _Retry:
    """The answer's JSON object; a body that is not one is retried like a 5xx."""
    status = response.status_code
    try:
        body = orjson.loads(response.content)
        if not isinstance(body, dict):
            raise ValueError(f"expected a JSON object, got {type(body).__name__}")
    except (orjson.JSONDecodeError, ValueError) as exc:
        problem = str(exc)
        return _Retry("malformed body", lambda n: IntercomMalformedResponseError(
            f"{template}: HTTP {status} with a body that is not a JSON object after {n} attempts ({problem})",
            status=status, endpoint=template,
        ))
    return body


def records_in(body: Mapping[str, Any], where: RecordsAt, template: str) -> list[dict[str, Any]]:
    """The records of one page (dict elements only), found as `where` says."""
    present = None
    for key in where.keys:
        value = body.get(key)
        if isinstance(value, list):
            records = [r for r in value if isinstance(r, dict)]
            if len(records) < len(value):  # not a record at all (null, a string): nothing to keep aside
                logger.warning("%s: %d element(s) of '%s' were not objects and were skipped: %s", template,
                               len(value) - len(records), key,
                               json.dumps([r for r in value if not isinstance(r, dict)][:3], default=str)[:200])
            return records
        if value is not None and present is None:
            present = key
    if (where.strict and present is not None) or where.required:
        raise IntercomMalformedResponseError(
            f"{template}: '{present or where.keys[0]}' is not a list", endpoint=template
        )
    return []


_Self = TypeVar("_Self", bound="HttpClient")


class HttpClient:
    """Synchronous, thread-safe HTTP engine with one retry loop, one page loop and a shared limiter."""

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
            raise IntercomConfigError(no_token_message())
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
        # Requests go straight to the transport (see `_send`), a connection per thread
        # (transport.py), unless the environment names a proxy, which only httpx.Client knows how
        # to route: then httpx.Client's own pool serves every thread.
        if transport is None and not getproxies():
            transport = ConnectionPerThread()
        self._direct: httpx.BaseTransport | None = transport
        self._headers = httpx.Headers(headers)
        self._json_headers = httpx.Headers({**headers, "Content-Type": "application/json"})
        self._timeout = httpx.Timeout(timeout).as_dict()
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, limits=limits, transport=transport
        )
        self._urls: dict[str, httpx.URL] = {}  # `_url`'s parsed targets
        self._latency: float | None = None  # moving average of answer times, seconds
        # its own lock: `api.IntercomClient.me()` holds a lock while it sends a request
        self._latency_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, version={self.intercom_version!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self: _Self) -> _Self:
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
        body = self._call(endpoint, path_params, params, json, url, idempotent, None)
        assert isinstance(body, dict)
        return body

    def _call(
        self, endpoint: str, path_params: Mapping[str, str] | None, params: Mapping[str, Any] | None, json: Any,
        url: str | None, idempotent: bool, parse: PageParse[P] | None,
    ) -> dict[str, Any] | P:
        """`request`, with the body read by `parse` when it can (else orjson decodes it)."""
        ep = settings.ENDPOINTS[endpoint]
        target = self._same_origin(url) if url is not None else ep.path.format(**(path_params or {}))
        attempt = limited = 0
        while True:
            outcome = self._exchange(endpoint, ep, target, params, json, parse)
            if not isinstance(outcome, _Retry):
                return outcome
            if outcome.rate_limited:
                limited += 1
                if limited > self.max_rate_limit_retries:
                    raise outcome.give_up(limited)
                self._wait_after_429(outcome, limited, ep.template)
                continue
            if attempt >= self.max_retries or not idempotent:
                raise outcome.give_up(attempt + 1)
            self._backoff(attempt, outcome.reason, ep.template)
            attempt += 1

    def _exchange(
        self, endpoint: str, ep: settings.Endpoint, target: str, params: Mapping[str, Any] | None, json: Any,
        parse: PageParse[P] | None,
    ) -> dict[str, Any] | P | _Retry:
        """One attempt: wait for the limiter, send, then judge the answer (body, retry, or raise)."""
        waited = self.limiter.acquire()
        if waited:
            self.stats.add("rate_limit_wait_seconds", amount=waited)
        self.stats.add("requests", ep.template)
        try:
            sent = time.perf_counter()
            response = self._send(ep.method, target, params, json)
            self._observe_latency(time.perf_counter() - sent)
            self.limiter.update(response.headers)
        except httpx.TransportError as exc:
            return _transport_failure(ep.template, exc)
        finally:
            self.limiter.settled()
        return self._judge(endpoint, ep, response, parse)

    def _judge(
        self, endpoint: str, ep: settings.Endpoint, response: httpx.Response, parse: PageParse[P] | None,
    ) -> dict[str, Any] | P | _Retry:
        """The body of a good answer, a `_Retry` for a passing failure, or the error it means."""
        status = response.status_code
        if status == 429:
            self.stats.add("rate_limited")
            self.limiter.exhausted()
            return _rate_limited(ep.template, response)
        if status in _RETRYABLE_STATUS:
            return _server_failure(ep.template, response)
        if status >= 400:
            raise api_error(response, endpoint, self.base_url)
        parsed = parse(response.content) if parse is not None else None
        return parsed if parsed is not None else _parse_body(ep.template, response)

    def _wait_after_429(self, outcome: _Retry, limited: int, template: str) -> None:
        """The limiter waits for a known reset on the next acquire; without one, back off."""
        if outcome.reset_known:
            self.stats.add("retries", f"{template} 429")
        else:
            self._backoff(min(limited, 6), "429", template)

    # ------------------------------------------------------------------ the page loop
    def paginate(
        self,
        endpoint: str,
        pager: Pager,
        first: PageRequest | None = None,
        *,
        records: RecordsAt = RecordsAt(),  # noqa: B008 - frozen, shared safely
        max_pages: int | None = None,
        parse: PageParse[P] | None = None,
    ) -> Iterator[list[dict[str, Any]] | P]:
        """Every page of `endpoint` (its records, dicts only), the next request chosen by `pager`;
        a page `parse` reads (returns not None) is handed on as it made it."""
        request: PageRequest | None = first or PageRequest()
        pages = 0
        while request is not None:
            if max_pages is not None and pages >= max_pages:
                logger.warning("%s: stopped after %d pages", settings.ENDPOINTS[endpoint].template, max_pages)
                return
            body = self._page(endpoint, pager, request, parse)
            page: list[dict[str, Any]] | P
            if isinstance(body, dict):
                page = records_in(body, records, settings.ENDPOINTS[endpoint].template)
                envelope: Mapping[str, Any] = body
            else:
                page, envelope = body, body.envelope
            pages += 1
            # asked before the page is handed on, so a pager's view of the body (a search's
            # `total_count`) is there when the caller looks at the page
            request = pager.next_request(request, envelope, page)
            yield page

    def _page(self, endpoint: str, pager: Pager, request: PageRequest, parse: PageParse[P] | None) -> dict[str, Any] | P:
        """One page's body; a failure the pager may wait out (a busy scroll) is resent after the wait."""
        while True:
            try:
                return self._call(
                    endpoint, request.path_params, request.params, request.json, request.url, request.idempotent, parse,
                )
            except IntercomAPIError as exc:
                delay = pager.wait_before_retry(exc, request)
                if delay is None:
                    raise
                reason = exc.code or exc.status
            template = settings.ENDPOINTS[endpoint].template
            self.stats.add("retries", f"{template} {reason}")
            logger.info("%s answered %s; waiting %.1fs before asking again", template, reason, delay)
            time.sleep(delay)

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
        body = orjson.dumps(json) if json is not None else None
        request = httpx.Request(
            method, self._url(target), params=params, content=body,
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

    def _url(self, target: str) -> httpx.URL:
        """`target` as httpx parses it, once: a split search asks the same URL a thousand times, and
        httpx's parse costs about 40 us (a page of the search, in this process, costs 250)."""
        url = self._urls.get(target)
        if url is None:
            url = httpx.URL(target if target.startswith(("http://", "https://")) else self.base_url + target)
            if len(self._urls) < _URLS_KEPT:
                self._urls[target] = url
        return url

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

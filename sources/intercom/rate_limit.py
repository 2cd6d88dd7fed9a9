"""One rate limiter shared by every worker of a client, fed by Intercom's X-RateLimit-* headers.

Intercom enforces its per-minute budget in 10-second windows and reports `X-RateLimit-Remaining`
and `X-RateLimit-Reset` (Unix seconds) on every authenticated answer. The limiter spreads the
remaining calls evenly until the reset once the budget runs low, waits for the reset when it is
exhausted (`remaining == 0` is a real value), and never waits when the headers are absent.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime

logger = logging.getLogger(__name__)


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return int(float(raw))
    except (TypeError, ValueError):
        return None


def seconds_until_reset(headers: Mapping[str, str], now: float, max_wait: float) -> float | None:
    """Seconds until `X-RateLimit-Reset`, measured on the server's clock when it sent a `Date`.

    Using the server's `Date` makes the wait immune to clock skew between us and Intercom. The
    result is clamped to [0, max_wait]; None when the header is missing or unparsable.
    """
    reset = _int_header(headers, "x-ratelimit-reset")
    if reset is None:
        return None
    server_now = now
    date = headers.get("date")
    if date:
        try:
            server_now = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            server_now = now
        # `Date` has whole seconds: when our clock falls inside that second the clocks agree, and
        # ours is the precise one (the truncated `Date` would add up to 1 s to every wait)
        if 0.0 <= now - server_now < 1.0:
            server_now = now
    return max(0.0, min(float(reset) - server_now, max_wait))


class RateLimiter:
    """Thread-safe pacing of requests from the last seen rate-limit headers.

    `acquire()` is called before every request and returns the seconds it slept; `update()` after
    every answer, then `settled()` (also after a request that got no answer). Below `low_water`
    remaining calls, requests are spaced (reset - now) / remaining apart, handing out slots under
    a lock so concurrent workers queue instead of bursting.
    When a new window starts (the reset passed, or an answer reports a later one), workers still
    sleeping on the old window's slots are woken: the new window's budget is not left idle.
    """

    def __init__(
        self,
        *,
        low_water_fraction: float = 0.1,
        min_low_water: int = 10,
        max_wait: float = 60.0,
        jitter: float = 0.1,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._lock = threading.Lock()
        self._new_window = threading.Condition(self._lock)
        self._window = 0  # bumped when a new rate-limit window starts
        self._custom_sleep = sleep is not time.sleep
        self._low_water_fraction = low_water_fraction
        self._min_low_water = min_low_water
        self._max_wait = max_wait
        self._jitter = jitter
        self._clock = clock
        self._sleep = sleep
        self._limit: int | None = None
        self._remaining: int | None = None
        self._reset_at: float | None = None  # on our clock
        self._next_slot = 0.0
        self._in_flight = 0  # requests acquired and not yet settled

    def _low_water(self) -> int:
        if self._limit:
            return max(self._min_low_water, int(self._limit * self._low_water_fraction))
        return self._min_low_water

    def update(self, headers: Mapping[str, str]) -> None:
        """Record the budget reported by an answer (any status, 429 included)."""
        remaining = _int_header(headers, "x-ratelimit-remaining")
        if remaining is None:
            return
        now = self._clock()
        delay = seconds_until_reset(headers, now, self._max_wait)
        with self._lock:
            self._limit = _int_header(headers, "x-ratelimit-limit") or self._limit
            reset_at = now + delay if delay is not None else None
            # answers arrive out of order from several workers: keep the most pessimistic view
            # of the current window, start fresh when a later window is reported
            if (
                self._reset_at is None
                or reset_at is None
                or reset_at > self._reset_at + 0.5
                or self._remaining is None
            ):
                if self._reset_at is not None and reset_at is not None and reset_at > self._reset_at + 0.5:
                    self._start_window()
                # the other requests in flight may reach the server after this answer's count: the
                # window's first answer cannot say, so they are counted as spent (without this, a
                # new window's budget was overdrawn by up to the workers in flight: 429s)
                self._remaining, self._reset_at = max(0, remaining - max(0, self._in_flight - 1)), reset_at
            else:
                self._remaining = min(self._remaining, remaining)

    def settled(self) -> None:
        """A request acquired before has its answer (after `update`), or failed without one."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    def exhausted(self) -> None:
        """Mark the budget as spent (a 429): every worker waits for the reset."""
        with self._lock:
            self._remaining = 0

    def acquire(self) -> float:
        """Wait, if the budget requires it, before sending one request; returns seconds slept."""
        with self._lock:
            now = self._clock()
            wait = 0.0
            if self._remaining is not None and self._reset_at is not None:
                if now >= self._reset_at:
                    # the window has passed: the next answer tells us the new budget
                    self._remaining, self._reset_at = None, None
                    self._start_window()
                elif self._remaining <= 0:
                    wait = self._reset_at - now + random.uniform(0, self._jitter)
                    self._next_slot = max(self._next_slot, now + wait)
                elif self._remaining <= self._low_water():
                    interval = (self._reset_at - now) / self._remaining
                    slot = max(now, self._next_slot)
                    self._next_slot = slot + interval
                    wait = slot - now
                    self._remaining -= 1
                else:
                    self._remaining -= 1
            self._in_flight += 1
            window = self._window
        if wait <= 0:
            return 0.0
        logger.debug("rate limit: waiting %.2fs before the next request", wait)
        if self._custom_sleep:
            self._sleep(wait)
            return wait
        started = time.monotonic()
        with self._new_window:
            self._new_window.wait_for(lambda: self._window != window, timeout=wait)
        return time.monotonic() - started

    def _start_window(self) -> None:
        """A new window (lock held): forget the old slots and wake their sleepers."""
        self._window += 1
        self._next_slot = 0.0
        self._new_window.notify_all()

    def snapshot(self) -> dict[str, float | int | None]:
        """Current view of the budget, for logs and tests."""
        with self._lock:
            return {"limit": self._limit, "remaining": self._remaining, "reset_at": self._reset_at}

"""Thread-safe request counters, keyed by endpoint template and status.

Why: tests assert how many calls a sync made (e.g. "parents read once", "no detail call for an
unchanged conversation"), so the server counts every request by its route template
(``"GET /conversations/{id}"``), not by its concrete URL.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class RequestLog:
    """Counts per "METHOD /template", per status, and per (template, status)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._endpoints: Counter[str] = Counter()
        self._statuses: Counter[int] = Counter()
        self._by_pair: Counter[tuple[str, int]] = Counter()
        self._total = 0

    def record(self, endpoint: str, status: int) -> None:
        """Count one finished request."""
        with self._lock:
            self._endpoints[endpoint] += 1
            self._statuses[status] += 1
            self._by_pair[(endpoint, status)] += 1
            self._total += 1

    def endpoints(self) -> dict[str, int]:
        """{"GET /contacts": 3, ...}."""
        with self._lock:
            return dict(self._endpoints)

    def statuses(self) -> dict[int, int]:
        """{200: 10, 429: 1}."""
        with self._lock:
            return dict(self._statuses)

    def count(self, endpoint: str, status: int | None = None) -> int:
        """Calls to one template, optionally only those that answered `status`."""
        with self._lock:
            if status is None:
                return self._endpoints.get(endpoint, 0)
            return self._by_pair.get((endpoint, status), 0)

    @property
    def total(self) -> int:
        """All requests counted since the last reset."""
        with self._lock:
            return self._total

    def reset(self) -> None:
        """Forget everything."""
        with self._lock:
            self._endpoints.clear()
            self._statuses.clear()
            self._by_pair.clear()
            self._total = 0

    def snapshot(self) -> dict[str, Any]:
        """JSON view for GET /_emulator/requests."""
        with self._lock:
            by_status: dict[str, dict[str, int]] = {}
            for (endpoint, status), n in self._by_pair.items():
                by_status.setdefault(endpoint, {})[str(status)] = n
            return {
                "total": self._total,
                "endpoints": dict(self._endpoints),
                "statuses": {str(k): v for k, v in self._statuses.items()},
                "by_endpoint_status": by_status,
            }

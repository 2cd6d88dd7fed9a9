"""The virtual clock: real time plus an offset that only tests move forward.

Tests advance time instead of sleeping, so "a record updated 3 minutes ago" or "a scroll idle for
a minute" can be exercised in milliseconds while the server still runs on real wall time.
"""

from __future__ import annotations

import threading
import time


class VirtualClock:
    """now() = real time + offset; the offset never decreases, so time never runs backwards."""

    def __init__(self, offset: int = 0) -> None:
        if offset < 0:
            raise ValueError("offset must be >= 0: the clock never runs behind real time")
        self._offset = int(offset)
        self._frozen: float | None = None
        self._lock = threading.Lock()

    @property
    def offset(self) -> int:
        """Seconds the virtual clock is ahead of real time."""
        return self._offset

    def _real(self) -> float:
        return self._frozen if self._frozen is not None else time.time()

    def now(self) -> int:
        """Virtual now as integer unix seconds (Intercom's timestamp unit)."""
        return int(self._real()) + self._offset

    def now_float(self) -> float:
        """Virtual now with sub-second precision (for rate-limit windows)."""
        return self._real() + self._offset

    def freeze(self) -> int:
        """Stop real time from flowing (only advance() moves now): exact timestamps in tests."""
        with self._lock:
            if self._frozen is None:
                self._frozen = time.time()
        return self.now()

    def unfreeze(self) -> int:
        """Let real time flow again; now() jumps forward to real time + offset (never backwards)."""
        with self._lock:
            self._frozen = None
        return self.now()

    @property
    def frozen(self) -> bool:
        return self._frozen is not None

    def advance(self, seconds: float) -> int:
        """Move virtual time forward by `seconds` (>= 0); returns the new now()."""
        if seconds < 0:
            raise ValueError("the virtual clock only moves forward")
        with self._lock:
            self._offset += int(seconds)
        return self.now()

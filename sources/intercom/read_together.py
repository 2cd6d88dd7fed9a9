"""Pages that reader threads want parsed at about the same moment, parsed by one call (issue 17).

Why: each call of Arrow's JSON reader costs about 0.5 ms before it reads a byte, for the builders
of the contacts schema's hundred fields (some 6 us a field, whatever the page holds), against
about 1.2 ms to parse a page of 150 contacts. Called once for several pages joined as lines, it
pays that once (docs/benchmarks.md).

How: flat combining. A thread that wants a page read queues it; if no thread is reading, it
becomes the reader: it waits up to `gather` seconds for `enough` pages to be queued, takes the
queue, reads it, hands every thread its result and wakes them. Pages queued meanwhile are taken
by the next thread that wakes without a result. A reader that found no company does not wait
the next few times (a single chain, an incremental run's few pages): waiting only delays it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Key = TypeVar("Key")  # grouped by identity: a JSON lane's plan is not hashable
Result = TypeVar("Result")

_ALONE_SKIPS = 8  # after a wait that found no company, the next readers of this many do not wait


@dataclass
class _Queued(Generic[Key, Result]):
    content: bytes
    key: Key
    result: Result | None = None
    done: bool = False


class ReadTogether(Generic[Key, Result]):
    """`read(content, key)` for many threads, through `read_many(contents, key)` (one result per
    content, in order) called with every content queued with the same key (see module doc)."""

    def __init__(
        self, read_many: Callable[[Sequence[bytes], Key], list[Result]], gather: float = 0.0, enough: int = 1,
    ) -> None:
        self._read_many = read_many
        self.gather = gather
        self.enough = enough
        self._lock = threading.Lock()
        self._turn = threading.Condition(self._lock)  # a reader done: the threads waiting for results
        self._gathered = threading.Condition(self._lock)  # a page queued: the reader waiting for company
        self._queue: list[_Queued[Key, Result]] = []
        self._reading = False
        self._gathering = False
        self._alone = 0  # reads left that do not wait (see _ALONE_SKIPS)
        self.calls = 0  # calls of `read_many`
        self.contents = 0  # contents they read

    def read(self, content: bytes, key: Key) -> Result | None:
        """`content` read with the others queued meanwhile; None when the thread that read it failed."""
        mine: _Queued[Key, Result] = _Queued(content, key)
        with self._lock:
            self._queue.append(mine)
            if self._gathering and len(self._queue) >= self.enough:
                self._gathered.notify()
            while not mine.done:
                if not self._reading:
                    self._reading = True
                    break
                self._turn.wait()
            else:
                return mine.result
        taken: list[_Queued[Key, Result]] = []
        try:
            with self._lock:
                taken = self._take()
            for key, group in _by_key(taken):
                results = self._read_many([queued.content for queued in group], key)
                for queued, result in zip(group, results, strict=True):
                    queued.result = result
                self.calls += 1
                self.contents += len(group)
        finally:  # a failure here is this thread's; the others' pages are left to the usual path
            with self._lock:
                for queued in taken:
                    queued.done = True
                self._reading = False
                self._turn.notify_all()
        return mine.result

    def _take(self) -> list[_Queued[Key, Result]]:
        """The queue, once `enough` pages are in it or `gather` passed (lock held)."""
        if self.gather and len(self._queue) < self.enough:
            if self._alone:
                self._alone -= 1
            else:
                self._gathering = True
                self._gathered.wait_for(lambda: len(self._queue) >= self.enough, timeout=self.gather)
                self._gathering = False
                if len(self._queue) == 1:
                    self._alone = _ALONE_SKIPS
        taken, self._queue = self._queue, []
        return taken


def _by_key(queued: list[_Queued[Key, Result]]) -> list[tuple[Key, list[_Queued[Key, Result]]]]:
    groups: dict[int, tuple[Key, list[_Queued[Key, Result]]]] = {}
    for item in queued:
        groups.setdefault(id(item.key), (item.key, []))[1].append(item)
    return list(groups.values())

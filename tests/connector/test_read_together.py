"""Pages queued by several threads at once are read by one call, each thread gets its own result,
and a thread alone is not kept waiting (read_together.py)."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence

import pytest

from intercom_elt.sources.intercom.read_together import ReadTogether


class Reads:
    """`read_many` for the tests: each content upper-cased, the calls noted; a key "fail" raises."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[bytes]]] = []
        self.lock = threading.Lock()

    def __call__(self, contents: Sequence[bytes], key: str) -> list[bytes]:
        with self.lock:
            self.calls.append((key, list(contents)))
        if key == "fail":
            raise RuntimeError("read failed")
        time.sleep(0.01)
        return [content.upper() for content in contents]


def at_once(calls: Sequence[Callable[[], object]]) -> list[object]:
    """Each call in a thread of its own, all started at once (as the window readers call); each
    one's result, or the error it raised."""
    results: list[object] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def _in_threads(together: ReadTogether[str, bytes], items: list[tuple[bytes, str]]) -> list[object]:
    return at_once([functools.partial(together.read, content, key) for content, key in items])


def test_pages_queued_together_are_read_by_one_call() -> None:
    reads = Reads()
    together = ReadTogether(reads, gather=2.0, enough=6)  # the first waits for the other five
    items = [(f"page {i}".encode(), "plan") for i in range(6)]
    assert _in_threads(together, items) == [content.upper() for content, _ in items]
    assert len(reads.calls) == 1 and sorted(reads.calls[0][1]) == sorted(c for c, _ in items)
    assert (together.calls, together.contents) == (1, 6)


def test_pages_of_two_keys_are_read_by_a_call_each() -> None:
    reads = Reads()
    together = ReadTogether(reads, gather=2.0, enough=4)
    items = [(b"a1", "a"), (b"b1", "b"), (b"a2", "a"), (b"b2", "b")]
    assert _in_threads(together, items) == [b"A1", b"B1", b"A2", b"B2"]
    assert sorted((key, sorted(contents)) for key, contents in reads.calls) == [("a", [b"a1", b"a2"]), ("b", [b"b1", b"b2"])]


def test_a_failed_read_fails_the_thread_that_made_it_and_leaves_the_others_none() -> None:
    together: ReadTogether[str, bytes] = ReadTogether(Reads(), gather=2.0, enough=3)
    results = _in_threads(together, [(b"x", "fail"), (b"y", "fail"), (b"z", "fail")])
    failed = [r for r in results if isinstance(r, RuntimeError)]
    assert len(failed) == 1 and results.count(None) == 2, results
    assert together.read(b"again", "plan") == b"AGAIN"  # the next read is not stuck behind the failed one


def test_a_thread_alone_waits_once_then_not_for_a_while() -> None:
    reads = Reads()
    together = ReadTogether(reads, gather=1.0, enough=4)
    started = time.monotonic()
    assert together.read(b"first", "plan") == b"FIRST"
    first = time.monotonic() - started
    started = time.monotonic()
    for n in range(8):
        assert together.read(b"next %d" % n, "plan") == b"NEXT %d" % n
    after = time.monotonic() - started
    assert first >= 1.0 and after < 1.0, (first, after)  # waited once for company, then not (8 x 10 ms)


@pytest.mark.parametrize("gather", [0.0, 0.005])
def test_many_threads_each_get_their_own_page(gather: float) -> None:
    reads = Reads()
    together = ReadTogether(reads, gather=gather, enough=4)
    items = [(f"page {i}".encode(), "plan") for i in range(40)]
    assert _in_threads(together, items) == [content.upper() for content, _ in items]
    assert sorted(c for _, contents in reads.calls for c in contents) == sorted(c for c, _ in items)
    assert together.contents == 40 and together.calls == len(reads.calls) < 40

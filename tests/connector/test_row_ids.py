"""The fast path's `_dlt_id`s (arrow_items._RowIds): unique like dlt's random ones, 16 base64
characters of 12 bytes, but a shared random prefix and a count, which DuckDB compresses."""

from __future__ import annotations

import base64
import os
import threading

import pytest

from intercom_elt.sources.intercom.arrow_items import _new_id_array, _new_ids, _RowIds


def _decoded(ids: list[str]) -> list[bytes]:
    assert all(len(i) == 16 for i in ids)
    return [base64.b64decode(i, validate=True) for i in ids]


def test_ids_are_unique_and_share_a_prefix_that_counts_up():
    ids = _new_ids(1_000) + _new_id_array(3_000).to_pylist() + _new_ids(7)
    raw = _decoded(ids)
    assert len(set(ids)) == len(ids) == 4_007
    assert all(len(r) == 12 for r in raw)
    counts = sorted(int.from_bytes(r[9:], "big") for r in raw)
    assert counts == list(range(counts[0], counts[0] + 4_007))  # one run of counts, none twice
    assert len({r[:9] for r in raw}) == 1


def test_a_new_prefix_when_the_count_runs_out():
    ids = _RowIds(per_prefix=5)
    first = ids.encoded(3)
    second = ids.encoded(3)  # 3 + 3 > 5: a new prefix, counted from 0 again
    third = ids.encoded(2)  # 3 + 2 = 5: still the second prefix
    raw = [_decoded([e[i : i + 16].decode() for i in range(0, len(e), 16)]) for e in (first, second, third)]
    assert [int.from_bytes(r[9:], "big") for r in raw[0] + raw[1] + raw[2]] == [0, 1, 2, 0, 1, 2, 3, 4]
    prefixes = [{r[:9] for r in part} for part in raw]
    assert prefixes[1] == prefixes[2] and prefixes[0].isdisjoint(prefixes[1])
    assert len({r for part in raw for r in part}) == 8


def test_threads_drawing_at_once_get_distinct_ids():
    drawn: list[list[str]] = []

    def draw() -> None:
        mine = [i for _ in range(200) for i in _new_ids(50)]
        drawn.append(mine)

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for mine in drawn for i in mine]
    assert len(every) == 40_000 and len(set(every)) == 40_000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork: POSIX only")
def test_a_forked_child_does_not_count_on_from_its_parents_prefix():
    _new_ids(1)  # the parent has drawn its prefix
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its ids, then out
        os.write(write, "".join(_new_ids(4)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    child = [text[i : i + 16] for i in range(0, len(text), 16)]
    parent = _new_ids(4)
    assert len(child) == 4
    assert {base64.b64decode(i)[:9] for i in child}.isdisjoint({base64.b64decode(i)[:9] for i in parent})

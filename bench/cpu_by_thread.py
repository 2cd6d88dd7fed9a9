"""Run `intercom-sync` with its CPU split by thread and by step, for bench/profile_records.py --threads.

Why: a profiler's own cost (yappi: about 4 x) and the GIL waits a sampling profiler counts blur a
sync whose work is spread over a reading thread, HTTP readers, dlt's main thread and its load
pool. `time.thread_time` is each thread's own CPU, exact and nearly free: taken when a thread
ends (by thread kind), and around a few named steps (their outermost call in each thread).

    python -m bench.cpu_by_thread OUT.json run --base-url ... --streams contacts ...
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

# (module, attribute path, step): what the sync's own CPU is spent on, step by step
STEPS: tuple[tuple[str, str, str], ...] = (
    ("intercom_elt.sources.intercom.client", "HttpClient._send", "HTTP request and response (httpx)"),
    ("intercom_elt.sources.intercom.client", "_parse_body", "JSON decoding (orjson)"),
    ("intercom_elt.sources.intercom.columnar", "Columnizer.rows", "the walk into typed rows (columnar.py)"),
    ("intercom_elt.sources.intercom.arrow_pages", "PageParser.__call__", "pages parsed by the readers (arrow_pages.py)"),
    ("intercom_elt.sources.intercom.arrow_pages", "_epochs", "  cursors of parsed pages"),
    ("intercom_elt.sources.intercom.arrow_pages", "_ids", "  ids of parsed pages"),
    ("intercom_elt.sources.intercom.arrow_pages", "ArrowPage.take", "  records kept of parsed pages"),
    ("intercom_elt.sources.intercom.arrow_pages", "ArrowPage.lists_cut", "  cut lists of parsed pages"),
    ("intercom_elt.sources.intercom.json_lane", "JsonLane.take", "whole pages by Arrow's JSON reader (json_lane.py)"),
    ("intercom_elt.sources.intercom.json_lane", "JsonLane.take_parsed", "the readers' pages as columns (json_lane.py)"),
    ("intercom_elt.sources.intercom.json_lane", "JsonLane._columns", "  of which columns from the parsed page"),
    ("intercom_elt.sources.intercom.json_lane", "JsonLane.learn", "noting what the walk took (json_lane.py)"),
    ("intercom_elt.sources.intercom.arrow_items", "ArrowBatch.add", "batching rows, _dlt_id (arrow_items.py)"),
    ("intercom_elt.sources.intercom.arrow_items", "ArrowBatch.add_page", "batching pages, _dlt_id (arrow_items.py)"),
    ("intercom_elt.sources.intercom.arrow_items", "ArrowBatch._table", "Arrow tables (arrow_items.py)"),
    ("dlt.extract.extractors", "ArrowExtractor.write_items", "dlt: items to files (schema, parquet)"),
    ("dlt.extract.extractors", "Extractor.write_items", "dlt: items to files (schema, parquet)"),
    ("dlt.common.data_writers.writers", "ArrowToParquetWriter.write_data", "  of which parquet writing"),
)

steps: Counter[str] = Counter()
threads: Counter[str] = Counter()
_active = threading.local()


def _timed(fn: Callable[..., Any], step: str) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        busy = getattr(_active, "steps", None)
        if busy is None:
            busy = _active.steps = set()
        if step in busy:  # a nested call of the same step: counted by the outer one
            return fn(*args, **kwargs)
        busy.add(step)
        started = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            steps[step] += time.thread_time() - started
            busy.discard(step)

    return timed


def _thread_kind(name: str) -> str:
    return re.sub(r"[-_]?\d+", "", name).strip("-_") or name  # "intercom-window_3" -> "intercom-window"


def install() -> None:
    """Time each step of STEPS, and each thread's CPU when it ends."""
    import importlib

    for module_name, path, step in STEPS:
        owner: Any = importlib.import_module(module_name)
        *parents, attribute = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        setattr(owner, attribute, _timed(getattr(owner, attribute), step))
    run = threading.Thread.run

    def counted_run(self: threading.Thread) -> None:
        try:
            run(self)
        finally:
            threads[_thread_kind(self.name)] += time.thread_time()

    threading.Thread.run = counted_run  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    out, cli_args = argv[0], argv[1:]
    install()
    from intercom_elt.pipelines import cli

    before = time.thread_time()  # the main thread's start-up (imports) is reported apart
    try:
        code = cli.main(cli_args)
    finally:
        threads["main thread (the run)"] += time.thread_time() - before
        threads["main thread (start-up)"] += before
        with open(out, "w", encoding="utf-8") as fh:
            json.dump({"threads": dict(threads), "steps": dict(steps)}, fh)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""What the CLI prints for a failure it has no mapping for: the real cause, not dlt's clean-up noise."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dlt
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from intercom_elt.pipelines.failures import describe_failure


def test_a_failing_stream_is_named_with_its_own_error_not_dlts_cleanup(tmp_path: Path) -> None:
    """Two parallelized streams, as the source runs them: one waits inside `next()` (like a stream
    waiting for its next page), the other fails. dlt then closes the waiting one while its thread
    still runs it and reports that ValueError instead of the real failure."""
    release = threading.Event()

    @dlt.resource(parallelized=True)
    def waiting() -> Iterator[list[dict[str, int]]]:
        yield [{"id": 1}]
        release.wait(5)
        yield [{"id": 2}]

    @dlt.resource(parallelized=True)
    def failing() -> Iterator[list[dict[str, int]]]:
        yield [{"id": 1}]
        time.sleep(0.2)
        raise RuntimeError("the real cause")

    @dlt.source
    def two_streams() -> tuple[object, object]:
        return waiting, failing

    pipeline = dlt.pipeline(pipeline_name="failures", pipelines_dir=str(tmp_path), destination="duckdb")
    try:
        with pytest.raises(PipelineStepFailed) as failed:
            pipeline.extract(two_streams())
    finally:
        release.set()
    # what dlt itself reports (if dlt stops masking the cause, this test still checks the line below)
    masked = str(failed.value.exception) == "generator already executing"
    line = describe_failure(failed.value)
    assert line == "the extract step failed in stream failing: RuntimeError: the real cause", (masked, line)

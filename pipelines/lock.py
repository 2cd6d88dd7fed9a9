"""One sync per pipeline at a time."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

import dlt

from intercom_elt.pipelines.errors import EXIT_FAILURE, UserError


class PipelineBusy(UserError):
    """Another process holds the pipeline's lock (an orchestrator tells this from other failures)."""


class pipeline_lock:  # noqa: N801 - a context manager that reads like a statement
    """An exclusive `fcntl.flock` on `<pipelines_dir>/.<pipeline_name>.lock` for one whole run.

    Why: two syncs of one pipeline share dlt's working directory and cursors; interleaved they
    corrupt packages and state. The OS drops the lock when the holder dies (even by SIGKILL), so a
    crashed run never blocks the next one.
    """

    def __init__(self, pipeline: dlt.Pipeline) -> None:
        self.name = pipeline.pipeline_name
        self.path = Path(pipeline.pipelines_dir) / f".{self.name}.lock"
        self._fh: Any = None

    def __enter__(self) -> pipeline_lock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 - held open for the duration of the run
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            fh.close()
            raise PipelineBusy(
                f"another sync of pipeline '{self.name}' is already running (pid {holder}, lock {self.path}): "
                "wait for it to finish; two runs of one pipeline at once would corrupt its state",
                EXIT_FAILURE,
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()  # closing releases the flock
            self._fh = None

"""Every sync leaves one row in `_intercom_runs` (run_history_table.py): what ran, how it ended,
what it loaded and cost, and how fresh each stream is afterwards.

Why a recorder around the run and not code in the run path: the row must be written when the run
fails too, with what the failure left (requests sent, cursors kept), and the run path should not
grow a second job. The run path only tells the active recorder what it opened (`observe`); the
recorder turns that into a row when the run ends, however it ends.

When a row is written: once the run opened the pipeline (after the token check), or when that check
failed on the token or the network and the dataset already exists (a scheduled run that could not
run is news; a first run that could not run creates nothing). Usage errors and runs killed by a
signal leave none.
"""

from __future__ import annotations

import contextvars
import logging
import math
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dlt
import pendulum

from intercom_elt.pipelines import errors, failures
from intercom_elt.pipelines.config import Target
from intercom_elt.pipelines.run_history_table import RUNS_TABLE, insert_row, read_rows
from intercom_elt.pipelines.summary import RunSummary, stats_to_summary

if TYPE_CHECKING:  # at run time preflight imports this module
    from intercom_elt.pipelines.preflight import CheckReport
    from intercom_elt.pipelines.reconcile import ReconcileResult
    from intercom_elt.sources.intercom.api import IntercomClient

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 10  # Intercom's rate-limit window; X-RateLimit-Limit counts calls per window
# failures before the pipeline opened that still make a row: the run was due and could not run
_RECORDED_EARLY_EXITS = frozenset({errors.EXIT_AUTH, errors.EXIT_NETWORK})


@dataclass
class RunRecorder:
    """What one run opened and how it ended; `row()` is the `_intercom_runs` row."""

    target: Target
    command: str
    secrets: Sequence[str] = ()
    run_id: str = ""
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    pipeline: dlt.Pipeline | None = None
    app: dict[str, Any] = field(default_factory=dict)  # the workspace, from /me
    clients: list[IntercomClient] = field(default_factory=list)  # preflight, sync, reconcile
    deletes: list[ReconcileResult] = field(default_factory=list)
    summary: RunSummary | None = None
    exit_code: int = errors.EXIT_OK
    failure: str | None = None
    interrupted: bool = False

    def __post_init__(self) -> None:
        if not self.run_id:
            self.run_id = f"{self.started_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"

    def fail(self, exc: BaseException) -> None:
        """Record the exit code and the one line the CLI prints for `exc` (same mapping as cli.main).

        Ctrl-C is `interrupted` with exit 130 whether it arrived bare or wrapped by a dlt step.
        """
        if failures.interrupted(exc):
            self.exit_code, self.failure, self.interrupted = errors.EXIT_INTERRUPTED, failures.INTERRUPTED, True
            return
        mapped = exc if isinstance(exc, errors.UserError) else failures.explain(exc)
        if mapped is not None:
            self.exit_code, self.failure = mapped.exit_code, str(mapped)
        else:
            self.exit_code, self.failure = errors.EXIT_FAILURE, failures.describe_failure(exc)

    @property
    def status(self) -> str:
        if self.interrupted:
            return "interrupted"
        return "succeeded" if self.exit_code == errors.EXIT_OK else "failed"

    def _redact(self, text: str | None) -> str | None:
        if text is None:
            return None
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def _stats(self) -> dict[str, Any]:
        """The HTTP counters of every client the run made (preflight, sync, reconcile), added up."""
        total = RunSummary(self.target.pipeline_name, self.target.destination, self.target.dataset_name)
        for client in self.clients:
            stats_to_summary(total, client.stats.as_dict())
        limits = [c.limiter.snapshot().get("limit") for c in self.clients]
        return {
            "requests_total": total.requests,
            "requests_by_endpoint": dict(sorted(total.requests_by_endpoint.items())),
            "retries": total.retries,
            "rate_limited": total.rate_limited,
            "rate_limit_wait_seconds": round(total.rate_limit_wait_seconds, 3),
            "rate_limit": max((int(x) for x in limits if x), default=None),
        }

    def row(self, ended_at: datetime) -> dict[str, object]:
        duration = max(0.0, (ended_at - self.started_at).total_seconds())
        stats = self._stats()
        limit = stats["rate_limit"]
        windows = max(1, math.ceil(duration / WINDOW_SECONDS))
        rows = dict(self.summary.rows) if self.summary is not None else {}
        cursors = stream_cursors(self.pipeline) if self.pipeline is not None else {}
        app = self.app
        deletes = {
            str(r.model): {str(k): int(v) for k, v in r.marked.items()} for r in self.deletes if not r.skipped
        }
        return {
            "run_id": self.run_id,
            "pipeline_name": self.target.pipeline_name,
            "workspace_id": _text(app.get("id_code")),
            "workspace_name": _text(app.get("name")),
            "command": self.command,
            "started_at": self.started_at,
            "ended_at": ended_at,
            "duration_seconds": round(duration, 3),
            "status": self.status,
            "exit_code": self.exit_code,
            "failure": self._redact(self.failure),
            "rows_total": sum(rows.values()),
            "rows_by_table": rows,
            **stats,
            "quota_share": round(stats["requests_total"] / (limit * windows), 4) if limit else None,
            "cursors": {s: c.isoformat() for s, c in cursors.items()},
            "cursor_lag_seconds": {
                s: round((self.started_at - c).total_seconds(), 3) for s, c in cursors.items()
            },
            "rejected_records": self.summary.total_rejected if self.summary is not None else 0,
            "deletes_marked": sum(n for by in deletes.values() for n in by.values()),
            "deletes_by_model": deletes,
        }

    def should_write(self) -> bool:
        if self.pipeline is not None:
            return True
        return self.exit_code in _RECORDED_EARLY_EXITS

    def write(self) -> None:
        """Append the row; a failure to write is a warning, never the run's outcome.

        A run that failed before opening the destination writes only into a dataset that exists:
        a rejected token must not create a database or schema.
        """
        if not self.should_write():
            return
        try:
            pipeline = self.pipeline
            if pipeline is None:
                from intercom_elt.pipelines.destination import build_pipeline

                if self.target.destination == "duckdb" and not Path(self.target.duckdb_path).exists():
                    return
                pipeline = build_pipeline(self.target)
            row = self.row(datetime.now(timezone.utc))
            with pipeline.sql_client() as client:
                if self.pipeline is None and not client.has_dataset():
                    return
                insert_row(client, row)
        except Exception as exc:
            logger.debug("writing the run history failed", exc_info=True)
            if self.exit_code != errors.EXIT_DESTINATION:  # else the run's own error line says it
                logger.warning(
                    "the run was not recorded in %s: %s", RUNS_TABLE, self._redact(failures.describe_failure(exc))
                )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


_ACTIVE: contextvars.ContextVar[RunRecorder | None] = contextvars.ContextVar("intercom_run_recorder", default=None)


def observe(
    *,
    pipeline: dlt.Pipeline | None = None,
    preflight: CheckReport | None = None,
    client: IntercomClient | None = None,
    deletes: Sequence[ReconcileResult] | None = None,
) -> None:
    """Called by the run path with what it opened; does nothing when no run is being recorded."""
    rec = _ACTIVE.get()
    if rec is None:
        return
    if pipeline is not None:
        rec.pipeline = pipeline
    if preflight is not None:
        rec.app = dict(preflight.app)
    if client is not None:
        rec.clients.append(client)
    if deletes is not None:
        rec.deletes.extend(deletes)


@contextmanager
def recording(target: Target, command: str, secrets: Sequence[str] = ()) -> Iterator[RunRecorder]:
    """Record the run inside the block: set `rec.summary` when it returns; exceptions pass through."""
    rec = RunRecorder(target=target, command=command, secrets=tuple(secrets))
    token = _ACTIVE.set(rec)
    try:
        yield rec
    except BaseException as exc:
        rec.fail(exc)
        raise
    finally:
        _ACTIVE.reset(token)
        rec.write()


def stream_cursors(pipeline: dlt.Pipeline) -> dict[str, datetime]:
    """Each incremental stream's saved cursor (`last_value`) in the pipeline's state."""
    out: dict[str, datetime] = {}
    try:
        sources = pipeline.state.get("sources") or {}
    except Exception:  # a pipeline whose state cannot be read has no cursors to report
        logger.debug("reading the pipeline state failed", exc_info=True)
        return out
    for source in sources.values() if isinstance(sources, dict) else ():
        resources = source.get("resources") if isinstance(source, dict) else None
        for stream, state in (resources or {}).items():
            incremental = state.get("incremental") if isinstance(state, dict) else None
            for cursor in (incremental or {}).values():
                value = cursor.get("last_value") if isinstance(cursor, dict) else None
                parsed = _as_utc(value)
                if parsed is not None:
                    out[str(stream)] = parsed
    return dict(sorted(out.items()))


def _as_utc(value: object) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = pendulum.parse(str(value)) if not isinstance(value, datetime) else value
    except (ValueError, TypeError, pendulum.parsing.exceptions.ParserError):
        return None
    if not isinstance(parsed, datetime):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(parsed.timestamp(), tz=timezone.utc)


def read_runs(pipeline: dlt.Pipeline, days: float | None = None) -> list[dict[str, object]]:
    """The recorded runs (oldest first), those of the last `days` days when given."""
    since = pendulum.now("UTC").subtract(seconds=int(days * 86400)) if days else None
    with pipeline.sql_client() as client:
        if not client.has_dataset():
            return []
        return read_rows(client, since)

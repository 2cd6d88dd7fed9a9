"""The end-of-run summary: what landed, what it cost, how long it took.

Kept apart from the pipeline so the CLI, the demo and tests format it the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunSummary:
    """Numbers a data team checks after a scheduled load."""

    pipeline_name: str
    destination: str
    dataset_name: str
    rows: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    requests_by_endpoint: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    rate_limited: int = 0
    rate_limit_wait_seconds: float = 0.0
    duration_seconds: float = 0.0
    location: str | None = None
    rejected: dict[str, int] = field(default_factory=dict)  # records kept aside, by stream
    reconciled: str | None = None  # the delete reconciliation's line (`run --reconcile-deletes`)
    views: str | None = None  # the analyst views' outcome line, when they were refreshed

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def total_rejected(self) -> int:
        return sum(self.rejected.values())

    def rejected_line(self) -> str | None:
        """One line on the records kept aside in `_intercom_rejects`, or None when there were none."""
        if not self.rejected:
            return None
        streams = ", ".join(f"{stream} {n:,}" for stream, n in sorted(self.rejected.items()))
        return (
            f"{self.total_rejected:,} record(s) could not be stored and were kept aside in _intercom_rejects "
            f"({streams}); the rest loaded. See README 'Rejected records'."
        )


def stats_to_summary(summary: RunSummary, stats: Mapping[str, Any] | None) -> None:
    """Add one HTTP client's counters (`ClientStats.as_dict()`) to the summary."""
    if not stats:
        return
    for endpoint, count in (stats.get("requests") or {}).items():
        summary.requests_by_endpoint[endpoint] = summary.requests_by_endpoint.get(endpoint, 0) + int(count)
    summary.requests += int(stats.get("total_requests") or 0)
    summary.retries += int(stats.get("total_retries") or 0)
    summary.rate_limited += int(stats.get("rate_limited") or 0)
    summary.rate_limit_wait_seconds += float(stats.get("rate_limit_wait_seconds") or 0.0)


def format_summary(summary: RunSummary) -> str:
    """Human-readable, stable text; one table per line so it greps well in scheduler logs."""
    lines = [
        f"Loaded into {summary.destination} dataset '{summary.dataset_name}'"
        + (f" ({summary.location})" if summary.location else "")
        + f" by pipeline '{summary.pipeline_name}'",
    ]
    if summary.rows:
        width = max(len(t) for t in summary.rows)
        lines.append("Rows loaded per table:")
        for table, count in summary.rows.items():
            lines.append(f"  {table:<{width}}  {count:>9,}")
        lines.append(f"  {'total':<{width}}  {summary.total_rows:>9,}")
    else:
        lines.append("Rows loaded per table: none (nothing new since the last run)")
    lines.append(
        f"Requests: {summary.requests:,}   retries: {summary.retries:,}   "
        f"rate limited (429): {summary.rate_limited:,}   "
        f"rate-limit waits: {summary.rate_limit_wait_seconds:.1f}s (summed over workers)   "
        f"duration: {summary.duration_seconds:.1f}s"
    )
    if summary.requests_by_endpoint:
        by = sorted(summary.requests_by_endpoint.items(), key=lambda kv: (-kv[1], kv[0]))
        lines.append("Requests by endpoint: " + ", ".join(f"{ep} {n:,}" for ep, n in by))
    return "\n".join(lines)

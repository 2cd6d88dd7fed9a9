"""`intercom-sync report`: one HTML file, readable offline, from the `_intercom_runs` table.

Why Plotly: it writes charts from Python with its JavaScript inlined (no CDN, fonts or other
fetches when opened), is MIT-licensed, released often, and needs only two small packages
(narwhals, packaging). The price is ~4.8 MB of inlined plotly.js in every report.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from string import Template

import dlt

from intercom_elt.pipelines.report.charts import CHARTS, STATUS_COLOURS

Run = Mapping[str, object]
STATUS_STRIP_RUNS = 100  # the status strip shows the last runs only; the other charts every run
FAILURES_LISTED = 10


@dataclass
class ReportResult:
    path: Path
    runs: int
    size_bytes: int
    seconds: float

    def describe(self) -> str:
        return f"Report of {self.runs:,} run(s) written to {self.path} ({self.size_bytes / 1e6:.1f} MB)"


def _when(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return "?" if value is None else str(value)


def _cards(runs: Sequence[Run]) -> str:
    last = runs[-1]
    ok = [r for r in runs if r.get("status") == "succeeded"]
    status = str(last.get("status"))
    cards = [
        ("Last run", f'<span class="{html.escape(status)}">{html.escape(status)}</span>', _when(last.get("started_at"))),
        ("Last success", _when(ok[-1].get("ended_at")) if ok else "none", f"{len(ok)} of {len(runs)} runs succeeded"),
        ("Rows loaded", f"{sum(int(r.get('rows_total') or 0) for r in runs):,}", "in these runs"),
        ("Requests", f"{sum(int(r.get('requests_total') or 0) for r in runs):,}", "to Intercom, in these runs"),
        ("Records kept aside", f"{sum(int(r.get('rejected_records') or 0) for r in runs):,}", "in _intercom_rejects"),
    ]
    return "".join(
        f'<div class="card">{html.escape(name)}<b>{value}</b>{html.escape(note)}</div>' for name, value, note in cards
    )


def _failures_table(runs: Sequence[Run]) -> str:
    failed = [r for r in runs if r.get("status") != "succeeded"][-FAILURES_LISTED:][::-1]
    if not failed:
        return '<p class="empty">No failed run in this period.</p>'
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(v))}</td>"
            for v in (_when(r.get("started_at")), r.get("command"), r.get("exit_code"), r.get("failure") or r.get("status"))
        )
        + "</tr>"
        for r in failed
    )
    return (
        '<table id="failures"><thead><tr><th>started</th><th>command</th><th>exit</th><th>what went wrong</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def _charts(runs: Sequence[Run]) -> str:
    parts = []
    for div_id, heading, build in CHARTS:
        shown = runs[-STATUS_STRIP_RUNS:] if div_id == "chart-status" else runs
        fig = build(shown)
        chart = fig.to_html(
            full_html=False, include_plotlyjs=False, div_id=div_id, config={"displaylogo": False, "responsive": True}
        )
        parts.append(f"<h2>{html.escape(heading)}</h2>\n{chart}")
    return "\n".join(parts)


def build_report_html(runs: Sequence[Run], *, dataset: str, generated_at: datetime | None = None) -> str:
    """The whole page; `runs` oldest first (as `read_runs` returns them)."""
    import plotly.offline

    generated = generated_at or datetime.now(timezone.utc)
    workspace = next((str(r["workspace_name"]) for r in reversed(runs) if r.get("workspace_name")), None)
    title = f"Intercom syncs: {workspace}" if workspace else "Intercom syncs"
    meta = f"Dataset {dataset}. {len(runs):,} run(s)"
    if runs:
        meta += f" from {_when(runs[0].get('started_at'))} to {_when(runs[-1].get('started_at'))}"
    meta += f". Generated {_when(generated)}."
    legend = ", ".join(f'<span class="{s}">{s}</span>' for s in STATUS_COLOURS)
    template = Template(resources.files("intercom_elt.pipelines.report").joinpath("template.html").read_text("utf-8"))
    return template.substitute(
        title=html.escape(title),
        meta=f"{html.escape(meta)} Colours: {legend}",
        cards=_cards(runs) if runs else "",
        charts=_charts(runs) if runs else '<p class="empty">No run recorded in this period.</p>',
        failures=_failures_table(runs),
        plotlyjs=plotly.offline.get_plotlyjs(),
    )


def write_report(pipeline: dlt.Pipeline, out: Path, *, days: float | None = None) -> ReportResult:
    """Read the recorded runs of the pipeline's dataset and write the report to `out`."""
    from intercom_elt.pipelines.run_history import read_runs

    started = time.monotonic()
    runs = read_runs(pipeline, days or None)
    page = build_report_html(runs, dataset=pipeline.dataset_name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return ReportResult(out.resolve(), len(runs), out.stat().st_size, time.monotonic() - started)

"""The report's charts as Plotly figures, one per question a data team asks of its syncs.

Every chart has one x value per run, in the order of `runs` (oldest first): its start time on the
line charts (trends over time), one evenly spaced category per run on the bar charts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import plotly.graph_objects as go

Run = Mapping[str, object]

STATUS_COLOURS = {"succeeded": "#2e7d32", "failed": "#c62828", "interrupted": "#ef6c00"}
TIME_FORMAT = "%b %d %H:%M"  # run start times; plotly would go down to milliseconds for one run
_LAYOUT = {
    "template": "plotly_white",
    "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
    "height": 320,
    "legend": {"orientation": "h", "y": -0.2},
    "hovermode": "x unified",
}


def _starts(runs: Sequence[Run]) -> list[str]:
    out = []
    for run in runs:
        started = run.get("started_at")
        out.append(started.isoformat() if isinstance(started, datetime) else str(started))
    return out


def run_labels(runs: Sequence[Run]) -> list[str]:
    """One category per run for the bar charts (evenly spaced whatever the schedule); unique."""
    labels: list[str] = []
    seen: dict[str, int] = {}
    for run in runs:
        started = run.get("started_at")
        label = started.strftime("%Y-%m-%d %H:%M:%S") if isinstance(started, datetime) else str(started)
        seen[label] = seen.get(label, 0) + 1
        labels.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return labels


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _number(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0


def stream_of(table: str) -> str:
    """A child table (`contacts__tags`) counts under its stream (`contacts`)."""
    return table.split("__", 1)[0]


def rows_by_stream(runs: Sequence[Run]) -> dict[str, list[int]]:
    """Rows loaded per stream (child tables added to their parent stream), one value per run."""
    streams = sorted({stream_of(t) for run in runs for t in _mapping(run.get("rows_by_table")) if not t.startswith("_")})
    out: dict[str, list[int]] = {s: [0] * len(runs) for s in streams}
    for i, run in enumerate(runs):
        for table, rows in _mapping(run.get("rows_by_table")).items():
            if not table.startswith("_"):  # _intercom_rejects: records kept aside are not data
                out[stream_of(table)][i] += int(_number(rows))
    return out


def status_strip(runs: Sequence[Run]) -> go.Figure:
    """One bar per run, coloured by how it ended; the hover says the command and the failure."""
    statuses = [str(r.get("status")) for r in runs]
    hover = [
        f"{r.get('command')}<br>{r.get('status')} (exit {r.get('exit_code')})"
        + (f"<br>{str(r.get('failure'))[:160]}" if r.get("failure") else "")
        for r in runs
    ]
    fig = go.Figure(
        go.Bar(
            x=run_labels(runs),
            y=[1] * len(runs),
            marker_color=[STATUS_COLOURS.get(s, "#757575") for s in statuses],
            hovertext=hover,
            hoverinfo="x+text",
            name="runs",
        )
    )
    fig.update_layout(**{**_LAYOUT, "height": 160, "hovermode": "closest"}, showlegend=False, bargap=0.15)
    fig.update_yaxes(visible=False)
    fig.update_xaxes(type="category", showticklabels=False)
    return fig


def rows_per_stream(runs: Sequence[Run]) -> go.Figure:
    """Stacked bars: rows loaded per stream in each run."""
    x = run_labels(runs)
    fig = go.Figure([go.Bar(x=x, y=values, name=stream) for stream, values in rows_by_stream(runs).items()])
    fig.update_layout(**_LAYOUT, barmode="stack", yaxis_title="rows loaded")
    fig.update_xaxes(type="category", showticklabels=False, title="runs, oldest first")
    return fig


def duration_and_quota(runs: Sequence[Run]) -> go.Figure:
    """Run duration (left axis) and the share of Intercom's rate-limit quota used (right axis)."""
    x = _starts(runs)
    fig = go.Figure(
        [
            go.Scatter(
                x=x, y=[_number(r.get("duration_seconds")) for r in runs], name="duration (s)", mode="lines+markers"
            ),
            go.Scatter(
                x=x,
                y=[None if r.get("quota_share") is None else 100 * _number(r.get("quota_share")) for r in runs],
                name="quota used (%)",
                mode="lines+markers",
                yaxis="y2",
            ),
        ]
    )
    fig.update_xaxes(tickformat=TIME_FORMAT)
    fig.update_layout(
        **_LAYOUT,
        yaxis={"title": "seconds", "rangemode": "tozero"},
        yaxis2={"title": "% of quota", "overlaying": "y", "side": "right", "rangemode": "tozero"},
    )
    return fig


def freshness(runs: Sequence[Run]) -> go.Figure:
    """Per stream, how far its saved cursor trailed the run's start (hours): lower is fresher."""
    x = _starts(runs)
    streams = sorted({s for r in runs for s in _mapping(r.get("cursor_lag_seconds"))})
    traces = []
    for stream in streams:
        lags = [_mapping(r.get("cursor_lag_seconds")).get(stream) for r in runs]
        y = [None if lag is None else round(_number(lag) / 3600, 2) for lag in lags]
        traces.append(go.Scatter(x=x, y=y, name=stream, mode="lines+markers", connectgaps=True))
    fig = go.Figure(traces)
    fig.update_xaxes(tickformat=TIME_FORMAT)
    fig.update_layout(**_LAYOUT, yaxis={"title": "cursor lag (hours)", "rangemode": "tozero"})
    return fig


def retries_and_waits(runs: Sequence[Run]) -> go.Figure:
    """Retries and 429 answers per run (bars), seconds waited for the rate limit (line, right axis)."""
    x = run_labels(runs)
    fig = go.Figure(
        [
            go.Bar(x=x, y=[int(_number(r.get("retries"))) for r in runs], name="retries"),
            go.Bar(x=x, y=[int(_number(r.get("rate_limited"))) for r in runs], name="429 answers"),
            go.Scatter(
                x=x,
                y=[_number(r.get("rate_limit_wait_seconds")) for r in runs],
                name="rate-limit wait (s)",
                mode="lines+markers",
                yaxis="y2",
            ),
        ]
    )
    fig.update_layout(
        **_LAYOUT,
        barmode="group",
        yaxis={"title": "count", "rangemode": "tozero"},
        yaxis2={"title": "seconds waited", "overlaying": "y", "side": "right", "rangemode": "tozero"},
    )
    fig.update_xaxes(type="category", showticklabels=False, title="runs, oldest first")
    return fig


# (div id, heading, builder): the order of the report
CHARTS = (
    ("chart-status", "Status of the last runs", status_strip),
    ("chart-rows", "Rows loaded per stream", rows_per_stream),
    ("chart-duration", "Duration and share of the rate-limit quota", duration_and_quota),
    ("chart-freshness", "Freshness: cursor lag per stream", freshness),
    ("chart-limits", "Retries, 429 answers and rate-limit waits", retries_and_waits),
)

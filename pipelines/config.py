"""Resolve the token and the settings the same way everywhere: flag > env > .dlt files > default.

Validates what can be validated offline (dates, regions, stream and dataset names), so a bad value
fails before any request with the setting's name in the message.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt
import pendulum

from pipelines.errors import EXIT_AUTH, EXIT_USAGE, UserError

logger = logging.getLogger(__name__)

DEFAULT_PIPELINE_NAME = "intercom"
DEFAULT_DATASET = "intercom_data"  # not "intercom": DuckDB rejects a schema named like its file
DEFAULT_DUCKDB_PATH = "intercom.duckdb"
DEFAULT_VERSION = "2.15"
REGIONS = ("us", "eu", "au")
TOKEN_ENV = "INTERCOM_ACCESS_TOKEN"
TOKEN_HELP = f"set {TOKEN_ENV} or [sources.intercom] access_token in .dlt/secrets.toml"

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass
class SourceSettings:
    """Everything `intercom_source` needs, resolved once so preflight and sync agree."""

    access_token: str = field(repr=False)
    region: str = "us"
    base_url: str | None = None
    intercom_version: str = DEFAULT_VERSION
    lookback_seconds: int = 900
    max_workers: int = 32  # upper bound; the source sizes its pool from quota x latency
    start_date: pendulum.DateTime | None = None
    end_date: pendulum.DateTime | None = None
    streams: list[str] | None = None
    history: bool = False  # scd2 versions of contacts, companies, conversations, tickets
    reconcile_deletes: bool = False  # mark vanished contacts/companies/conversations after the load
    skip_denied_streams: bool = False  # drop streams the token may not read (one warning each) instead of failing

    @property
    def api_url(self) -> str:
        """The base URL requests go to (explicit base URL wins over region)."""
        if self.base_url:
            return self.base_url.rstrip("/")
        return "https://api.intercom.io" if self.region == "us" else f"https://api.{self.region}.intercom.io"


@dataclass
class Target:
    """Where the data goes and under which dlt pipeline (state lives with the pipeline)."""

    destination: str = "duckdb"
    dataset_name: str = DEFAULT_DATASET
    pipeline_name: str = DEFAULT_PIPELINE_NAME
    duckdb_path: str = DEFAULT_DUCKDB_PATH
    pipelines_dir: str | None = None
    progress: str | None = None
    tuned: bool = True  # False: dlt's out-of-the-box settings (the benchmark's baseline)

    @property
    def location(self) -> str | None:
        return str(Path(self.duckdb_path).resolve()) if self.destination == "duckdb" else None


def _config(key: str) -> Any:
    """A value from dlt's config providers (env SOURCES__INTERCOM__X, .dlt/config.toml), or None."""
    return dlt_setting(f"sources.intercom.{key}")


def dlt_setting(key: str, expected_type: Any = None) -> Any:
    """Any dlt config value (env first, then .dlt/*.toml), or None; `expected_type` parses it
    (an environment variable is a string: "false" must not read as true)."""
    try:
        return dlt.config.get(key, expected_type) if expected_type is not None else dlt.config.get(key)
    except Exception:  # a malformed toml must not hide behind a lookup
        logger.debug("config lookup failed for %s", key, exc_info=True)
        return None


def history_configured() -> bool:
    """`[sources.intercom] history = true` (or SOURCES__INTERCOM__HISTORY): history mode on."""
    value = _config("history")
    return str(value).strip().lower() in ("1", "true", "yes", "on") if value is not None else False


def resolve_token(explicit: str | None = None) -> str:
    """The access token: argument, then INTERCOM_ACCESS_TOKEN, then dlt secrets."""
    token = explicit or os.environ.get(TOKEN_ENV)
    if not token:
        try:
            token = dlt.secrets.get("sources.intercom.access_token")
        except Exception:
            logger.debug("secret lookup failed", exc_info=True)
            token = None
    token = (str(token).strip() if token else "") or ""
    if not token or token == "your-private-app-access-token":
        raise UserError(f"no Intercom access token: {TOKEN_HELP}", EXIT_AUTH)
    return token


def parse_date(value: Any, option: str) -> pendulum.DateTime | None:
    """Accept YYYY-MM-DD, ISO 8601 or Unix seconds; always UTC-aware."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit()):
            return pendulum.from_timestamp(int(value), tz="UTC")
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        parsed = pendulum.parse(str(value).strip(), tz="UTC")
    except Exception:
        raise UserError(
            f"invalid {option} '{value}': use a date like 2023-01-01 or an ISO 8601 timestamp", EXIT_USAGE
        ) from None
    if not isinstance(parsed, pendulum.DateTime):
        raise UserError(f"invalid {option} '{value}': use a date like 2023-01-01", EXIT_USAGE)
    return parsed


def parse_streams(value: str | Sequence[str] | None) -> list[str] | None:
    """`a,b` or a list -> unique names in order; None means every stream."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    names: list[str] = []
    for item in items:
        name = item.strip()
        if name and name not in names:
            names.append(name)
    if not names:
        raise UserError("--streams is empty: name at least one stream, e.g. --streams contacts", EXIT_USAGE)
    return names


def resolve_source_settings(
    *,
    access_token: str | None = None,
    region: str | None = None,
    base_url: str | None = None,
    streams: str | Sequence[str] | None = None,
    start_date: Any = None,
    end_date: Any = None,
    intercom_version: str | None = None,
) -> SourceSettings:
    """Merge CLI values with env/.dlt config and validate what can be validated offline."""
    region = (region or _config("region") or "us").strip().lower()
    if region not in REGIONS:
        raise UserError(f"unknown region '{region}': use one of {', '.join(REGIONS)} (--region)", EXIT_USAGE)
    base_url = base_url or _config("base_url") or None
    if base_url and not re.match(r"^https?://[^/\s]+", base_url):
        raise UserError(f"invalid base URL '{base_url}': expected http(s)://host[:port]", EXIT_USAGE)
    start = parse_date(start_date if start_date is not None else _config("start_date"), "--start")
    end = parse_date(end_date if end_date is not None else _config("end_date"), "--end")
    # the future check first: a backfill's --end defaults to now, which would blame --end
    if start is not None and start > pendulum.now("UTC"):
        raise UserError(
            f"--start {start.to_date_string()} is in the future: give a start date in the past", EXIT_USAGE
        )
    if start is not None and end is not None and end <= start:
        raise UserError(
            f"--end {end.to_date_string()} is not after --start {start.to_date_string()}: "
            "give an end date later than the start date",
            EXIT_USAGE,
        )
    selected = parse_streams(streams)
    if selected:
        known = known_streams()
        unknown = [s for s in selected if s not in known]
        if unknown and known:
            raise UserError(
                f"unknown stream{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                f"--streams takes a comma-separated list of {', '.join(known)}",
                EXIT_USAGE,
            )
    lookback = _config("lookback_seconds")
    workers = _config("max_workers")
    return SourceSettings(
        access_token=resolve_token(access_token),
        region=region,
        base_url=base_url,
        intercom_version=str(intercom_version or _config("intercom_version") or DEFAULT_VERSION),
        lookback_seconds=int(lookback) if lookback is not None else 900,
        max_workers=int(workers) if workers is not None else 32,
        start_date=start,
        end_date=end,
        streams=selected,
    )


def validate_name(value: str, option: str) -> str:
    """Dataset and pipeline names become schema/directory names: keep them portable."""
    if not _NAME_RE.match(value or ""):
        raise UserError(
            f"invalid {option} '{value}': use 1-63 letters, digits or underscores, not starting with a digit",
            EXIT_USAGE,
        )
    return value


def known_streams() -> list[str]:
    """Stream names the source offers (empty if the source cannot tell)."""
    try:
        from sources.intercom import settings as source_settings
    except ImportError:
        return []
    for name in ("STREAMS", "STREAM_NAMES", "ALL_STREAMS"):
        streams = getattr(source_settings, name, None)
        if streams:
            return list(streams)
    return []

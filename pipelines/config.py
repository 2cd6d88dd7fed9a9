"""Resolve the token and the settings the same way everywhere: flag > env > .dlt files > default.

Validates what can be validated offline (dates, regions, stream and dataset names), so a bad value
fails before any request with the setting's name in the message.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt
import pendulum

from intercom_elt.pipelines.errors import EXIT_AUTH, EXIT_USAGE, UserError
from intercom_elt.sources.intercom import options
from intercom_elt.sources.intercom import settings as source_settings
from intercom_elt.sources.intercom.errors import IntercomConfigError, Spelling, no_token_message
from intercom_elt.sources.intercom.options import DateLike, IntercomOptions

logger = logging.getLogger(__name__)

DEFAULT_PIPELINE_NAME = "intercom"
DEFAULT_DATASET = "intercom_data"  # not "intercom": DuckDB rejects a schema named like its file
DEFAULT_DUCKDB_PATH = "intercom.duckdb"
REGIONS = tuple(source_settings.REGIONS)
TOKEN_ENV = "INTERCOM_ACCESS_TOKEN"
# how the CLI's user sets what the source's messages ask them to change (sources/intercom/errors.py)
CLI_WORDS = Spelling(
    token=f"{TOKEN_ENV} or [sources.intercom] access_token in .dlt/secrets.toml",
    streams="--streams", region="--region", base_url="--base-url",
)

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass
class SourceSettings(IntercomOptions):
    """The source's options plus this run's own switches, resolved once so preflight and sync agree."""

    reconcile_deletes: bool = False  # mark vanished contacts/companies/conversations after the load
    skip_denied_streams: bool = False  # drop streams the token may not read (one warning each) instead of failing


# how the CLI's user names each setting, for the source's validation messages
CLI_SPELLING = {
    "region": "--region",
    "base_url": "--base-url",
    "start_date": "--start",
    "end_date": "--end",
    "streams": "--streams",
    "lookback_seconds": "[sources.intercom] lookback_seconds",
    "max_workers": "[sources.intercom] max_workers",
    "checkpoint_records": "[sources.intercom] checkpoint_records",
}


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


def _config_or(key: str, default: int) -> Any:
    value = _config(key)
    return default if value is None else value


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
        raise UserError(no_token_message(CLI_WORDS), EXIT_AUTH)
    return token


def parse_date(value: DateLike, option: str) -> pendulum.DateTime | None:
    """Accept YYYY-MM-DD, ISO 8601 or Unix seconds; always UTC-aware (the source's parser)."""
    try:
        return options.parse_date(value, option)
    except IntercomConfigError as exc:
        raise UserError(str(exc), EXIT_USAGE) from None


def resolve_source_settings(
    *,
    access_token: str | None = None,
    region: str | None = None,
    base_url: str | None = None,
    streams: str | Sequence[str] | None = None,
    start_date: DateLike = None,
    end_date: DateLike = None,
    intercom_version: str | None = None,
) -> SourceSettings:
    """Merge CLI values with env/.dlt config and validate what can be validated offline."""
    start = parse_date(start_date if start_date is not None else _config("start_date"), "--start")
    # the future check first: a backfill's --end defaults to now, which would blame --end
    if start is not None and start > pendulum.now("UTC"):
        raise UserError(
            f"--start {start.to_date_string()} is in the future: give a start date in the past", EXIT_USAGE
        )
    given = SourceSettings(
        region=region or _config("region") or source_settings.DEFAULT_REGION,
        base_url=base_url or _config("base_url") or None,
        intercom_version=str(intercom_version or _config("intercom_version") or source_settings.DEFAULT_VERSION),
        lookback_seconds=_config_or("lookback_seconds", source_settings.DEFAULT_LOOKBACK_SECONDS),
        max_workers=_config_or("max_workers", source_settings.DEFAULT_MAX_WORKERS),
        checkpoint_records=_config_or("checkpoint_records", source_settings.SEARCH_CHECKPOINT_RECORDS),
        start_date=start,
        end_date=end_date if end_date is not None else _config("end_date"),
        streams=streams,
    )
    try:
        settings = given.validated(CLI_SPELLING)
    except IntercomConfigError as exc:
        raise UserError(str(exc), EXIT_USAGE) from None
    settings.access_token = resolve_token(access_token)
    return settings


def validate_name(value: str, option: str) -> str:
    """Dataset and pipeline names become schema/directory names: keep them portable."""
    if not _NAME_RE.match(value or ""):
        raise UserError(
            f"invalid {option} '{value}': use 1-63 letters, digits or underscores, not starting with a digit",
            EXIT_USAGE,
        )
    return value

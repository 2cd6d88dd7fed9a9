"""What one source instance is asked to do, typed, with its defaults and its checks in one place.

`intercom_source` builds an `IntercomOptions` from its arguments; `pipelines/config.py` fills
the same class (its `SourceSettings` adds the run's own switches) from flags, environment and
dlt config. Both call `validated`, so a value means the same and fails with the same message
whichever door it came in by; `spelled` names each setting as that door's user writes it
(`start_date` for the library, `--start` for the CLI).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from typing import TypeVar

import pendulum

from . import settings
from .client import resolve_base_url
from .errors import IntercomConfigError
from .specs import STREAMS

DateLike = str | int | float | date | datetime | None
_Options = TypeVar("_Options", bound="IntercomOptions")


@dataclass
class IntercomOptions:
    """Everything a sync of one workspace needs; validate with `validated()` before use."""

    access_token: str = field(default="", repr=False)
    region: str = settings.DEFAULT_REGION
    base_url: str | None = None
    intercom_version: str = settings.DEFAULT_VERSION
    lookback_seconds: int = settings.DEFAULT_LOOKBACK_SECONDS
    max_workers: int = settings.DEFAULT_MAX_WORKERS  # upper bound; the pool is sized from quota x latency
    checkpoint_records: int = settings.SEARCH_CHECKPOINT_RECORDS  # a split search's records per load package
    start_date: DateLike = None  # a date, datetime, ISO 8601 text or Unix seconds; validated: pendulum.DateTime
    end_date: DateLike = None
    streams: Sequence[str] | str | None = None  # None: every stream; validated: a list
    history: bool = False  # scd2 versions of contacts, companies, conversations, tickets

    @property
    def api_url(self) -> str:
        """The base URL requests go to (an explicit base URL wins over the region)."""
        return resolve_base_url(self.region, self.base_url)

    @property
    def selected(self) -> list[str]:
        """The streams to load, in the source's order of names given (all when none given)."""
        return list(self.streams) if self.streams else list(STREAMS)

    def validated(self: _Options, spelled: Mapping[str, str] | None = None) -> _Options:
        """A checked copy (same class): region lower-cased, dates as UTC `pendulum.DateTime`,
        streams a de-duplicated list; raises IntercomConfigError naming the setting as `spelled`."""
        name = {**{k: k for k in _FIELDS}, **(spelled or {})}
        region = (self.region or "").strip().lower()
        if region not in settings.REGIONS:
            raise IntercomConfigError(
                f"unknown region {self.region!r}: expected one of {', '.join(settings.REGIONS)} ({name['region']})"
            )
        try:
            resolve_base_url(region, self.base_url)
        except IntercomConfigError as exc:
            raise IntercomConfigError(str(exc).replace("base_url", name["base_url"], 1)) from None
        start = parse_date(self.start_date, name["start_date"])
        end = parse_date(self.end_date, name["end_date"])
        if end is not None and start is None:
            raise IntercomConfigError(f"{name['end_date']} needs a {name['start_date']} (a backfill is a closed range)")
        if start is not None and end is not None and end <= start:
            raise IntercomConfigError(
                f"{name['end_date']} {end.to_date_string()} is not after {name['start_date']} {start.to_date_string()}: "
                "give an end date later than the start date"
            )
        lookback = _whole_number(self.lookback_seconds, name["lookback_seconds"], minimum=0)
        workers = _whole_number(self.max_workers, name["max_workers"], minimum=1)
        checkpoint = _whole_number(self.checkpoint_records, name["checkpoint_records"], minimum=settings.SEARCH_PAGE_SIZE)
        return replace(
            self, region=region, start_date=start, end_date=end, streams=parse_streams(self.streams, name["streams"]),
            intercom_version=str(self.intercom_version), lookback_seconds=lookback, max_workers=workers,
            checkpoint_records=checkpoint,
            history=bool(self.history),
        )


_FIELDS = ("region", "base_url", "start_date", "end_date", "lookback_seconds", "max_workers", "checkpoint_records", "streams")


def _whole_number(value: object, name: str, minimum: int) -> int:
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise IntercomConfigError(f"{name} must be a whole number, got {value!r}") from None
    if number < minimum:
        raise IntercomConfigError(f"{name} must be >= {minimum}")
    return number


def parse_date(value: DateLike, name: str) -> pendulum.DateTime | None:
    """A date, datetime, ISO 8601 text or Unix seconds (number or digits) as a UTC DateTime."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, datetime):
            aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
            return pendulum.instance(aware).in_timezone("UTC")
        if isinstance(value, date):
            return pendulum.datetime(value.year, value.month, value.day, tz="UTC")
        if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit()):
            return pendulum.from_timestamp(int(value), tz="UTC")
        parsed = pendulum.parse(str(value).strip(), tz="UTC")
    except (ValueError, TypeError, OverflowError, pendulum.parsing.exceptions.ParserError):
        parsed = None
    if isinstance(parsed, pendulum.DateTime):
        return parsed.in_timezone("UTC")
    if isinstance(parsed, pendulum.Date):
        return pendulum.datetime(parsed.year, parsed.month, parsed.day, tz="UTC")
    raise IntercomConfigError(
        f"invalid {name} {str(value)!r}: not a date or datetime; use a date like 2023-01-01 or an ISO 8601 timestamp"
    )


def parse_streams(value: Sequence[str] | str | None, name: str = "streams") -> list[str] | None:
    """`a,b` or a list -> known names, unique, in order; None means every stream."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    names = list(dict.fromkeys(s.strip() for s in items if s and s.strip()))
    if not names:
        raise IntercomConfigError(
            f"{name} is empty: name at least one stream, e.g. {name} contacts. Valid streams: {', '.join(STREAMS)}"
        )
    unknown = [s for s in names if s not in STREAMS]
    if unknown:
        raise IntercomConfigError(
            f"unknown stream{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in {name}. "
            f"Valid streams: {', '.join(STREAMS)}"
        )
    return names

"""Turn the failures a user can fix, anywhere in an exception chain, into one-line `UserError`s
that name the setting and the fix (the original stays the `__cause__`, shown with --debug)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import httpx
import psycopg2
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.common.destination.exceptions import InvalidDestinationReference, UnknownDestinationModule
from dlt.extract.exceptions import ResourceExtractionError
from dlt.pipeline.exceptions import PipelineStepFailed

from intercom_elt.pipelines.config import CLI_WORDS, SourceSettings, Target
from intercom_elt.pipelines.destination import DUCKDB_SETTINGS
from intercom_elt.pipelines.errors import EXIT_AUTH, EXIT_DESTINATION, EXIT_NETWORK, EXIT_USAGE, UserError
from intercom_elt.sources.intercom import errors


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        cur = todo.pop(0)
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        for nxt in (getattr(cur, "exception", None), cur.__cause__, cur.__context__):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


INTERRUPTED = "interrupted; the next run resumes from the last saved cursors"


def interrupted(exc: BaseException) -> bool:
    """Whether Ctrl-C is behind `exc`. Why look down the chain: a KeyboardInterrupt raised inside a
    dlt step arrives wrapped in PipelineStepFailed, and it must end the run the same way (exit 130,
    the same line) wherever the signal happened to land."""
    return any(isinstance(cur, KeyboardInterrupt) for cur in _chain(exc))


def describe_failure(exc: BaseException) -> str:
    """One line for an unexpected failure: the failing dlt step, the stream and the real cause."""
    step = getattr(exc, "step", None)
    inner = getattr(exc, "exception", None) if step else None
    if isinstance(inner, BaseException):
        cause = root_cause(inner)
        stream = next((c.pipe_name for c in _chain(inner) if hasattr(c, "pipe_name")), None)  # type: ignore[attr-defined]
        where = f" in stream {stream}" if stream else ""
        return f"the {step} step failed{where}: {type(cause).__name__}: {_first_line(cause)}"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def root_cause(exc: BaseException) -> BaseException:
    """The failure behind dlt's wrappers and its clean-up noise.

    Why: when one stream fails, dlt closes the other streams' generators while its thread pool is
    still running them, and the `ValueError: generator already executing` that this raises replaces
    the real failure, which survives only in the exception's context.
    """
    for cur in _chain(exc):
        if isinstance(cur, (GeneratorExit, PipelineStepFailed, ResourceExtractionError)):
            continue
        if isinstance(cur, ValueError) and str(cur) == "generator already executing":
            continue
        return cur
    return exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _exit_code(exc: BaseException) -> int:
    if isinstance(exc, (errors.IntercomAuthError, errors.IntercomPermissionError)):
        return EXIT_AUTH
    return EXIT_USAGE if isinstance(exc, errors.IntercomConfigError) else EXIT_NETWORK


def _api_url(settings: SourceSettings | None) -> str:
    """The API host a failure concerns, for the message (never raising over an invalid base URL)."""
    try:
        return settings.api_url if settings else "the Intercom API"
    except errors.IntercomConfigError:
        return settings.base_url or "the Intercom API" if settings else "the Intercom API"


def explain(
    exc: BaseException, settings: SourceSettings | None = None, target: Target | None = None
) -> UserError | None:
    """Map a known failure anywhere in the exception chain to a one-line UserError."""
    api = _api_url(settings)
    for cur in _chain(exc):
        if isinstance(cur, UserError):
            return cur
        if isinstance(cur, errors.IntercomError):
            line = errors.advice(cur, api, settings.region if settings else None, CLI_WORDS)
            if line is not None:
                return UserError(line, _exit_code(cur))
        mapped = _third_party(cur, api, target)
        if mapped is not None:
            return mapped
    return None


_UNREACHABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.RemoteProtocolError)


def _third_party(cur: BaseException, api: str, target: Target | None) -> UserError | None:
    """httpx, dlt, DuckDB and Postgres failures a user can fix; None for any other."""
    if isinstance(cur, _UNREACHABLE):
        return UserError(errors.unreachable(api, _first_line(cur), CLI_WORDS), EXIT_NETWORK)
    if isinstance(cur, ConfigFieldMissingException):
        return _config_missing(cur, target)
    if isinstance(cur, psycopg2.OperationalError):
        return UserError(
            f"cannot connect to Postgres: {_first_line(cur)}; check DESTINATION__POSTGRES__CREDENTIALS "
            "or [destination.postgres] credentials",
            EXIT_DESTINATION,
        )
    if isinstance(cur, duckdb.OutOfMemoryException) or (
        (type(cur).__module__ or "").startswith("dlt.destinations") and "Out of Memory Error" in str(cur)
    ):
        return UserError(
            f"DuckDB ran out of memory in the load step (the default memory_limit is {DUCKDB_SETTINGS['memory_limit']}): "
            "raise it, e.g. DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG='{\"memory_limit\": \"1GB\"}', "
            "and run again; the extracted data is kept and loads first",
            EXIT_DESTINATION,
        )
    if "Could not set lock on file" in str(cur) and (
        isinstance(cur, duckdb.IOException) or (type(cur).__module__ or "").startswith("dlt.destinations")
    ):
        where = target.duckdb_path if target and target.destination == "duckdb" else "the DuckDB file"
        return UserError(
            f"{where} is open in another process (DuckDB allows one writer per file; {_holder(cur)}): "
            "let that process finish or close it, or give this run its own --duckdb-path, and run again",
            EXIT_DESTINATION,
        )
    if isinstance(cur, (UnknownDestinationModule, InvalidDestinationReference)):
        return UserError(
            f"unknown destination '{target.destination if target else '?'}': use duckdb, postgres or another dlt destination name",
            EXIT_USAGE,
        )
    return None


def _holder(exc: BaseException) -> str:
    """Who holds a DuckDB file's lock, as DuckDB says it ("... held in /usr/bin/python3 (PID 12)")."""
    text = _first_line(exc)
    held = text.find("held in ")
    return text[held:].rstrip(". ") if held >= 0 else "its lock is held"


def _config_missing(cur: ConfigFieldMissingException, target: Target | None) -> UserError:
    spec = cur.spec_name
    if "Postgres" in spec:
        return UserError(_postgres_credentials_missing(cur), EXIT_DESTINATION)
    if "intercom" in spec.lower() or "access_token" in cur.fields:
        return UserError(errors.no_token_message(CLI_WORDS), EXIT_AUTH)
    dest = target.destination if target else "destination"
    return UserError(
        f"{dest} is not configured: missing {', '.join(cur.fields or [spec])} "
        f"(set them in .dlt/secrets.toml under [destination.{dest}] or as DESTINATION__{dest.upper()}__* env vars)",
        EXIT_DESTINATION,
    )


def _missing_fields(exc: BaseException) -> list[str]:
    """The fields dlt could not resolve, nested ones (`credentials.password`) spelled out."""
    traces = getattr(exc, "traces", None)
    if not isinstance(traces, dict):
        return list(getattr(exc, "fields", []) or [])
    out: list[str] = []
    for name, lookups in traces.items():
        nested = [n for t in lookups if isinstance(getattr(t, "traces", None), dict) for n in t.traces]
        out.extend(f"{name}.{n}" for n in nested) if nested else out.append(name)
    return out


def _postgres_credentials_missing(exc: BaseException) -> str:
    """What is missing from the Postgres credentials: a password only (a URL written for trust
    auth, `postgresql://postgres@host/db`), or all of them."""
    missing = _missing_fields(exc)
    if missing == ["credentials.password"]:
        return (
            "the Postgres URL has no password, and dlt needs one in it: write it as "
            "postgresql://user:password@host:5432/db in DESTINATION__POSTGRES__CREDENTIALS or "
            "[destination.postgres] credentials (a server with trust auth accepts any password)"
        )
    return (
        "no Postgres credentials: set DESTINATION__POSTGRES__CREDENTIALS=postgresql://user:password@host:5432/db "
        "or [destination.postgres] credentials in .dlt/secrets.toml"
    )


class translate_errors:  # noqa: N801 - used as a context manager, reads like a statement
    """Re-raise known failures as UserError (keeping the original as __cause__ for --debug)."""

    def __init__(self, settings: SourceSettings | None = None, target: Target | None = None) -> None:
        self.settings = settings
        self.target = target

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or isinstance(exc, UserError) or not isinstance(exc, Exception):
            return False
        mapped = explain(exc, self.settings, self.target)
        if mapped is None:
            return False
        raise mapped from exc

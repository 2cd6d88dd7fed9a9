"""Turn the failures a user can fix, anywhere in an exception chain, into one-line `UserError`s
that name the setting and the fix (the original stays the `__cause__`, shown with --debug)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipelines.config import REGIONS, TOKEN_HELP, SourceSettings, Target
from pipelines.destination import DUCKDB_SETTINGS
from pipelines.errors import EXIT_AUTH, EXIT_DESTINATION, EXIT_NETWORK, EXIT_USAGE, UserError


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
        if isinstance(cur, GeneratorExit) or type(cur).__name__ in ("PipelineStepFailed", "ResourceExtractionError"):
            continue
        if isinstance(cur, ValueError) and str(cur) == "generator already executing":
            continue
        return cur
    return exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _api_url(settings: SourceSettings | None) -> str:
    """The API host a failure concerns, for the message (never raising over an invalid base URL)."""
    from sources.intercom.errors import IntercomConfigError

    try:
        return settings.api_url if settings else "the Intercom API"
    except IntercomConfigError:
        return settings.base_url or "the Intercom API" if settings else "the Intercom API"


def explain(
    exc: BaseException, settings: SourceSettings | None = None, target: Target | None = None
) -> UserError | None:
    """Map a known failure anywhere in the exception chain to a one-line UserError."""
    from sources.intercom import errors

    api = _api_url(settings)
    for cur in _chain(exc):
        if isinstance(cur, UserError):
            return cur
        name = type(cur).__name__
        module = type(cur).__module__ or ""
        if isinstance(cur, errors.IntercomAuthError):
            return UserError(
                f"Intercom rejected the access token (401 unauthorized): {TOKEN_HELP}", EXIT_AUTH
            )
        if isinstance(cur, errors.IntercomPermissionError):
            perm = getattr(cur, "permission", None)
            what = f"the permission '{perm}'" if perm else f"a permission ({_first_line(cur)})"
            endpoint = getattr(cur, "endpoint", None)
            return UserError(
                f"the access token lacks {what}"
                + (f" for {endpoint}" if endpoint else "")
                + ": grant it to the app in Intercom's Developer Hub, or leave the affected streams out with --streams",
                EXIT_AUTH,
            )
        if isinstance(cur, errors.IntercomRegionError):
            others = [r for r in REGIONS if settings is None or r != settings.region]
            return UserError(
                f"{api} does not know this workspace (GET /me answered 404): it is probably in another region, "
                f"try {' or '.join('--region ' + r for r in others)}",
                EXIT_NETWORK,
            )
        if isinstance(cur, errors.IntercomConfigError):
            return UserError(_first_line(cur), EXIT_USAGE)
        if isinstance(cur, errors.IntercomScrollError):
            return UserError(
                f"{_first_line(cur)}: Intercom's companies scroll cannot resume after an error, so this run "
                "stopped before loading and saved no cursor; run again later, or sync the other streams "
                "with --streams (leaving out companies)",
                EXIT_NETWORK,
            )
        if isinstance(cur, errors.IntercomMalformedResponseError):
            return UserError(
                f"{api} answered something that is not Intercom's JSON (an HTML page from a proxy, "
                "captive portal or a wrong --base-url?): check --base-url/--region and any proxy",
                EXIT_NETWORK,
            )
        if (
            isinstance(cur, errors.IntercomTransientError)
            and getattr(cur, "status", None) is not None
            and getattr(cur, "code", None) is None
            and getattr(cur, "request_id", None) is None
        ):
            return UserError(
                f"{api} kept answering HTTP {cur.status} without an Intercom JSON error body (a proxy or "
                "gateway HTML page?): check --base-url/--region and any proxy, or retry later",
                EXIT_NETWORK,
            )
        if isinstance(cur, errors.IntercomTransientError) and getattr(cur, "status", None) is None:
            return UserError(
                f"cannot reach {api}: {_first_line(cur)}; check --base-url/--region and the network",
                EXIT_NETWORK,
            )
        if module.startswith("httpx") and name in (
            "ConnectError",
            "ConnectTimeout",
            "ReadTimeout",
            "RemoteProtocolError",
        ):
            return UserError(
                f"cannot reach {api}: {_first_line(cur)}; check --base-url/--region and the network",
                EXIT_NETWORK,
            )
        if name == "ConfigFieldMissingException":
            spec = getattr(cur, "spec_name", "")
            if "Postgres" in spec:
                return UserError(_postgres_credentials_missing(cur), EXIT_DESTINATION)
            if "intercom" in spec.lower() or "access_token" in getattr(cur, "fields", []):
                return UserError(f"no Intercom access token: {TOKEN_HELP}", EXIT_AUTH)
            dest = target.destination if target else "destination"
            return UserError(
                f"{dest} is not configured: missing {', '.join(getattr(cur, 'fields', []) or [spec])} "
                f"(set them in .dlt/secrets.toml under [destination.{dest}] or as DESTINATION__{dest.upper()}__* env vars)",
                EXIT_DESTINATION,
            )
        if module.startswith("psycopg2") and name == "OperationalError":
            return UserError(
                f"cannot connect to Postgres: {_first_line(cur)}; check DESTINATION__POSTGRES__CREDENTIALS "
                "or [destination.postgres] credentials",
                EXIT_DESTINATION,
            )
        if name == "OutOfMemoryException" or (module.startswith("dlt.destinations") and "Out of Memory Error" in str(cur)):
            return UserError(
                f"DuckDB ran out of memory in the load step (the default memory_limit is {DUCKDB_SETTINGS['memory_limit']}): "
                "raise it, e.g. DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG='{\"memory_limit\": \"1GB\"}', "
                "and run again; the extracted data is kept and loads first",
                EXIT_DESTINATION,
            )
        if name in ("UnknownDestinationModule", "InvalidDestinationReference", "UnknownDestination"):
            return UserError(
                f"unknown destination '{target.destination if target else '?'}': use duckdb, postgres or another dlt destination name",
                EXIT_USAGE,
            )
    return None


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

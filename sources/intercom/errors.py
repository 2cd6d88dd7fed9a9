"""Exceptions raised by the Intercom client and source.

Messages are written for the person running the sync: they say what failed and what to change.
No message ever contains the access token (the client never passes it to an exception).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .settings import REGIONS, Endpoint


class IntercomError(Exception):
    """Base class for every error raised by this package."""


class IntercomConfigError(IntercomError, ValueError):
    """Invalid source or client arguments (region, base_url, dates, stream names...)."""


class IntercomAPIError(IntercomError):
    """A non-retryable HTTP error answered by the Intercom API."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        endpoint: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.endpoint = endpoint
        self.request_id = request_id


class IntercomAuthError(IntercomAPIError):
    """The token is invalid or revoked (401 `unauthorized`)."""


class IntercomPermissionError(IntercomAPIError):
    """The token is valid but lacks a permission (401 `token_unauthorized`, 403)."""

    def __init__(self, message: str, *, permission: str | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.permission = permission


class IntercomRegionError(IntercomAPIError):
    """GET /me answered 404: the workspace most likely lives in another region."""


class IntercomNotFoundError(IntercomAPIError):
    """404 on a record endpoint (the record vanished)."""


class IntercomTransientError(IntercomAPIError):
    """5xx, timeouts or connection errors that persisted after every retry."""


class IntercomRateLimitError(IntercomTransientError):
    """429 answers that persisted after every retry."""


class IntercomMalformedResponseError(IntercomTransientError):
    """A 2xx answer whose body is not the JSON object Intercom documents, after every retry."""


class IntercomScrollError(IntercomAPIError):
    """The companies scroll could not be completed (busy or restarted too often)."""


# ----------------------------------------------------------------------------- wording
# What each failure tells the person running the sync, written once, beside the types. The
# library's messages and the CLI's one-line errors use the same sentences; `Spelling` says how
# the reader sets what the sentence asks them to change.


@dataclass(frozen=True)
class Spelling:
    """How the reader names the token, the stream selection, the region and the API host."""

    token: str = "[sources.intercom] access_token / SOURCES__INTERCOM__ACCESS_TOKEN"
    streams: str = "the streams argument"
    region: str = "region"
    base_url: str = "base_url"


LIBRARY = Spelling()


def no_token_message(spelling: Spelling = LIBRARY) -> str:
    return f"no Intercom access token: set {spelling.token}"


def token_rejected(spelling: Spelling) -> str:
    return (
        "Intercom rejected the access token (401 unauthorized): it is invalid or revoked; create a new "
        f"access token in the Intercom Developer Hub and set {spelling.token}"
    )


def permission_missing(permission: str | None, endpoint: str | None, code: str | None, spelling: Spelling) -> str:
    if code == "api_plan_restricted":
        return f"{endpoint or 'this endpoint'}: this feature is not available on the workspace's Intercom plan"
    what = f"the permission '{permission}'" if permission else "the permission this endpoint needs"
    return (
        f"the access token lacks {what}" + (f" for {endpoint}" if endpoint else "")
        + ": grant it to the app in Intercom's Developer Hub (Configure > Authentication), reinstall the app "
        f"and use the new token, or leave the streams that need it out with {spelling.streams}"
    )


def wrong_region(api: str, region: str | None, spelling: Spelling) -> str:
    others = [r for r in REGIONS if r != region]
    return (
        f"{api} does not know this workspace (GET /me answered 404): it is probably in another region, "
        f"try {' or '.join(f'{spelling.region} {r}' for r in others)}"
    )


def scroll_broken(first_line: str, spelling: Spelling) -> str:
    return (
        f"{first_line}: Intercom's companies scroll cannot resume after an error, so this run stopped "
        "before loading and saved no cursor; run again later, or sync the other streams with "
        f"{spelling.streams} (leaving out companies)"
    )


def not_intercom_json(api: str, spelling: Spelling) -> str:
    return (
        f"{api} answered something that is not Intercom's JSON (an HTML page from a proxy, captive portal "
        f"or a wrong {spelling.base_url}?): check {spelling.base_url}/{spelling.region} and any proxy"
    )


def gateway_status(api: str, status: int, spelling: Spelling) -> str:
    return (
        f"{api} kept answering HTTP {status} without an Intercom JSON error body (a proxy or gateway HTML "
        f"page?): check {spelling.base_url}/{spelling.region} and any proxy, or retry later"
    )


def unreachable(api: str, first_line: str, spelling: Spelling) -> str:
    return f"cannot reach {api}: {first_line}; check {spelling.base_url}/{spelling.region} and the network"


def advice(exc: IntercomError, api: str, region: str | None, spelling: Spelling) -> str | None:
    """The one-line message for a failure of this package, or None when it has none of its own."""
    first = _first_line(exc)
    if isinstance(exc, IntercomAuthError):
        return token_rejected(spelling)
    if isinstance(exc, IntercomPermissionError):
        return permission_missing(exc.permission, exc.endpoint, exc.code, spelling)
    if isinstance(exc, IntercomRegionError):
        return wrong_region(api, region, spelling)
    if isinstance(exc, IntercomConfigError):
        return first
    if isinstance(exc, IntercomScrollError):
        return scroll_broken(first, spelling)
    if isinstance(exc, IntercomMalformedResponseError):
        return not_intercom_json(api, spelling)
    if isinstance(exc, IntercomTransientError) and exc.status is not None and exc.code is None and exc.request_id is None:
        return gateway_status(api, exc.status, spelling)
    if isinstance(exc, IntercomTransientError) and exc.status is None:
        return unreachable(api, first, spelling)
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def error_for_status(
    ep: Endpoint, endpoint: str, status: int, code: str | None, message: str | None,
    request_id: str | None, base_url: str,
) -> IntercomAPIError:
    """The typed error, with its message, of a 4xx answer of `ep` (keyed `endpoint`)."""
    template = ep.template
    detail = f"HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
    common: dict[str, Any] = {"status": status, "code": code, "endpoint": template, "request_id": request_id}
    if status == 401 and code in (None, "unauthorized"):
        said = f" (Intercom: {message})" if message else ""
        return IntercomAuthError(f"{template}: {token_rejected(LIBRARY)}{said}", **common)
    if status in (401, 403):
        text = permission_missing(ep.permission, None, code, LIBRARY)
        return IntercomPermissionError(f"{template}: access denied ({detail}): {text}", permission=ep.permission, **common)
    if status == 404 and endpoint == "me":
        return IntercomRegionError(f"{template}: HTTP 404. {wrong_region(base_url, None, LIBRARY)}", **common)
    if status in (404, 410):
        return IntercomNotFoundError(f"{template}: {detail}", **common)
    return IntercomAPIError(f"{template}: {detail}", **common)

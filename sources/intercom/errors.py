"""Exceptions raised by the Intercom client and source.

Messages are written for the person running the sync: they say what failed and what to change.
No message ever contains the access token (the client never passes it to an exception).
"""

from __future__ import annotations

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
# What each failure tells the person running the sync, written once, beside the types.
TOKEN_SETTING = "[sources.intercom] access_token / SOURCES__INTERCOM__ACCESS_TOKEN"


def no_token_message() -> str:
    return (
        "no Intercom access token: set [sources.intercom] access_token in .dlt/secrets.toml "
        "or the SOURCES__INTERCOM__ACCESS_TOKEN environment variable"
    )


def error_for_status(
    ep: Endpoint, endpoint: str, status: int, code: str | None, message: str | None,
    request_id: str | None, base_url: str,
) -> IntercomAPIError:
    """The typed error, with its message, of a 4xx answer of `ep` (keyed `endpoint`)."""
    template = ep.template
    detail = f"HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
    common: dict[str, Any] = {"status": status, "code": code, "endpoint": template, "request_id": request_id}
    if status == 401 and code in (None, "unauthorized"):
        return IntercomAuthError(
            f"{template}: the Intercom access token was rejected ({detail}). It is invalid or "
            "revoked: create a new access token in the Intercom Developer Hub and update "
            f"{TOKEN_SETTING}.",
            **common,
        )
    if status in (401, 403):
        return IntercomPermissionError(
            f"{template}: access denied ({detail}): {_permission_hint(ep.permission, code)}.",
            permission=ep.permission, **common,
        )
    if status == 404 and endpoint == "me":
        return IntercomRegionError(
            f"{template}: HTTP 404. The workspace is probably hosted in another region: set "
            f"region to one of {', '.join(REGIONS)} (now {base_url}).",
            **common,
        )
    if status in (404, 410):
        return IntercomNotFoundError(f"{template}: {detail}", **common)
    return IntercomAPIError(f"{template}: {detail}", **common)


def _permission_hint(permission: str | None, code: str | None) -> str:
    if code == "api_plan_restricted":
        return "this feature is not available on the workspace's Intercom plan"
    if permission:
        return (
            f"the token lacks the '{permission}' permission: enable it for your app in the "
            "Intercom Developer Hub (Configure > Authentication), reinstall the app and use "
            "the new token, or remove the streams that need it"
        )
    return "the token lacks the permission this endpoint needs"

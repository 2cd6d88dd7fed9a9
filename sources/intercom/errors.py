"""Exceptions raised by the Intercom client and source.

Messages are written for the person running the sync: they say what failed and what to change.
No message ever contains the access token (the client never passes it to an exception).
"""

from __future__ import annotations


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

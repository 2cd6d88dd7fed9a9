"""Before a sync: call /me and probe each stream's permission, so a token that cannot read a
requested stream fails in seconds with the permission's name, before anything is loaded."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from intercom_elt.pipelines import run_history
from intercom_elt.pipelines.config import SourceSettings
from intercom_elt.pipelines.errors import EXIT_AUTH, UserError
from intercom_elt.pipelines.failures import translate_errors
from intercom_elt.sources.intercom import specs
from intercom_elt.sources.intercom.api import IntercomClient

logger = logging.getLogger(__name__)

PREFLIGHT_RETRIES = 3


def make_client(settings: SourceSettings, max_retries: int | None = PREFLIGHT_RETRIES) -> IntercomClient:
    """An IntercomClient for preflight and `check` (the source builds its own for the sync).

    Preflight uses a small retry budget: a wrong host should fail in seconds, not minutes.
    """
    kwargs: dict[str, Any] = {}
    if max_retries is not None:
        kwargs["max_retries"] = max_retries
    client = IntercomClient(
        settings.access_token,
        region=settings.region,
        base_url=settings.base_url,
        intercom_version=settings.intercom_version,
        max_workers=settings.max_workers,
        **kwargs,
    )
    run_history.observe(client=client)  # the run's history counts every request, failed runs too
    return client


def close_client(client: IntercomClient) -> None:
    client.close()


@dataclass
class CheckReport:
    """What `intercom-sync check` shows."""

    me: dict[str, Any]
    allowed: dict[str, bool]
    missing: dict[str, str]
    settings: SourceSettings
    stats: dict[str, Any] | None = None

    @property
    def app(self) -> dict[str, Any]:
        return self.me.get("app") or {}


def stream_permission(stream: str) -> str | None:
    """The Intercom permission name a stream needs (from the source's endpoint table)."""
    return specs.permission(stream)


def _scope_result(raw: dict[str, str | None]) -> tuple[dict[str, bool], dict[str, str]]:
    """check_scopes() output ({stream: None | error}) -> (allowed per stream, permission missing)."""
    allowed = {stream: error is None for stream, error in raw.items()}
    missing = {
        stream: stream_permission(stream) or str(error) for stream, error in raw.items() if error is not None
    }
    return allowed, missing


def check_workspace(
    settings: SourceSettings, streams: list[str] | None = None, client: IntercomClient | None = None
) -> CheckReport:
    """Call /me and probe permissions (of `streams`, default all); raise UserError with the fix.

    With `client` (a run's own), the check uses it and leaves it open: the run then reads /me from
    its cache instead of asking again.
    """
    with translate_errors(settings):
        own = client is None
        checking = make_client(settings) if client is None else client
        try:  # /me first: a revoked token or a wrong region costs one call; then the probes, together
            me = checking.me()
            allowed, missing = _scope_result(specs.check_scopes(checking, streams))
            stats = checking.stats.as_dict()
        finally:
            if own:
                close_client(checking)
    return CheckReport(me=me, allowed=allowed, missing=missing, settings=settings, stats=stats)


def require_permissions(report: CheckReport, streams: list[str] | None) -> None:
    """Fail fast, before any load, when the token cannot read a requested stream."""
    wanted = streams or list(report.allowed)
    denied = [s for s in wanted if report.allowed.get(s) is False]
    if not denied:
        return
    perms = sorted({f"'{report.missing.get(s) or 'read ' + s}'" for s in denied})
    ok = [s for s in (streams or report.allowed) if report.allowed.get(s)]
    hint = f"--streams {','.join(ok)}" if ok else "--streams"
    raise UserError(
        f"the access token lacks the permission{'s' if len(perms) > 1 else ''} {', '.join(perms)} "
        f"needed by {', '.join(denied)}: grant it to the app in Intercom's Developer Hub, "
        f"or sync only what is allowed with {hint}",
        EXIT_AUTH,
    )


def skip_denied_streams(report: CheckReport, streams: list[str] | None) -> list[str] | None:
    """`--skip-denied-streams`: the selected streams the token may read, one warning per other.

    When every selected stream is denied nothing is left to sync: the selection is returned
    unchanged so `require_permissions` fails with its usual message.
    """
    wanted = list(streams or report.allowed)
    denied = [s for s in wanted if report.allowed.get(s) is False]
    kept = [s for s in wanted if s not in denied]
    if not denied or not kept:
        return streams
    for stream in denied:
        perm = report.missing.get(stream) or f"read {stream}"
        logger.warning(
            "skipping %s: the token lacks '%s'; grant it in the Developer Hub or drop the stream with --streams",
            stream,
            perm,
        )
    return kept

"""The webhook receiver: an aiohttp app that checks each notification and keeps it before answering.

Why aiohttp and not Starlette + uvicorn: it is already a dependency (the emulator is built on it),
so the receiver adds no package; it gives the peer address and the raw body directly, which is all
a webhook endpoint needs, and one event loop handles Intercom's delivery rate with room to spare.

Order of checks (each refusal leaves no row): sender address (403, only with an allowlist) ->
body size (413) -> JSON object (400) -> a client secret for its `app_id` and a valid
`X-Hub-Signature` (401) -> not older than 20 days (200, not kept: a replay past the inbox's
memory) -> the inbox write (503 if it fails, so Intercom retries) -> 200. Never
429: Intercom throttles and then drops notifications on a 429. `ping` and unknown topics are kept
and answered 200 like any other verified notification.

Test hook: INTERCOM_WEBHOOKS_PAUSE_AFTER_INBOX=<seconds> waits between the inbox write and the
answer, so a test can kill the receiver exactly there (Intercom then retries the delivery).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from intercom_elt.pipelines.webhooks.config import RECEIVER_MAX_BODY, ClientSecrets
from intercom_elt.pipelines.webhooks.inbox import Event, Inbox
from intercom_elt.pipelines.webhooks.security import (
    DEFAULT_MAX_AGE_DAYS,
    Allowlist,
    IPNetwork,
    RangesError,
    client_address,
    signature_ok,
)

logger = logging.getLogger(__name__)

# older notifications are answered 200 and not kept: the inbox forgets ids after RETENTION_DAYS
# (drain --prune), so a replay of an older signed notification must not count as new
MAX_EVENT_AGE_DAYS = 20.0
PATH = "/intercom/webhooks"
PAUSE_ENV = "INTERCOM_WEBHOOKS_PAUSE_AFTER_INBOX"


@dataclass
class ReceiverSettings:
    secrets: ClientSecrets = field(repr=False)
    inbox: Inbox
    max_body_bytes: int = RECEIVER_MAX_BODY
    allowlist_path: Path | None = None
    allowlist_max_age_days: float = DEFAULT_MAX_AGE_DAYS
    trusted_proxies: tuple[IPNetwork, ...] = ()


class AllowlistFile:
    """The allowlist, re-read when `refresh-ips` replaces the file; a bad new file keeps the old one."""

    def __init__(self, path: Path, max_age_days: float) -> None:
        self.path, self.max_age_days = path, max_age_days
        self.current = Allowlist.load(path, max_age_days)  # refuses to start on a bad file
        self._mtime = path.stat().st_mtime

    def get(self) -> Allowlist:
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return self.current
        if mtime != self._mtime:
            self._mtime = mtime
            try:
                self.current = Allowlist.load(self.path, self.max_age_days)
            except RangesError as exc:
                logger.error("webhook receiver: keeping the previous IP ranges: %s", exc)
        return self.current


def _refuse(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


def _event(payload: Mapping[str, object], body: bytes) -> Event:
    """The inbox row of a verified notification; tolerant of missing or oddly typed fields."""
    data = payload.get("data")
    item = data.get("item") if isinstance(data, Mapping) else None
    item = item if isinstance(item, Mapping) else {}
    nid = payload.get("id")
    created = payload.get("created_at")
    try:
        created_at = int(created) if created is not None else 0  # type: ignore[call-overload]
    except (TypeError, ValueError):
        created_at = 0
    return Event(
        notification_id=str(nid) if nid else "sha1:" + hashlib.sha1(body).hexdigest(),
        app_id=str(payload.get("app_id") or ""),
        topic=str(payload.get("topic") or "unknown"),
        item_type=str(item["type"]) if item.get("type") is not None else None,
        item_id=str(item["id"]) if item.get("id") is not None else None,
        created_at=created_at or int(time.time()),
        received_at=time.time(),
    )


def create_app(settings: ReceiverSettings) -> web.Application:
    allowlist = (AllowlistFile(settings.allowlist_path, settings.allowlist_max_age_days)
                 if settings.allowlist_path else None)
    pause = float(os.environ.get(PAUSE_ENV) or 0)

    async def receive(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        address = client_address(peer[0] if peer else None, request.headers.get("X-Forwarded-For"),
                                 settings.trusted_proxies)
        if allowlist is not None and not allowlist.get().allows(address):
            logger.warning("webhook from %s refused: outside Intercom's outbound ranges", address)
            return _refuse(403, "sender address not allowed")
        limit = settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return _refuse(413, f"body larger than {limit} bytes")
        body = await request.content.read(limit + 1)
        if len(body) > limit:
            return _refuse(413, f"body larger than {limit} bytes")
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return _refuse(400, "not a JSON object")
        app_id = str(payload.get("app_id") or "")
        secret = settings.secrets.for_app(app_id)
        if secret is None or not signature_ok(body, request.headers.get("X-Hub-Signature"), secret):
            logger.warning("webhook for app %r refused: missing or invalid signature", app_id)
            return _refuse(401, "invalid signature")
        event = _event(payload, body)
        if event.created_at < time.time() - MAX_EVENT_AGE_DAYS * 86400:
            logger.warning("webhook %s created %s is older than %g days: not kept", event.notification_id,
                           event.created_at, MAX_EVENT_AGE_DAYS)
            return web.json_response({"ok": True, "kept": False})
        try:
            new = await asyncio.to_thread(settings.inbox.put, event, body.decode("utf-8", "replace"))
        except Exception as exc:  # the inbox is down: Intercom retries a 5xx later
            logger.error("webhook %s not kept (inbox: %s); asking Intercom to retry", event.notification_id,
                         type(exc).__name__)
            return _refuse(503, "inbox unavailable")
        if pause:
            await asyncio.sleep(pause)
        logger.info("webhook %s %s %s", event.notification_id, event.topic, "kept" if new else "duplicate")
        return web.json_response({"ok": True, "duplicate": not new})

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=settings.max_body_bytes + 1)
    app.router.add_post(PATH, receive)
    app.router.add_post("/", receive)
    app.router.add_get("/health", health)
    return app


def serve(settings: ReceiverSettings, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM."""
    app = create_app(settings)
    print(f"Receiving Intercom webhooks on http://{host}:{port}{PATH} (inbox ready)", flush=True)
    web.run_app(app, host=host, port=port, access_log=None, print=None)

"""Outgoing webhooks: every workspace mutation as a signed Intercom notification, delivered like Intercom.

Why in the emulator: the connector's receiver must be tested against a sender that behaves as
badly as the real one may (intercom-api-notes.md "Deletes: pull feeds and webhooks"): delivery at
least once and in no guaranteed order, retries with back-off while the endpoint fails, and a topic
paused after many consecutive failures. Knobs make duplicates and reordering certain in tests.

* The store calls `observe(topic, model, id)` after each mutation (`Workspace.observers`). Each
  subscription whose topics match gets one notification: `{type: notification_event, app_id (the
  workspace id_code), id, topic, data: {type: notification_event_data, item}, delivery_attempts,
  first_sent_at, created_at, ...}`. `*.deleted`, archived and merged items carry only ids.
* The body is signed per attempt: `X-Hub-Signature: sha1=<hex HMAC-SHA1(client_secret, body)>`.
* A non-2xx answer or a transport error is retried after `retry_base_seconds * 2**n` (capped)
  up to `max_attempts`; then the notification is dropped (counted).
* `pause_after_failures` consecutive failures of a topic pause it for `pause_seconds` (Intercom:
  more than 1,000 errors in 15 minutes pause the topic for 15 minutes); paused notifications wait.
* `duplicate_rate` sends a delivered notification once more (same id); `reorder` delivers each
  batch of due notifications in a random order.

Control API: `GET|POST /_emulator/webhooks` (status; subscribe with {url, client_secret, topics?,
knobs...}), `DELETE /_emulator/webhooks`, and the test copy of Intercom's outbound ranges at
`GET /_emulator/intercom-ips/{region}/intercom-ip-ranges.json`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass, field, fields
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from intercom_emulator.state import STATE_KEY, EmulatorState, json_response

log = logging.getLogger(__name__)

ID_ONLY_TOPICS = frozenset({"contact.deleted", "contact.archived", "contact.merged", "company.deleted",
                            "conversation.deleted"})
ITEM_TYPES = {"contacts": "contact", "companies": "company", "conversations": "conversation"}
DEFAULT_IP_RANGES = ("127.0.0.1/32",)


@dataclass
class DeliveryKnobs:
    """How deliveries behave; settable per subscription call (POST /_emulator/webhooks)."""

    retry_base_seconds: float = 0.2
    retry_max_seconds: float = 5.0
    max_attempts: int = 30
    timeout_seconds: float = 5.0
    duplicate_rate: float = 0.0
    reorder: bool = False
    pause_after_failures: int = 1000
    pause_seconds: float = 900.0
    seed: int = 1


@dataclass
class Subscription:
    url: str
    client_secret: str = field(repr=False)
    topics: frozenset[str] | None = None  # None: every topic

    def wants(self, topic: str) -> bool:
        return self.topics is None or topic in self.topics


@dataclass
class Notification:
    sub: Subscription
    id: str
    topic: str
    app_id: str
    item: dict[str, Any]
    created_at: int
    attempts: int = 0
    first_sent_at: int | None = None
    due: float = 0.0
    duplicate: bool = False  # a repeat of a delivered notification is not repeated again

    def body(self) -> bytes:
        return orjson.dumps({
            "type": "notification_event", "app_id": self.app_id, "id": self.id, "topic": self.topic,
            "data": {"type": "notification_event_data", "item": self.item},
            "delivery_status": "pending", "delivery_attempts": self.attempts, "delivered_at": 0,
            "first_sent_at": self.first_sent_at, "created_at": self.created_at, "links": {}, "self": None,
        })


def sign(body: bytes, secret: str) -> str:
    """Intercom's X-Hub-Signature value for a body."""
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


class WebhookSender:
    """Subscriptions, the queue of notifications, and the delivery loop (runs in the app's loop)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.subscriptions: list[Subscription] = []
        self.knobs = DeliveryKnobs()
        self.ip_ranges: list[str] = list(DEFAULT_IP_RANGES)
        self._pending: list[Notification] = []
        self._in_flight = 0
        self._lock = threading.Lock()
        self._rng = random.Random(self.knobs.seed)
        self._failures: dict[str, int] = {}  # topic -> consecutive failures
        self.paused: dict[str, float] = {}  # topic -> monotonic time the pause ends
        self.stats = {"sent": 0, "delivered": 0, "failed_attempts": 0, "dropped": 0, "duplicates": 0, "pauses": 0}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        ws.observers.append(self.observe)

    # ---- configuration -------------------------------------------------------------------------
    def subscribe(self, url: str, client_secret: str, topics: list[str] | None = None, **knobs: Any) -> None:
        """Add an endpoint (the app's one URL) and change delivery knobs."""
        self.subscriptions.append(Subscription(url, client_secret, frozenset(topics) if topics else None))
        self.configure(**knobs)

    def configure(self, **knobs: Any) -> None:
        names = {f.name for f in fields(DeliveryKnobs)}
        for key, value in knobs.items():
            if key == "ip_ranges":
                self.ip_ranges = [str(r) for r in value]
                continue
            if key not in names:
                raise ValueError(f"unknown webhook knob {key!r}; knobs: {sorted(names | {'ip_ranges'})}")
            setattr(self.knobs, key, type(getattr(self.knobs, key))(value))
            if key == "seed":
                self._rng = random.Random(int(value))

    def clear(self) -> None:
        with self._lock:
            self.subscriptions.clear()
            self._pending.clear()
            self.paused.clear()
            self._failures.clear()

    def status(self) -> dict[str, Any]:
        with self._lock:
            pending = len(self._pending) + self._in_flight
        now = time.monotonic()
        return {"subscriptions": [{"url": s.url, "topics": sorted(s.topics) if s.topics else None}
                                  for s in self.subscriptions],
                "pending": pending, "paused_topics": sorted(t for t, end in self.paused.items() if end > now),
                "knobs": self.knobs.__dict__, "ip_ranges": self.ip_ranges, **self.stats}

    # ---- producing -----------------------------------------------------------------------------
    def observe(self, topic: str, model: str, ident: str) -> None:
        """Called by the store (any thread, under its lock) after a mutation."""
        subs = [s for s in self.subscriptions if s.wants(topic)]
        if not subs:
            return
        item: dict[str, Any] | None
        if topic in ID_ONLY_TOPICS:
            item = {"type": ITEM_TYPES.get(model, model), "id": str(ident)}
        else:
            item = self.ws.get(model, ident)
            if item is None:
                return
        now = self.ws.clock.now()
        app_id = str(self.ws.app["id_code"])
        with self._lock:
            for sub in subs:
                self._pending.append(Notification(sub, f"notif_{uuid.uuid4()}", topic, app_id, dict(item), now))
        self._poke()

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop is shutting down
                loop.call_soon_threadsafe(wake.set)

    # ---- delivering ----------------------------------------------------------------------------
    async def start(self, _app: web.Application) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def stop(self, _app: web.Application) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _take_due(self) -> tuple[list[Notification], float | None]:
        now = time.monotonic()
        with self._lock:
            due, wait, keep = [], None, []
            for n in self._pending:
                pause_end = self.paused.get(n.topic, 0.0)
                ready_at = max(n.due, pause_end)
                if ready_at <= now:
                    due.append(n)
                else:
                    keep.append(n)
                    wait = ready_at - now if wait is None else min(wait, ready_at - now)
            self._pending = keep
            self._in_flight += len(due)
        if self.knobs.reorder:
            self._rng.shuffle(due)
        return due, wait

    async def _run(self) -> None:
        assert self._wake is not None
        async with aiohttp.ClientSession() as session:
            while True:
                due, wait = self._take_due()
                for n in due:  # one at a time, in the batch's (maybe shuffled) order
                    await self._deliver(session, n)
                if due:
                    continue
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait if wait is not None else 1.0)

    async def _deliver(self, session: aiohttp.ClientSession, n: Notification) -> None:
        k = self.knobs
        n.attempts += 1
        n.first_sent_at = n.first_sent_at or self.ws.clock.now()
        body = n.body()
        headers = {"Content-Type": "application/json", "X-Hub-Signature": sign(body, n.sub.client_secret),
                   "User-Agent": "Intercom-Webhooks-Emulator"}
        ok = False
        try:
            timeout = aiohttp.ClientTimeout(total=k.timeout_seconds)
            async with session.post(n.sub.url, data=body, headers=headers, timeout=timeout) as resp:
                await resp.read()
                ok = 200 <= resp.status < 300
        except Exception as exc:  # any failure is a failed attempt: the loop must never die
            log.debug("webhook %s to %s failed: %r", n.id, n.sub.url, exc)
        self.stats["sent"] += 1
        requeue: Notification | None = None
        if ok:
            self.stats["delivered"] += 1
            self._failures[n.topic] = 0
            if not n.duplicate and k.duplicate_rate and self._rng.random() < k.duplicate_rate:
                self.stats["duplicates"] += 1
                requeue = Notification(n.sub, n.id, n.topic, n.app_id, n.item, n.created_at, n.attempts,
                                       n.first_sent_at, time.monotonic(), duplicate=True)
        else:
            self.stats["failed_attempts"] += 1
            failures = self._failures[n.topic] = self._failures.get(n.topic, 0) + 1
            if failures >= k.pause_after_failures:
                self.paused[n.topic] = time.monotonic() + k.pause_seconds
                self._failures[n.topic] = 0
                self.stats["pauses"] += 1
            if n.attempts >= k.max_attempts:
                self.stats["dropped"] += 1
            else:
                n.due = time.monotonic() + min(k.retry_max_seconds, k.retry_base_seconds * 2 ** (n.attempts - 1))
                requeue = n
        with self._lock:
            if requeue is not None:
                self._pending.append(requeue)
            self._in_flight -= 1


# ---- control API -----------------------------------------------------------------------------
def _sender(request: web.Request) -> WebhookSender:
    state: EmulatorState = request.app[STATE_KEY]
    return sender_of(state)


def sender_of(state: EmulatorState) -> WebhookSender:
    """The state's sender, created on first use (one per workspace)."""
    sender = getattr(state, "webhooks", None)
    if sender is None:
        sender = WebhookSender(state.ws)
        state.webhooks = sender  # type: ignore[attr-defined]
    return sender


async def get_webhooks(request: web.Request) -> web.Response:
    return json_response(_sender(request).status())


async def post_webhooks(request: web.Request) -> web.Response:
    try:
        body = orjson.loads(await request.read() or b"{}")
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        sender = _sender(request)
        if "url" in body:
            sender.subscribe(str(body.pop("url")), str(body.pop("client_secret")), body.pop("topics", None), **body)
        else:
            sender.configure(**body)
    except (ValueError, TypeError, KeyError, orjson.JSONDecodeError) as exc:
        return json_response({"error": f"bad webhook config: {exc!r}"}, status=400)
    return json_response(sender.status())


async def delete_webhooks(request: web.Request) -> web.Response:
    _sender(request).clear()
    return json_response({"ok": True})


async def ip_ranges(request: web.Request) -> web.Response:
    """A test copy of https://static.intercomcdn.com/intercom-ips/<region>/intercom-ip-ranges.json."""
    region = request.match_info["region"]
    ranges = [{"range": r, "region": region, "service": "INTERCOM-OUTBOUND"} for r in _sender(request).ip_ranges]
    ranges.append({"range": "198.51.100.0/24", "region": region, "service": "INTERCOM-INBOUND"})  # never trusted
    return json_response({"date": time.strftime("%Y-%m-%d", time.gmtime()), "ip_ranges": ranges})


def register(app: web.Application) -> None:
    """Control routes, and the delivery loop started and stopped with the app."""
    sender = sender_of(app[STATE_KEY])
    app.on_startup.append(sender.start)
    app.on_cleanup.append(sender.stop)
    r = app.router
    r.add_get("/_emulator/webhooks", get_webhooks)
    r.add_post("/_emulator/webhooks", post_webhooks)
    r.add_delete("/_emulator/webhooks", delete_webhooks)
    r.add_get("/_emulator/intercom-ips/{region}/intercom-ip-ranges.json", ip_ranges)

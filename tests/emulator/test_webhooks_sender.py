"""The emulator's outgoing webhooks: Intercom's envelope, signature, retries, duplicates, pause."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from intercom_emulator.testing import EmulatorServer

SECRET = "app-client-secret"


class Collector:
    """A real HTTP endpoint that records what it is sent and fails the first `fail` requests."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.received: list[tuple[dict[str, Any], bytes, str]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if collector.fail > 0:
                    collector.fail -= 1
                    self.send_response(503)
                else:
                    collector.received.append((json.loads(body), body, self.headers["X-Hub-Signature"]))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(profile="tiny", seed=2) as server:
        yield server


def _users(emu: EmulatorServer) -> list[str]:
    return [c for c in emu.workspace.ids("contacts") if emu.workspace.get("contacts", c)["role"] == "user"]


def test_a_delete_arrives_signed_in_intercoms_envelope_with_ids_only(emu: EmulatorServer) -> None:
    hook = Collector()
    emu.subscribe_webhooks(hook.url, SECRET)
    victim = _users(emu)[0]
    emu.workspace.delete_contact(victim)
    conv = emu.workspace.ids("conversations")[0]
    emu.workspace.delete_conversation(conv)
    emu.workspace.update_company(emu.workspace.ids("companies")[0], name="Renamed Ltd")
    status = emu.webhooks_settled()
    assert status["delivered"] == 3 and status["dropped"] == 0
    by_topic = {n["topic"]: (n, raw, sig) for n, raw, sig in hook.received}
    assert set(by_topic) == {"contact.deleted", "conversation.deleted", "company.updated"}
    for n, raw, sig in by_topic.values():
        assert sig == "sha1=" + hmac.new(SECRET.encode(), raw, hashlib.sha1).hexdigest()
        assert n["type"] == "notification_event" and n["id"].startswith("notif_")
        assert n["app_id"] == emu.workspace.app["id_code"] and n["delivery_attempts"] == 1
        assert n["data"]["type"] == "notification_event_data" and isinstance(n["created_at"], int)
    assert by_topic["contact.deleted"][0]["data"]["item"] == {"type": "contact", "id": victim}
    assert by_topic["conversation.deleted"][0]["data"]["item"] == {"type": "conversation", "id": conv}
    assert by_topic["company.updated"][0]["data"]["item"]["name"] == "Renamed Ltd"


def test_failures_are_retried_with_the_same_id_and_counted_attempts(emu: EmulatorServer) -> None:
    hook = Collector(fail=3)
    emu.subscribe_webhooks(hook.url, SECRET, topics=["contact.deleted"], retry_base_seconds=0.05)
    emu.workspace.delete_contact(_users(emu)[0])
    emu.workspace.update_contact(_users(emu)[0], name="not subscribed")
    status = emu.webhooks_settled()
    assert status["failed_attempts"] == 3 and status["delivered"] == 1
    [(n, _, _)] = hook.received
    assert n["topic"] == "contact.deleted" and n["delivery_attempts"] == 4


def test_duplicates_repeat_the_notification_id(emu: EmulatorServer) -> None:
    hook = Collector()
    emu.subscribe_webhooks(hook.url, SECRET, duplicate_rate=1.0)
    emu.workspace.archive_contact(_users(emu)[0])
    emu.webhooks_settled()
    ids = [n["id"] for n, _, _ in hook.received]
    assert len(ids) >= 2 and len(set(ids)) == 1


def test_repeated_failures_pause_the_topic_and_an_unreachable_endpoint_is_retried(emu: EmulatorServer) -> None:
    hook = Collector(fail=2)
    emu.subscribe_webhooks(hook.url, SECRET, retry_base_seconds=0.01, pause_after_failures=2, pause_seconds=0.5)
    emu.workspace.delete_contact(_users(emu)[0])
    status = emu.webhooks_settled()
    assert status["pauses"] == 1 and status["delivered"] == 1 and len(hook.received) == 1


def test_control_api_registers_and_serves_ip_ranges(emu: EmulatorServer) -> None:
    hook = Collector()
    resp = httpx.post(f"{emu.base_url}/_emulator/webhooks",
                      json={"url": hook.url, "client_secret": SECRET, "ip_ranges": ["10.1.0.0/16"]}, timeout=10)
    assert resp.status_code == 200 and resp.json()["subscriptions"][0]["url"] == hook.url
    assert "client_secret" not in resp.text and SECRET not in resp.text
    ranges = httpx.get(f"{emu.base_url}/_emulator/intercom-ips/eu/intercom-ip-ranges.json", timeout=10).json()
    outbound = [r["range"] for r in ranges["ip_ranges"] if r["service"] == "INTERCOM-OUTBOUND"]
    assert outbound == ["10.1.0.0/16"] and ranges["date"]
    assert httpx.post(f"{emu.base_url}/_emulator/webhooks", json={"bogus": 1}, timeout=10).status_code == 400

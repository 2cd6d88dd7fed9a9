"""Run the emulator from tests: in-process (`EmulatorServer`) or as a real subprocess (`EmulatorProcess`).

Why both: in-process is fast and exposes the live `Workspace` for ground truth and mutations;
the subprocess is for tests that kill the server or need a separate interpreter (CLI, crashes).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from typing import Any

import httpx
from aiohttp import web

from intercom_emulator.server import build_state, create_app
from intercom_emulator.state import DEFAULT_TOKEN, EmulatorState

log = logging.getLogger(__name__)


def json_body(resp: httpx.Response) -> dict[str, Any]:
    """Checked JSON parsing for tests: the payload must be a JSON object."""
    data = resp.json()
    if not isinstance(data, dict):
        raise AssertionError(f"expected a JSON object, got {type(data).__name__}: {resp.text[:200]}")
    return data


def error_code(resp: httpx.Response) -> str:
    """The first error code of an Intercom `error.list` body (checks the envelope too)."""
    data = json_body(resp)
    if data.get("type") != "error.list" or not data.get("request_id") or not data.get("errors"):
        raise AssertionError(f"not an Intercom error.list body: {data}")
    return str(data["errors"][0]["code"])


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmulatorServer:
    """The emulator app in a background thread with its own event loop, on a free port.

    ``with EmulatorServer(profile="tiny") as emu: httpx.get(emu.base_url + "/me", ...)``.
    Knobs are those of `server.build_state` (faults, endpoint_faults, rate limits, tokens, lag...).
    """

    def __init__(
        self,
        workspace: Any = None,
        profile: str = "tiny",
        seed: int = 1,
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        **knobs: Any,
    ) -> None:
        if workspace is None:
            from intercom_emulator.store import Workspace

            ws_kwargs = {k: knobs.pop(k) for k in ("scale", "timezone", "anchor") if k in knobs}
            workspace = Workspace(profile=profile, seed=seed, **ws_kwargs)
        self.workspace = workspace
        self.state: EmulatorState = build_state(workspace, **knobs)
        self.token = next(iter(self.state.tokens)) if DEFAULT_TOKEN not in self.state.tokens else DEFAULT_TOKEN
        self._port = port
        self._ssl_context = ssl_context  # serve https, as Intercom does (tests of the client's TLS)
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:<port> (https:// when serving TLS)."""
        return f"{'https' if self._ssl_context is not None else 'http'}://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        """Auth + version headers for the default token."""
        return {"Authorization": f"Bearer {self.token}", "Intercom-Version": "2.15", "Accept": "application/json"}

    @property
    def request_log(self) -> dict[str, int]:
        """Counts per endpoint template, e.g. {"POST /contacts/search": 3}."""
        return self.state.log.endpoints()

    @property
    def log(self) -> Any:
        """The full `RequestLog` (per-status counts too)."""
        return self.state.log

    def reset_log(self) -> None:
        """Zero the request counters."""
        self.state.log.reset()

    def configure(self, **knobs: Any) -> None:
        """Change faults / limits / lag at runtime (same keys as POST /_emulator/config)."""
        self.state.configure(**knobs)

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client pointed at the emulator with the default token."""
        return httpx.Client(base_url=self.base_url, headers=self.headers, **kwargs)

    def subscribe_webhooks(self, url: str, client_secret: str, topics: list[str] | None = None, **knobs: Any) -> None:
        """Register a webhook endpoint (Developer Hub > Webhooks) and set delivery knobs (webhooks.py)."""
        from intercom_emulator.webhooks import sender_of

        sender_of(self.state).subscribe(url, client_secret, topics, **knobs)

    def webhooks_settled(self, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until no notification is pending or in flight; returns the sender's status."""
        from intercom_emulator.webhooks import sender_of

        return wait_settled(sender_of(self.state).status, timeout)

    def start(self) -> EmulatorServer:
        """Start serving; returns once the port is bound."""
        self._thread = threading.Thread(target=self._run, name="intercom-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("emulator did not start within 30 s")
        if self._error is not None:
            raise RuntimeError("emulator failed to start") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._runner = web.AppRunner(create_app(self.state), access_log=None, handle_signals=False)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self._port, backlog=1024, ssl_context=self._ssl_context)
            loop.run_until_complete(site.start())
            self.port = int(self._runner.addresses[0][1])
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

    def stop(self) -> None:
        """Stop the loop and join the thread."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_settled(status: Any, timeout: float) -> dict[str, Any]:
    """Poll a webhook status source until nothing is pending (or fail after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        current = status()
        if not current["pending"]:
            return dict(current)
        if time.monotonic() > deadline:
            raise AssertionError(f"webhooks still pending after {timeout}s: {current}")
        time.sleep(0.05)


class EmulatorProcess:
    """`intercom-emulator serve` as a real subprocess (same API subset, via the control API)."""

    def __init__(self, profile: str = "tiny", seed: int = 1, port: int | None = None, args: list[str] | None = None) -> None:
        self.port = port or free_port()
        self.token = DEFAULT_TOKEN
        self.argv = [
            sys.executable,
            "-m",
            "intercom_emulator.cli",
            "serve",
            "--port",
            str(self.port),
            "--profile",
            profile,
            "--seed",
            str(seed),
            *(args or []),
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:<port>."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        """Auth + version headers for the default token."""
        return {"Authorization": f"Bearer {self.token}", "Intercom-Version": "2.15"}

    @property
    def request_log(self) -> dict[str, int]:
        """Counts per endpoint template, read through the control API."""
        resp = httpx.get(f"{self.base_url}/_emulator/requests", timeout=10)
        resp.raise_for_status()
        data = resp.json()
        if not isinstance(data, dict):
            raise RuntimeError(f"unexpected request log payload: {data!r}")
        return dict(data["endpoints"])

    def reset_log(self) -> None:
        """Zero the request counters."""
        httpx.post(f"{self.base_url}/_emulator/requests/reset", timeout=10).raise_for_status()

    def configure(self, **knobs: Any) -> None:
        """Change faults / limits at runtime through POST /_emulator/config."""
        resp = httpx.post(f"{self.base_url}/_emulator/config", json=knobs, timeout=10)
        if resp.status_code != 200:
            raise ValueError(resp.text)

    def subscribe_webhooks(self, url: str, client_secret: str, topics: list[str] | None = None, **knobs: Any) -> None:
        """Register a webhook endpoint through POST /_emulator/webhooks."""
        body = {"url": url, "client_secret": client_secret, "topics": topics, **knobs}
        httpx.post(f"{self.base_url}/_emulator/webhooks", json=body, timeout=10).raise_for_status()

    def webhooks_settled(self, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until no notification is pending or in flight."""
        return wait_settled(lambda: httpx.get(f"{self.base_url}/_emulator/webhooks", timeout=10).json(), timeout)

    def start(self, timeout: float = 60.0) -> EmulatorProcess:
        """Spawn and wait until the control API answers."""
        env = dict(os.environ)
        self.proc = subprocess.Popen(self.argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"emulator exited with {self.proc.returncode}: {err[-2000:]}")
            try:
                if httpx.get(f"{self.base_url}/_emulator/clock", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("emulator subprocess did not answer in time")

    def kill(self) -> None:
        """SIGKILL, for crash tests."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

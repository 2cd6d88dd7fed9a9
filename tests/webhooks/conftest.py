"""Fixtures for the webhook tests: the emulator sending webhooks, the receiver as a real subprocess,
and a warehouse synced by the CLI, all over real HTTP on 127.0.0.1.

The check every attack and kill test ends with (`Scene.assert_exact`): the warehouse's deleted set
equals the emulator's (ids loaded once and no longer live there), and every other row is as the
last sync left it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import pytest
import sqlalchemy as sa

from intercom_elt.pipelines.cli import main
from intercom_emulator.testing import EmulatorServer, free_port

SECRET = "test-app-client-secret"
TABLES = ("contacts", "companies", "conversations")
MARKS = ("_deleted_at", "_deleted_reason", "_dlt_valid_to")  # what a mark may change (history: closes)


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


class ReceiverProcess:
    """`intercom-sync webhooks serve` in its own process, so a test can kill it."""

    def __init__(self, target_args: list[str], port: int | None = None, extra: list[str] | None = None,
                 env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.port = port or free_port()
        self.argv = [sys.executable, "-m", "intercom_elt.pipelines.cli", "webhooks", "serve", "--port", str(self.port),
                     *target_args, *(extra or [])]
        merged = {**os.environ, "INTERCOM_CLIENT_SECRET": SECRET, **(env or {})}
        self.env = {k: v for k, v in merged.items() if v}  # an empty value unsets
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/intercom/webhooks"

    def start(self) -> ReceiverProcess:
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"receiver exited {self.proc.returncode}: {self.proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("receiver did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> str:
        """Terminate; returns what it wrote on stderr (for the no-secret-in-logs check)."""
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        out = (self.proc.stdout.read() if self.proc.stdout else b"") + (self.proc.stderr.read() if self.proc.stderr else b"")
        return out.decode(errors="replace")


class Scene:
    """One emulator, one DuckDB warehouse synced by `intercom-sync run`, one receiver subscribed."""

    dataset = "intercom_data"

    def __init__(self, emu: EmulatorServer, tmp_path: Path) -> None:
        self.emu = emu
        self.ws = emu.workspace
        self.duckdb = tmp_path / "intercom.duckdb"
        self.inbox_file = tmp_path / "intercom.webhooks.sqlite"
        self.target_args = ["--duckdb-path", str(self.duckdb), "--pipelines-dir", str(tmp_path / "dlt"), "--no-progress"]
        self.receivers: list[ReceiverProcess] = []
        self.snapshot: dict[str, set[tuple[Any, ...]]] = {}

    def receiver(self, port: int | None = None, extra: list[str] | None = None, env: dict[str, str] | None = None,
                 subscribe: bool = True, cwd: Path | None = None, secret: str = SECRET, **knobs: Any) -> ReceiverProcess:
        rec = ReceiverProcess(self.target_args, port, extra, env, cwd).start()
        self.receivers.append(rec)
        if subscribe:
            self.emu.subscribe_webhooks(rec.url, secret, **{"retry_base_seconds": 0.1, "retry_max_seconds": 0.5, **knobs})
        return rec

    def run(self, *extra: str) -> None:
        argv = ["run", "--base-url", self.emu.base_url, "--streams", ",".join(TABLES), "--no-views",
                *extra, *self.target_args]
        assert main(argv) == 0
        self.snapshot = self.rows()

    def drain(self) -> None:
        assert main(["webhooks", "drain", *self.target_args]) == 0

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.duckdb), read_only=True) as con:
            return con.sql(sql).fetchall()

    def rows(self) -> dict[str, set[tuple[Any, ...]]]:
        """Every row of the three tables, without the mark columns."""
        out = {}
        for table in TABLES:
            cols = [r[0] for r in self.query(
                f"select column_name from information_schema.columns where table_schema='{self.dataset}' "
                f"and table_name='{table}' and column_name not in {MARKS} order by column_name")]
            out[table] = {tuple(orjson.dumps(v, option=orjson.OPT_SORT_KEYS) if isinstance(v, (list, dict)) else v
                                for v in row)
                          for row in self.query(f"select {', '.join(cols)} from {self.dataset}.{table}")}
        return out

    def deleted(self, table: str) -> dict[str, str]:
        return dict(self.query(f"select id, _deleted_reason from {self.dataset}.{table} where _deleted_at is not null"))

    def truth_deleted(self, table: str) -> set[str]:
        """Ids the warehouse holds that the emulator no longer has live."""
        loaded = {r[0] for r in self.query(f"select id from {self.dataset}.{table}")}
        live = set(map(str, self.ws.ids(table)))
        return loaded - live

    def inbox_url(self) -> str:
        return f"sqlite:///{self.inbox_file}"

    def inbox(self, sql: str = "select notification_id, topic, item_id from _intercom_webhook_inbox") -> list[tuple[Any, ...]]:
        engine = sa.create_engine(self.inbox_url())
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(sa.text(sql)).all()]
        finally:
            engine.dispose()

    def post(self, url: str, payload: dict[str, Any] | bytes, signature: str | None = "auto",
             local_address: str | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if signature == "auto":
            signature = sign(body)
        if signature is not None:
            hdrs["X-Hub-Signature"] = signature
        transport = httpx.HTTPTransport(local_address=local_address) if local_address else None
        with httpx.Client(transport=transport, timeout=10) as client:
            return client.post(url, content=body, headers=hdrs)

    def notification(self, topic: str, item: dict[str, Any], nid: str = "notif_forged-1") -> dict[str, Any]:
        now = self.ws.clock.now()
        return {"type": "notification_event", "app_id": self.ws.app["id_code"], "id": nid, "topic": topic,
                "data": {"type": "notification_event_data", "item": item}, "delivery_attempts": 1,
                "first_sent_at": now, "created_at": now}

    def live_contact(self, k: int = 0) -> str:
        loaded = {r[0] for r in self.query(f"select id from {self.dataset}.contacts where _deleted_at is null")}
        return [c for c in map(str, self.ws.ids("contacts")) if c in loaded][k]

    def assert_exact(self) -> None:
        """The warehouse's deleted set equals the emulator's; nothing else changed since the last run."""
        for table in TABLES:
            assert set(self.deleted(table)) == self.truth_deleted(table), table
        assert self.rows() == self.snapshot

    def close(self) -> str:
        return "".join(r.stop() for r in self.receivers)


class PgScene(Scene):
    """The same on Postgres: warehouse and inbox (`<dataset>._intercom_webhook_inbox`) on the test server."""

    def __init__(self, emu: EmulatorServer, tmp_path: Path, dsn: str, dataset: str) -> None:
        super().__init__(emu, tmp_path)
        self.dsn, self.dataset = dsn, dataset
        self.target_args = ["--destination", "postgres", "--dataset", dataset, "--pipelines-dir",
                            str(tmp_path / "dlt"), "--no-progress"]

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        import psycopg2

        with psycopg2.connect(self.dsn) as conn, conn.cursor() as cur:
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]

    def inbox_url(self) -> str:
        return self.dsn

    def inbox(self, sql: str = "select notification_id, topic, item_id from _intercom_webhook_inbox") -> list[tuple[Any, ...]]:
        return self.query(sql.replace("_intercom_webhook_inbox", f"{self.dataset}._intercom_webhook_inbox"))


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(profile="tiny", seed=5) as server:
        yield server


@pytest.fixture
def scene(emu: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scene]:
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", emu.token)
    monkeypatch.setenv("INTERCOM_CLIENT_SECRET", SECRET)
    s = Scene(emu, tmp_path)
    yield s
    logs = s.close()
    assert SECRET not in logs


@pytest.fixture
def pg_scene(emu: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_credentials: str,
             postgres_dataset: str) -> Iterator[PgScene]:
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", emu.token)
    monkeypatch.setenv("INTERCOM_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_credentials)
    s = PgScene(emu, tmp_path, postgres_credentials, postgres_dataset)
    yield s
    assert SECRET not in s.close()

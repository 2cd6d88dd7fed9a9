"""The /_emulator/ control API, the CLI subprocess, and a throughput smoke run."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import httpx
import orjson

from intercom_emulator.testing import EmulatorProcess, EmulatorServer, json_body

log = logging.getLogger(__name__)


def test_clock_advance_and_mutations_are_visible_through_the_api(emulator: EmulatorServer, api: httpx.Client) -> None:
    base = emulator.base_url
    emulator.workspace.clock.freeze()  # so "== clock.now()" below cannot race a second boundary
    before = json_body(httpx.get(f"{base}/_emulator/clock"))["now"]
    after = json_body(httpx.post(f"{base}/_emulator/clock/advance", json={"seconds": 3600}))["now"]
    assert after - before >= 3600
    assert after == emulator.workspace.clock.now()

    target = emulator.workspace.ids("contacts")[0]
    resp = httpx.post(f"{base}/_emulator/mutate", json={"op": "update_contact", "args": {"id": target, "name": "Renamed"}})
    assert resp.status_code == 200, resp.text
    contact = json_body(api.get(f"/contacts/{target}"))
    assert contact["name"] == "Renamed"
    assert contact["updated_at"] == emulator.workspace.clock.now()

    resp = httpx.post(f"{base}/_emulator/mutate", json={"op": "delete_contact", "args": {"id": target}})
    assert resp.status_code == 200
    assert api.get(f"/contacts/{target}").status_code == 404
    listed = json_body(api.get("/contacts", params={"per_page": 150}))
    assert target not in {c["id"] for c in listed["data"]}
    assert listed["total_count"] == emulator.workspace.count("contacts")

    resp = httpx.post(f"{base}/_emulator/mutate", json={"op": "__class__", "args": {}})
    assert resp.status_code == 400


def test_config_endpoint_changes_behaviour(emulator: EmulatorServer, api: httpx.Client) -> None:
    resp = httpx.post(f"{emulator.base_url}/_emulator/config", json={"faults": {"error_rate": 1.0, "error_statuses": [502]}})
    assert resp.status_code == 200
    assert json_body(resp)["faults"]["error_rate"] == 1.0
    assert api.get("/tags").status_code == 502
    httpx.post(f"{emulator.base_url}/_emulator/config", json={"reset_faults": True})
    assert api.get("/tags").status_code == 200


def test_ground_truth_and_dump(emulator: EmulatorServer, tmp_path: Path) -> None:
    resp = httpx.get(f"{emulator.base_url}/_emulator/ground_truth/contacts")
    assert resp.status_code == 200
    rows = [orjson.loads(line) for line in resp.content.splitlines() if line]
    assert sorted(r["id"] for r in rows) == sorted(emulator.workspace.ids("contacts"))
    resp = httpx.post(f"{emulator.base_url}/_emulator/dump", json={"out": str(tmp_path)}, timeout=60)
    assert resp.status_code == 200
    lines = (tmp_path / "contacts.jsonl").read_text().splitlines()
    assert len(lines) == emulator.workspace.count("contacts")


def test_cli_serve_subprocess_answers_me() -> None:
    with EmulatorProcess(profile="tiny", seed=1, args=["--token", "secret:read_admins"]) as proc:
        proc.token = "secret"
        resp = httpx.get(f"{proc.base_url}/me", headers=proc.headers, timeout=10)
        assert resp.status_code == 200
        assert json_body(resp)["type"] == "admin"
        denied = httpx.get(f"{proc.base_url}/contacts", headers=proc.headers, timeout=10)
        assert denied.status_code == 401
        assert proc.request_log == {"GET /me": 1, "GET /contacts": 1}
        proc.configure(faults={"error_rate": 1.0})
        assert httpx.get(f"{proc.base_url}/me", headers=proc.headers, timeout=10).status_code >= 500
        proc.kill()
        assert proc.proc is not None and proc.proc.poll() is not None


def test_throughput_smoke(emulator: EmulatorServer) -> None:
    """Not a timed assertion: prints requests/s of a search + detail mix (real numbers live in bench/)."""
    ids = emulator.workspace.ids("conversations")
    query = {"query": {"field": "created_at", "operator": ">", "value": 0}, "pagination": {"per_page": 150}}

    async def run() -> tuple[int, float]:
        connector = aiohttp.TCPConnector(limit=200)
        async with aiohttp.ClientSession(emulator.base_url, headers=emulator.headers, connector=connector) as s:

            async def call(method: str, path: str, payload: dict | None = None) -> int:
                async with s.request(method, path, json=payload) as resp:
                    await resp.read()
                    return resp.status

            started = time.perf_counter()
            n = 0
            for _ in range(5):
                calls = [call("POST", "/contacts/search", query) for _ in range(10)]
                calls += [call("GET", f"/conversations/{cid}") for cid in ids[:20]]
                results = await asyncio.gather(*calls)
                assert all(r == 200 for r in results)
                n += len(results)
            return n, time.perf_counter() - started

    n, elapsed = asyncio.run(run())
    log.warning("throughput smoke: %d requests in %.2fs = %.0f req/s", n, elapsed, n / elapsed)
    assert n == 150


def test_200_concurrent_connections_with_simulated_latency(emulator: EmulatorServer) -> None:
    """Latency is asyncio.sleep, so 200 concurrent 300 ms requests overlap instead of queueing."""
    emulator.configure(faults={"latency_ms": 300})

    async def run() -> tuple[list[int], float]:
        connector = aiohttp.TCPConnector(limit=200)
        async with aiohttp.ClientSession(emulator.base_url, headers=emulator.headers, connector=connector) as s:

            async def call() -> int:
                async with s.get("/tags") as resp:
                    await resp.read()
                    return resp.status

            started = time.perf_counter()
            statuses = await asyncio.gather(*[call() for _ in range(200)])
            return list(statuses), time.perf_counter() - started

    statuses, elapsed = asyncio.run(run())
    log.warning("200 concurrent requests with 300 ms latency took %.2fs", elapsed)
    assert statuses == [200] * 200
    assert emulator.log.count("GET /tags", 200) == 200
    assert elapsed < 200 * 0.3 / 4  # far from serialised (60 s); generous for a shared 2-core box


def test_cli_dump_writes_ground_truth(tmp_path: Path) -> None:
    from intercom_emulator.store import Workspace

    out = tmp_path / "truth"
    done = subprocess.run(
        [sys.executable, "-m", "intercom_emulator.cli", "dump", "--profile", "tiny", "--seed", "1", "--out", str(out)],
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    expected = Workspace(profile="tiny", seed=1)
    ids = [orjson.loads(line)["id"] for line in (out / "contacts.jsonl").read_text().splitlines()]
    assert sorted(ids) == sorted(expected.ids("contacts"))
    conversations = (out / "conversations.jsonl").read_text().splitlines()
    assert len(conversations) == expected.count("conversations")

"""Fault injection over real HTTP: each fault is switched on alone and observed by a real client."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest

from intercom_emulator.testing import EmulatorServer, error_code, json_body


def test_latency_and_jitter_delay_responses(emulator: EmulatorServer, api: httpx.Client) -> None:
    emulator.configure(faults={"latency_ms": 200, "latency_jitter_ms": 50})
    started = time.perf_counter()
    assert api.get("/tags").status_code == 200
    elapsed = time.perf_counter() - started
    assert 0.14 <= elapsed < 2.0


def test_error_rate_gives_transient_5xx_codes(emulator: EmulatorServer, api: httpx.Client) -> None:
    emulator.configure(faults={"error_rate": 1.0})
    seen = set()
    for _ in range(30):
        resp = api.get("/tags")
        assert resp.status_code in (500, 502, 503, 504)
        assert error_code(resp) == "server_error"
        seen.add(resp.status_code)
    assert len(seen) >= 3
    emulator.configure(faults={"error_rate": 0.0})
    assert api.get("/tags").status_code == 200


def test_429_bursts_come_in_runs(emulator: EmulatorServer, api: httpx.Client) -> None:
    emulator.configure(faults={"burst_429_every": 5, "burst_429_length": 2})
    statuses = [api.get("/tags").status_code for _ in range(10)]
    assert statuses == [200, 200, 200, 429, 429] * 2


def test_per_endpoint_faults_leave_other_endpoints_alone(emulator: EmulatorServer, api: httpx.Client) -> None:
    emulator.configure(endpoint_faults={"GET /conversations/{id}": {"error_rate": 1.0, "error_statuses": [503]}})
    cid = emulator.workspace.ids("conversations")[0]
    assert api.get(f"/conversations/{cid}").status_code == 503
    assert api.get("/conversations").status_code == 200
    emulator.configure(endpoint_faults={"GET /conversations/{id}": None})
    assert api.get(f"/conversations/{cid}").status_code == 200


def test_dropped_connection_mid_body(emulator: EmulatorServer, api: httpx.Client) -> None:
    emulator.configure(faults={"drop_rate": 1.0})
    with pytest.raises(httpx.RemoteProtocolError):
        api.get("/contacts")
    emulator.configure(faults={"drop_rate": 0.0})
    assert api.get("/contacts").status_code == 200  # the server survived


def test_slow_response_exceeds_client_timeout(emulator: EmulatorServer, api: httpx.Client) -> None:
    emulator.configure(faults={"slow_rate": 1.0, "slow_seconds": 1.5})
    with pytest.raises(httpx.ReadTimeout):
        api.get("/tags", timeout=0.5)


def test_malformed_json_with_200(emulator: EmulatorServer, api: httpx.Client) -> None:
    emulator.configure(faults={"malformed_rate": 1.0})
    resp = api.get("/contacts")
    assert resp.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(resp.content)


def test_unknown_extra_fields_and_type_drift(emulator: EmulatorServer, api: httpx.Client) -> None:
    ws = emulator.workspace
    emulator.configure(faults={"extra_fields_rate": 1.0})
    page = json_body(api.get("/contacts", params={"per_page": 10}))
    assert all("x_unannounced_field" in c for c in page["data"])
    emulator.configure(faults={"extra_fields_rate": 0.0, "type_drift_rate": 0.5})
    page = json_body(api.get("/contacts", params={"per_page": 40}))
    drifted = [c for c in page["data"] if isinstance(c["updated_at"], str)]
    assert 0 < len(drifted) < len(page["data"])
    for c in drifted:
        assert int(c["updated_at"]) == ws.get("contacts", c["id"])["updated_at"]
    # the store itself is untouched
    assert all(isinstance(c["updated_at"], int) for c in ws.iter("contacts"))


def test_scroll_500_mid_scroll_forces_restart(emulator: EmulatorServer, api: httpx.Client) -> None:
    emulator.configure(scroll_page_size=3, faults={"scroll_error_on_page": 2})
    param = json_body(api.get("/companies/scroll"))["scroll_param"]
    resp = api.get("/companies/scroll", params={"scroll_param": param})
    assert resp.status_code == 500
    assert "restart the scroll" in json_body(resp)["errors"][0]["message"]
    # cannot resume; a fresh scroll works and is complete
    assert api.get("/companies/scroll", params={"scroll_param": param}).status_code == 404
    first = json_body(api.get("/companies/scroll"))
    ids = [c["id"] for c in first["data"]]
    while True:
        page = json_body(api.get("/companies/scroll", params={"scroll_param": first["scroll_param"]}))
        if not page["data"]:
            break
        ids.extend(c["id"] for c in page["data"])
    assert sorted(ids) == sorted(emulator.workspace.ids("companies"))


def test_forced_scroll_exists(emulator: EmulatorServer, api: httpx.Client) -> None:
    emulator.configure(faults={"force_scroll_exists": True})
    resp = api.get("/companies/scroll")
    assert resp.status_code == 400
    assert error_code(resp) == "scroll_exists"


def test_activity_logs_wide_window_500(emulator: EmulatorServer, api: httpx.Client) -> None:
    emulator.configure(activity_logs_max_window_seconds=5 * 86400)
    now = emulator.workspace.clock.now()
    wide = api.get("/admins/activity_logs", params={"created_at_after": now - 30 * 86400, "created_at_before": now})
    assert wide.status_code == 500
    narrow = api.get("/admins/activity_logs", params={"created_at_after": now - 5 * 86400, "created_at_before": now})
    assert narrow.status_code == 200


def test_config_rejects_unknown_knobs(emulator: EmulatorServer) -> None:
    with pytest.raises(ValueError):
        emulator.configure(faults={"eror_rate": 1.0})
    resp = httpx.post(f"{emulator.base_url}/_emulator/config", json={"faults": {"nope": 1}})
    assert resp.status_code == 400

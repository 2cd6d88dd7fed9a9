"""Client behaviours against the emulator: retries, rate limits, permissions, token redaction."""

from __future__ import annotations

import gc
import logging
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import dlt
import pytest

from intercom_elt.pipelines.config import SourceSettings
from intercom_elt.pipelines.preflight import check_workspace
from intercom_elt.sources.intercom import (
    IntercomAuthError,
    IntercomClient,
    IntercomPermissionError,
    IntercomRegionError,
    intercom_source,
    settings,
)
from intercom_elt.sources.intercom.client import HttpClient
from intercom_elt.sources.intercom.errors import IntercomScrollError
from intercom_elt.sources.intercom.rate_limit import RateLimiter
from intercom_elt.sources.intercom.specs import SPECS, check_scopes
from intercom_elt.sources.intercom.transport import ConnectionPerThread
from intercom_emulator.testing import EmulatorServer

SECRET = "tok_RECOGNISABLE_s3cr3t_4242"


def _client(emu: EmulatorServer, token: str | None = None, **kw: object) -> IntercomClient:
    return IntercomClient(token or emu.token, base_url=emu.base_url, backoff_base=0.01, **kw)  # type: ignore[arg-type]


def test_retries_5xx_and_malformed_bodies(emu: EmulatorServer) -> None:
    emu.configure(endpoint_faults={"GET /admins": {"error_rate": 0.4, "malformed_rate": 0.2}})
    with _client(emu) as client:
        for _ in range(12):
            assert len(client.list_records("admins")) == len(emu.workspace.ground_truth("admins"))
        stats = client.stats.as_dict()
    assert stats["total_retries"] > 0
    assert stats["requests"]["GET /admins"] == 12 + stats["total_retries"] == emu.request_log["GET /admins"]


def test_429_waits_for_reset_then_succeeds(emu: EmulatorServer) -> None:
    emu.configure(endpoint_faults={"GET /tags": {"burst_429_every": 3, "burst_429_length": 1}})
    with _client(emu) as client:
        for _ in range(6):
            assert len(client.list_records("tags")) == len(emu.workspace.ground_truth("tags"))
        assert client.stats.rate_limited >= 1
        assert client.stats.requests["GET /tags"] == 6 + client.stats.rate_limited


def test_limiter_slows_down_before_the_limit(emu: EmulatorServer) -> None:
    emu.configure(rate_limit_per_minute=120)  # 20 calls per 10-second window
    with _client(emu) as client:
        for _ in range(25):
            client.list_records("teams")
        assert client.stats.rate_limited == 0  # paced, never hit the wall
        assert client.stats.rate_limit_wait_seconds > 0


def test_limiter_unit_behaviour() -> None:
    now = [1000.0]
    slept: list[float] = []
    lim = RateLimiter(clock=lambda: now[0], sleep=slept.append, jitter=0.0, min_low_water=5)
    assert lim.acquire() == 0  # no headers: no wait at all
    lim.update({"x-ratelimit-limit": "100", "x-ratelimit-remaining": "50", "x-ratelimit-reset": "1010"})
    assert lim.acquire() == 0  # plenty left
    lim.update({"x-ratelimit-limit": "100", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1010"})
    assert lim.acquire() == pytest.approx(10.0)  # 0 is a real value: wait for the reset
    now[0] = 1011.0
    assert lim.acquire() == 0  # window passed


def test_a_new_window_counts_the_requests_still_in_flight() -> None:
    """30 workers send at once and the window's first answer comes back: the server may count the
    other 29 after it, so the limiter takes them as spent. Before, it took the answer's count as it
    was and let 39 more go, 69 sends into a window of 40: the rest answered 429."""
    now = [1000.0]
    lim = RateLimiter(clock=lambda: now[0], sleep=lambda s: None, jitter=0.0, min_low_water=0, low_water_fraction=0.0)
    for _ in range(30):
        assert lim.acquire() == 0  # no headers yet: all go
    lim.update({"x-ratelimit-limit": "40", "x-ratelimit-remaining": "39", "x-ratelimit-reset": "1010"})
    lim.settled()
    more = 0
    while lim.acquire() == 0 and more < 100:
        more += 1
    assert 30 + more <= 40 and more == 10
    for _ in range(29 + more):  # the others answer, in any order: nothing changes but the count
        lim.settled()
    assert lim.snapshot()["remaining"] == 0


def test_proxy_from_the_environment_is_used(emu: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY is honoured: the API host here is a closed port, only the proxy (the emulator,
    which answers absolute-form requests by path) can answer, so success means the proxy was used."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", emu.base_url)
    with IntercomClient(emu.token, base_url="http://localhost:9", max_retries=0) as client:
        assert client.me()["type"] == "admin"
        assert client.search("contacts_search", {"field": "updated_at", "operator": ">", "value": "0"}).__next__()


def test_each_thread_keeps_its_own_connection_until_it_ends(emu: EmulatorServer) -> None:
    """transport.py: a thread's requests share one keep-alive connection, no two threads share
    one, and a thread's connection is closed when the thread ends (a split search's readers come
    and go with each stream), as every one still open is when the client closes."""
    client = _client(emu)
    transport = client._direct
    assert isinstance(transport, ConnectionPerThread)
    ports: dict[str, set[int]] = {}
    open_together: list[int] = []
    all_asked = threading.Barrier(4, action=lambda: open_together.append(transport.connections))

    def ask() -> None:
        name = threading.current_thread().name
        for _ in range(3):
            response = client._send("GET", "/teams", None, None)
            assert response.status_code == 200
            ports.setdefault(name, set()).add(response.extensions["network_stream"].get_extra_info("client_addr")[1])
        all_asked.wait()

    threads = [threading.Thread(target=ask, name=f"reader-{i}") for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert open_together == [4]  # the four threads' connections, open at once
    assert sorted(len(p) for p in ports.values()) == [1, 1, 1, 1]  # one connection per thread, kept alive
    assert len(set().union(*ports.values())) == 4  # and none shared
    gc.collect()
    assert transport.connections == 0  # the ended threads' connections were closed
    client.me()  # this thread's own
    assert transport.connections == 1
    client.close()
    assert transport.connections == 0


def test_detail_pool_is_sized_from_what_one_process_can_send(emu: EmulatorServer) -> None:
    """Workers = min(quota, CLIENT_MAX_CALLS_PER_SECOND) x observed latency: an unlimited quota
    with a fast server gives a small pool (more threads only fight for the GIL), Intercom's
    10,000 a minute at 100 ms gives the 27 workers that keep the quota busy."""
    emu.configure(rate_limit_per_minute=60_000_000, workspace_rate_limit_per_minute=0, faults={"latency_ms": 10})
    with _client(emu) as client:
        client.list_records("teams")
        fast = client.suggested_concurrency(32)
    assert 2 < fast <= 20, fast  # ceil(400/s x ~0.012 s x 1.5) + 2; uncapped it would be 32
    emu.configure(rate_limit_per_minute=10_000, workspace_rate_limit_per_minute=25_000, faults={"latency_ms": 100})
    with _client(emu) as client:
        client.list_records("teams")
        quota_bound = client.suggested_concurrency(32)
    assert 27 <= quota_bound <= 32, quota_bound  # ceil(166.7/s x >= 0.1 s x 1.5) + 2


def test_permission_error_names_the_permission(emu: EmulatorServer) -> None:
    emu.configure(tokens=["limited-token:read_tags,read_admins"])
    with _client(emu, "limited-token") as client:
        with pytest.raises(IntercomPermissionError) as err:
            client.search("conversations_search", {"field": "updated_at", "operator": ">", "value": "0"}).__next__()
        assert "Read conversations" in str(err.value) and "Developer Hub" in str(err.value)
        scopes = check_scopes(client, ["tags", "contacts", "conversation_parts"])
    assert scopes["tags"] is None
    assert "Read and list users and companies" in (scopes["contacts"] or "")
    assert "Read conversations" in (scopes["conversation_parts"] or "")


def test_preflight_sends_the_probes_together(emu: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's preflight (/me, then one probe per endpoint: eleven calls for every stream) was a
    second of latency one call after another; the probes are now in flight together, after /me
    (a revoked token still costs one call, test_run_history). A spy counts the requests open at
    once, around the real exchange with the emulator (200 ms each)."""
    emu.configure(faults={"latency_ms": 200})
    open_now, most = 0, 0
    lock = threading.Lock()
    send = HttpClient._send

    def counted(self: HttpClient, *args: Any) -> Any:
        nonlocal open_now, most
        with lock:
            open_now += 1
            most = max(most, open_now)
        try:
            return send(self, *args)
        finally:
            with lock:
                open_now -= 1

    monkeypatch.setattr(HttpClient, "_send", counted)
    settings = SourceSettings(access_token=emu.token, base_url=emu.base_url)
    with _client(emu) as client:
        report = check_workspace(settings, None, client)
        requests = client.stats.total_requests
    assert report.me["type"] == "admin" and all(report.allowed.values())
    probes = len({spec.probe for spec in SPECS.values() if spec.companion_of is None})
    assert requests == probes + 1
    assert most == min(probes, 8), (most, probes)  # the probes' pool of 8


def test_invalid_token_and_wrong_region(emu: EmulatorServer) -> None:
    with _client(emu, "not-a-real-token") as client, pytest.raises(IntercomAuthError, match="invalid or revoked"):
        client.me()
    with IntercomClient(emu.token, base_url=emu.base_url + "/wrong-region") as client, pytest.raises(
        IntercomRegionError, match="region"
    ):
        client.me()


def test_intercom_version_header_is_a_string(emu: EmulatorServer) -> None:
    with pytest.raises(ValueError, match="string"):
        IntercomClient("t", base_url=emu.base_url, intercom_version=2.1)  # type: ignore[arg-type]


def test_token_never_logged_or_shown(emu: EmulatorServer, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    emu.configure(tokens=[f"{SECRET}:read_tags"], endpoint_faults={"GET /tags": {"error_rate": 0.5}})
    monkeypatch.setenv("SOURCES__INTERCOM__ACCESS_TOKEN", SECRET)
    caplog.set_level(logging.DEBUG)
    pipeline = dlt.pipeline("redaction", destination=dlt.destinations.duckdb(str(tmp_path / "w.duckdb")),
                            dataset_name="ds", pipelines_dir=str(tmp_path / "p"))
    client = IntercomClient(SECRET, base_url=emu.base_url)
    source = intercom_source(base_url=emu.base_url, streams=["tags", "admins"], start_date="2025-01-01", client=client)
    with pytest.raises(Exception) as err:  # admins needs a permission this token lacks
        pipeline.run(source)
    text = "\n".join([caplog.text, str(err.value), repr(err.value), repr(client),
                      "".join(traceback.format_exception(err.value)), str(pipeline.last_trace)])
    assert "Read admins" in text
    assert SECRET not in text


def test_rerun_timing_is_fast_without_headers(emu: EmulatorServer) -> None:
    with _client(emu) as client:
        t = time.monotonic()
        for _ in range(10):
            client.list_records("segments", params={"include_count": "true"})
        assert time.monotonic() - t < 3.0  # never a fixed sleep per request


def test_companies_scroll_restarts_cleanly_after_500(emu: EmulatorServer) -> None:
    emu.configure(scroll_page_size=5, faults={"scroll_error_on_page": 2, "scroll_error_times": 1})
    with _client(emu) as client:
        ids = [str(c["id"]) for page in client.scroll_companies() for c in page]
        assert client.stats.scroll_restarts == 1
    truth = sorted(str(c["id"]) for c in emu.workspace.ground_truth("companies"))
    assert sorted(ids) == truth and len(ids) == len(set(ids))


def test_companies_scroll_keeps_restarting_while_it_gets_further(emu: EmulatorServer) -> None:
    """Every page after the first breaks its scroll once (5 restarts, more than the 3 allowed in a
    row); each restart reaches a new page, so the scroll finishes with every company once."""
    emu.configure(scroll_page_size=3, faults={"scroll_error_on_page": 2, "scroll_error_times": 1})
    ids: list[str] = []
    with _client(emu) as client:
        for pages, page in enumerate(client.scroll_companies(), start=1):
            ids += [str(c["id"]) for c in page]
            # the next page of the next scroll breaks once more
            emu.configure(faults={"scroll_error_on_page": pages + 1, "scroll_error_times": pages})
        restarts = client.stats.scroll_restarts
    truth = sorted(str(c["id"]) for c in emu.workspace.ground_truth("companies"))
    assert sorted(ids) == truth and len(ids) == len(set(ids))
    assert restarts > settings.SCROLL_MAX_RESTARTS, restarts


def test_companies_scroll_gives_up_when_restarts_reach_nothing_new(emu: EmulatorServer) -> None:
    """A scroll that always breaks at page 2 fails the sync after 3 fruitless restarts in a row."""
    emu.configure(scroll_page_size=3, faults={"scroll_error_on_page": 2, "scroll_error_times": 100})
    with _client(emu) as client, pytest.raises(IntercomScrollError, match="without reaching a new company"):
        for _ in client.scroll_companies():
            pass
    assert client.stats.scroll_restarts == 1 + settings.SCROLL_MAX_RESTARTS + 1

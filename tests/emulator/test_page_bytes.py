"""List and search pages joined from stored bytes (`cache_records`, the benchmarks' emulator).

A page of a big workspace is no longer decoded and encoded again record by record; it must
still be the same page: the same bytes as a workspace that builds each record on every read,
the newest version of a changed record, no deleted one, and data faults still applied.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from intercom_emulator import store
from intercom_emulator.store import Workspace
from intercom_emulator.testing import EmulatorProcess, EmulatorServer, json_body

PAGES = (
    ("POST", "/contacts/search", {"query": {"field": "updated_at", "operator": ">", "value": 0},
                                  "pagination": {"per_page": 7}}),
    ("POST", "/conversations/search", {"query": {"field": "updated_at", "operator": ">", "value": 0},
                                       "pagination": {"per_page": 5}}),
    ("GET", "/contacts?per_page=9", None),
    ("GET", "/conversations?per_page=4", None),
)


def walk(api: httpx.Client, method: str, path: str, body: dict[str, Any] | None) -> list[bytes]:
    """Every page's raw body, following the cursor the way the connector does."""
    pages: list[bytes] = []
    cursor = None
    for _ in range(500):
        if method == "POST":
            payload = orjson.loads(orjson.dumps(body))
            if cursor:
                payload["pagination"]["starting_after"] = cursor
            resp = api.post(path, json=payload)
        else:
            resp = api.get(path + (f"&starting_after={cursor}" if cursor else ""))
        assert resp.status_code == 200, resp.text
        pages.append(resp.content)
        nxt = json_body(resp)["pages"].get("next")
        if not nxt:
            return pages
        cursor = nxt["starting_after"]
    raise AssertionError("the walk never ended")


def serve_all(ws: Workspace, **knobs: Any) -> dict[str, list[bytes]]:
    with EmulatorServer(workspace=ws, **knobs) as emu, emu.client(timeout=30) as api:
        return {path: walk(api, method, path, body) for method, path, body in PAGES}


@pytest.fixture
def tiny_cache_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny workspace counts as big: without `cache_records` every read builds the record."""
    monkeypatch.setattr(store, "CACHE_LIMIT", 3)


@pytest.mark.usefixtures("tiny_cache_limit")
def test_joined_pages_are_byte_for_byte_the_pages_of_records_built_on_each_read() -> None:
    built = Workspace(profile="tiny", seed=1, anchor=1_760_000_000)
    cached = Workspace(profile="tiny", seed=1, anchor=1_760_000_000, cache_records=True)
    assert not built._cache["contacts"], "the limit did not make the tiny workspace a big one"
    assert len(cached._cache["contacts"]) == cached.count("contacts"), "contacts were not built at start"
    cached.clock = built.clock  # one frozen clock: both changes are stamped the same second
    built.clock.freeze()
    for ws in (built, cached):  # a changed and a deleted record, after the first reads
        serve_all(ws)
        ids = ws.ids("contacts")
        ws.update_contact(ids[1], name="Renamed After Caching")
        ws.delete_contact(ids[2])

    expected, served = serve_all(built), serve_all(cached)
    assert served == expected
    contacts = [r for page in served["/contacts/search"] for r in orjson.loads(page)["data"]]
    truth = {r["id"]: r for r in cached.ground_truth("contacts")}
    assert {r["id"] for r in contacts} == set(truth)
    assert all(r == truth[r["id"]] for r in contacts)
    assert truth[ids[1]]["name"] == "Renamed After Caching" and ids[2] not in truth
    first = orjson.loads(served["/contacts/search"][0])
    assert list(first) == ["type", "data", "total_count", "pages"]
    assert first["total_count"] == len(truth)


@pytest.mark.usefixtures("tiny_cache_limit")
def test_data_faults_still_edit_the_records_of_a_joined_page() -> None:
    cached = Workspace(profile="tiny", seed=1, anchor=1_760_000_000, cache_records=True)
    pages = serve_all(cached, faults={"extra_fields_rate": 1.0})
    for path, bodies in pages.items():
        key = "conversations" if "conversations" in path else "data"
        records = [r for body in bodies for r in orjson.loads(body)[key]]
        assert records and all(r.get("ai_flag_v3") is True for r in records), path
    clean = serve_all(cached)  # and the stored bytes kept no fault
    assert not any(b"ai_flag_v3" in body for bodies in clean.values() for body in bodies)


def test_serve_cache_records_flag_serves_a_search() -> None:
    emu = EmulatorProcess(profile="tiny", args=["--cache-records", "--log-level", "WARNING"]).start()
    try:
        resp = httpx.post(f"{emu.base_url}/contacts/search", headers=emu.headers,
                          json={"query": {"field": "updated_at", "operator": ">", "value": 0}}, timeout=30)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert page["type"] == "list" and len(page["data"]) == page["total_count"] == 40  # tiny: 40 contacts
    finally:
        emu.stop()

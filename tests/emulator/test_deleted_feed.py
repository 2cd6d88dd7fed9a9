"""GET /conversations/deleted as the 2.16 OpenAPI description says, and deleted conversations vanish."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema_rs
import pytest
import yaml

from intercom_emulator.testing import EmulatorServer, error_code
from tests.openapi_files import require_openapi


@pytest.fixture(scope="module")
def emu() -> Any:
    with EmulatorServer(profile="tiny", seed=3) as server:
        ws = server.workspace
        for k, cid in enumerate(ws.ids("conversations")[:7]):
            ws.clock.advance(10 + k)
            ws.delete_conversation(cid)
        yield server


def _get(emu: EmulatorServer, version: str = "2.16", **params: Any) -> httpx.Response:
    headers = dict(emu.headers, **{"Intercom-Version": version})
    return httpx.get(f"{emu.base_url}/conversations/deleted", params=params, headers=headers, timeout=10)


def _list_schema() -> dict[str, Any]:
    spec = yaml.safe_load(require_openapi("2.16").read_text())
    schemas = spec["components"]["schemas"]
    out = dict(schemas["deleted_conversation_list"])
    pages = dict(schemas["pages_link"])  # OpenAPI 3.0 `nullable: true` in JSON Schema terms
    pages["properties"] = dict(pages["properties"], next={"type": ["string", "null"], "format": "uri"})
    out["properties"] = dict(out["properties"], pages=pages,
                             conversations={"type": "array", "items": schemas["deleted_conversation_item"]})
    return out


def test_pages_cover_every_deleted_conversation_once_newest_first(emu: EmulatorServer) -> None:
    validator = jsonschema_rs.validator_for(_list_schema())
    seen: list[tuple[str, int]] = []
    url: str | None = f"{emu.base_url}/conversations/deleted?per_page=3"
    while url:
        body = httpx.get(url, headers=dict(emu.headers, **{"Intercom-Version": "2.16"}), timeout=10).json()
        validator.validate(body)
        assert body["total_count"] == 7 and body["pages"]["total_pages"] == 3
        seen += [(c["id"], c["deleted_at"]) for c in body["conversations"]]
        url = body["pages"]["next"]
    truth = emu.workspace.deleted_conversations()
    assert sorted(seen) == sorted(truth) and len(seen) == 7
    assert [at for _, at in seen] == sorted((at for _, at in truth), reverse=True)
    asc = _get(emu, per_page=60, order="asc").json()["conversations"]
    assert [c["deleted_at"] for c in asc] == sorted(at for _, at in truth)


def test_per_page_is_capped_at_60_and_defaults_to_20(emu: EmulatorServer) -> None:
    assert _get(emu, per_page=500).json()["pages"]["per_page"] == 60
    assert _get(emu).json()["pages"]["per_page"] == 20
    assert _get(emu, page=9).json()["conversations"] == []


@pytest.mark.parametrize("version", ["2.15", "2.13", "2.11"])
def test_older_versions_answer_400_intercom_version_invalid(emu: EmulatorServer, version: str) -> None:
    resp = _get(emu, version=version)
    assert resp.status_code == 400 and error_code(resp) == "intercom_version_invalid"


def test_bad_order_or_page_is_a_400(emu: EmulatorServer) -> None:
    assert _get(emu, order="sideways").status_code == 400
    assert _get(emu, page=0).status_code == 400


def test_a_deleted_conversation_is_gone_from_get_list_and_ground_truth(emu: EmulatorServer) -> None:
    gone = {cid for cid, _ in emu.workspace.deleted_conversations()}
    some = next(iter(gone))
    assert httpx.get(f"{emu.base_url}/conversations/{some}", headers=emu.headers, timeout=10).status_code == 404
    listed = httpx.get(f"{emu.base_url}/conversations", params={"per_page": 150}, headers=emu.headers, timeout=10)
    assert gone.isdisjoint(c["id"] for c in listed.json()["conversations"])
    truth = {c["id"] for c in emu.workspace.ground_truth("conversations")}
    assert gone.isdisjoint(truth)
    assert {p["conversation_id"] for p in emu.workspace.ground_truth("conversation_parts")}.isdisjoint(gone)

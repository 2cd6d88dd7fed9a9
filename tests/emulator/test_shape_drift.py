"""Shape drift: the drift functions on records, then the knobs over real HTTP.

What must hold for the connector tests to mean anything: a valid drift never removes what a row or
a child row is made of (`id`, `type`, the cursor, relation envelopes and their elements), an
invalid record is logged with its original id, and single-record answers are never drifted.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import httpx
import pytest

from intercom_emulator.limits import FaultConfig
from intercom_emulator.shape_drift import (
    ORIGINAL_ID_FIELD,
    Invalid,
    ServedInvalid,
    ShapeRates,
    alternative_list_key,
    apply_shape_drift,
    drop_field,
    is_envelope,
    null_object,
    swap_string_object,
)
from intercom_emulator.store import Workspace
from intercom_emulator.testing import EmulatorServer, json_body

SEARCH_ALL = {"query": {"field": "updated_at", "operator": ">", "value": "0"}, "pagination": {"per_page": 150}}


@pytest.fixture(scope="module")
def workspace() -> Workspace:
    return Workspace(profile="tiny", seed=1)


def _records(ws: Workspace) -> list[tuple[str, dict[str, Any]]]:
    return [(m, r) for m in ("contacts", "companies", "conversations", "tickets", "activity_logs") for r in ws.ground_truth(m)]


def _envelope_elements(record: dict[str, Any]) -> dict[str, list[Any]]:
    """{field: its list elements} of every envelope, whatever key the list is under."""
    out = {}
    for key, value in record.items():
        if is_envelope(value):
            out[key] = [v for k, items in value.items() if isinstance(items, list) for v in items]
    return out


# ------------------------------------------------------------------------ drift functions
@pytest.mark.parametrize("drift", [drop_field, null_object, swap_string_object, alternative_list_key])
def test_valid_drifts_keep_keys_cursor_and_relation_elements(workspace: Workspace, drift: Any) -> None:
    changed = 0
    for seed, (_, record) in enumerate(_records(workspace)):
        before = copy.deepcopy(record)
        out = copy.deepcopy(record)
        touched = drift(out, random.Random(seed))
        for key in ("id", "type", "created_at", "updated_at"):
            assert out.get(key) == before.get(key), (drift.__name__, key)
        assert _envelope_elements(out) == _envelope_elements(before), drift.__name__
        if touched is not None:
            changed += 1
            assert out != before and touched not in ("id", "type", "created_at", "updated_at")
    assert changed > 0, f"{drift.__name__} never applied to a tiny workspace"


def test_each_drift_makes_its_own_shape() -> None:
    rng = random.Random(1)
    rec = {"id": "1", "type": "company", "plan": {"type": "plan", "id": "3", "name": "Pro"}}
    assert null_object(rec, rng) == "plan" and rec["plan"] is None
    rec = {"id": "1", "type": "company", "plan": {"type": "plan", "id": "3", "name": "Pro"}}
    assert swap_string_object(rec, rng) == "plan" and rec["plan"] == "Pro"
    rec = {"id": "1", "type": "contact", "role": "lead"}
    assert swap_string_object(rec, rng) == "role" and rec["role"] == {"type": "role", "value": "lead"}
    rec = {"id": "1", "type": "contact", "tags": {"type": "list", "data": [{"id": "9"}], "url": "/x", "total_count": 1}}
    assert alternative_list_key(rec, rng) == "tags"
    assert rec["tags"] == {"type": "tag.list", "tags": [{"id": "9"}], "url": "/x", "total_count": 1}
    assert alternative_list_key(rec, rng) == "tags"
    assert rec["tags"] == {"type": "list", "data": [{"id": "9"}], "url": "/x", "total_count": 1}
    rec = {"id": "1", "type": "contact", "tags": {"type": "list", "data": []}}
    assert drop_field(rec, rng) is None and null_object(rec, rng) is None  # nothing optional to touch


def test_apply_shape_drift_is_a_pure_function_of_seed_and_record(workspace: Workspace) -> None:
    rates = ShapeRates(drift=0.5, missing_id=0.2, missing_cursor=0.2)
    log_a, log_b = ServedInvalid(), ServedInvalid()
    for stream, record in _records(workspace):
        before = copy.deepcopy(record)
        a = apply_shape_drift(record, stream, rates, 7, log_a)
        b = apply_shape_drift(record, stream, rates, 7, log_b)
        assert a == b and record == before  # the store's record is never changed
        assert apply_shape_drift(record, stream, ShapeRates(), 7, log_a) is None
    assert log_a.invalid == log_b.invalid and log_a.invalid
    other = ServedInvalid()
    for stream, record in _records(workspace):
        apply_shape_drift(record, stream, rates, 8, other)
    assert other.invalid != log_a.invalid  # another seed, other records


def test_invalid_records_keep_their_original_id_and_are_logged(workspace: Workspace) -> None:
    log = ServedInvalid()
    for stream, record in _records(workspace):
        out = apply_shape_drift(record, stream, ShapeRates(missing_id=1.0), 3, log)
        assert out is not None and "id" not in out and out[ORIGINAL_ID_FIELD] == record["id"]
    assert log.ids("contacts") == {c["id"] for c in workspace.ground_truth("contacts")}
    log = ServedInvalid()
    for stream, record in _records(workspace):
        out = apply_shape_drift(record, stream, ShapeRates(missing_cursor=1.0), 3, log)
        cursor = "created_at" if stream == "activity_logs" else "updated_at"
        assert out is not None and cursor not in out and out["id"] == record["id"]
    assert log.ids("activity_logs", "missing_cursor") == {r["id"] for r in workspace.ground_truth("activity_logs")}


# ------------------------------------------------------------------------ over real HTTP
def test_unknown_shape_knob_is_refused() -> None:
    assert FaultConfig.from_dict({"shape_drift_rate": 0.1, "missing_id_rate": 0.1}).missing_id_rate == 0.1
    with pytest.raises(ValueError, match="unknown fault knobs"):
        FaultConfig.from_dict({"missing_ids_rate": 0.1})


def test_missing_id_on_list_pages_only(emulator: EmulatorServer, api: httpx.Client) -> None:
    emulator.configure(faults={"missing_id_rate": 1.0})
    served = json_body(api.post("/contacts/search", json=SEARCH_ALL))["data"]
    truth = {c["id"] for c in emulator.workspace.ground_truth("contacts")}
    assert served and all("id" not in c for c in served)
    assert {c[ORIGINAL_ID_FIELD] for c in served} == truth
    assert emulator.state.faults.served_invalid.ids("contacts", "missing_id") == truth
    for record in json_body(api.get("/conversations"))["conversations"]:
        assert "id" not in record
    # single-record answers stay whole: the detail a client fetches by id, with all its parts
    cid = emulator.workspace.ids("conversations")[0]
    detail = json_body(api.get(f"/conversations/{cid}"))
    assert detail["id"] == cid and all("id" in p for p in detail["conversation_parts"]["conversation_parts"])
    contact = next(iter(truth))
    assert json_body(api.get(f"/contacts/{contact}"))["id"] == contact


def test_shape_drift_over_http_changes_shapes_never_ids(emulator: EmulatorServer, api: httpx.Client) -> None:
    emulator.configure(faults={"shape_drift_rate": 1.0})
    served = json_body(api.post("/conversations/search", json=SEARCH_ALL))["conversations"]
    truth = {c["id"]: c for c in emulator.workspace.ground_truth("conversations")}
    assert {c["id"] for c in served} == set(truth)
    assert sum(c != truth[c["id"]] for c in served) == len(served)
    for record in served:
        assert record["updated_at"] == truth[record["id"]]["updated_at"]
        assert _envelope_elements(record) == _envelope_elements(truth[record["id"]])
    kinds = {drift for (_, drift) in emulator.state.faults.served_invalid.valid}
    assert kinds == {"dropped", "nulled", "swapped", "list_key"}
    assert not emulator.state.faults.served_invalid.invalid


def test_missing_cursor_on_activity_logs_and_reset_clears_the_log(emulator: EmulatorServer, api: httpx.Client) -> None:
    emulator.configure(faults={"missing_cursor_rate": 1.0})
    logs = json_body(api.get("/admins/activity_logs", params={"created_at_after": "1"}))["activity_logs"]
    assert logs and all("created_at" not in r and r["id"] == r[ORIGINAL_ID_FIELD] for r in logs)
    assert Invalid("missing_cursor", "activity_logs", logs[0]["id"]) in emulator.state.faults.served_invalid.invalid
    emulator.configure(reset_faults=True)
    assert not emulator.state.faults.served_invalid.invalid
    logs = json_body(api.get("/admins/activity_logs", params={"created_at_after": "1"}))["activity_logs"]
    assert all("created_at" in r for r in logs)

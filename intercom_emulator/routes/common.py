"""Shared by every route family, so per_page, 404s and injected data faults behave alike everywhere."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

from intercom_emulator.shape_drift import apply_shape_drift, stream_of
from intercom_emulator.state import FATE_KEY, STATE_KEY, ApiError, EmulatorState, json_response

MAX_PER_PAGE = 150


def state_of(request: web.Request) -> EmulatorState:
    return request.app[STATE_KEY]


def int_param(value: Any, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, "parameter_invalid", f"{name} must be an integer") from exc


def per_page_of(value: Any, default: int, cap: int = MAX_PER_PAGE) -> int:
    n = int_param(value, "per_page", default)
    if n < 1:
        raise ApiError(400, "parameter_invalid", "per_page must be positive")
    return min(n, cap)


def not_found(message: str = "Resource Not Found", code: str = "not_found") -> ApiError:
    return ApiError(404, code, message)


def self_url(request: web.Request, path: str, params: dict[str, str]) -> str:
    """An absolute URL on the host:port this request came to (Host header), as Intercom's `pages.next`."""
    return f"{request.scheme}://{request.host}{path}?{urlencode(params)}"


# ---------------------------------------------------------------- data faults


def _drift(obj: dict[str, Any]) -> None:
    """Integer timestamps/counts arrive as strings on some records (seen in real data)."""
    for key in ("created_at", "updated_at", "user_count", "session_count"):
        value = obj.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            obj[key] = str(value)


def data_faults_apply(request: web.Request, listing: bool = True) -> bool:
    """Whether this request's fate edits its records (extra fields, type or shape drift)."""
    fate = request.get(FATE_KEY)
    if fate is None:
        return False
    return bool(fate.extra_fields_rate or fate.type_drift_rate or (listing and fate.shape))


def apply_data_faults(
    request: web.Request, records: list[dict[str, Any]], listing: bool = True
) -> list[dict[str, Any]]:
    """Unknown extra fields and type drift, per record, on copies (the caches stay clean); shape
    drift (shape_drift.py) on list pages only (`listing`)."""
    if not data_faults_apply(request, listing):
        return records
    fate = request[FATE_KEY]
    shape = fate.shape if listing else None
    faults = state_of(request).faults
    out = []
    for rec in records:
        if shape:
            shaped = apply_shape_drift(rec, stream_of(request.path), shape, faults.seed, faults.served_invalid)
            rec = rec if shaped is None else shaped
        extra = faults.chance(fate.extra_fields_rate)
        drift = faults.chance(fate.type_drift_rate)
        if extra or drift:
            rec = orjson.loads(orjson.dumps(rec))
            if extra:
                rec["x_unannounced_field"] = {"added_in": "a future API release", "n": 1}
                rec["ai_flag_v3"] = True
            if drift:
                _drift(rec)
        out.append(rec)
    return out


def one_record(request: web.Request, record: dict[str, Any]) -> web.Response:
    return json_response(apply_data_faults(request, [record], listing=False)[0])


# ---------------------------------------------------------------- cached model snapshots


def all_records(state: EmulatorState, model: str) -> list[dict[str, Any]]:
    """All live records of a model, cached per workspace version (callers must not mutate)."""
    key = (model, state.ws.version)
    cached = state.model_cache.lookup(key)
    if cached is None:
        cached = list(state.ws.iter(model))
        state.model_cache.put(key, cached)
    return cached

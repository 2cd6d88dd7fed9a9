"""The unauthenticated ``/_emulator/`` control API: clock, mutations, config, request log, truth.

Why over HTTP: tests and demos that run the emulator as a subprocess (`EmulatorProcess`, the
CLI) can still move the clock, change data and read ground truth without importing the store.

* ``GET  /_emulator/clock``               -> {"now": <virtual unix seconds>}
* ``POST /_emulator/clock/advance``       {seconds} -> {"now": ...}
* ``POST /_emulator/mutate``              {op, args} -> {"result": ...}; ops whitelisted below
* ``GET  /_emulator/requests``            the request log; ``POST /_emulator/requests/reset``
* ``GET|POST /_emulator/config``          read / change faults, limits, lag, scroll knobs
* ``GET  /_emulator/ground_truth/{stream}`` JSON lines straight from the store
* ``POST /_emulator/dump``                {out} -> writes `<stream>.jsonl` files via Workspace.dump
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

import orjson
from aiohttp import web

from intercom_emulator.state import STATE_KEY, EmulatorState, json_response

log = logging.getLogger(__name__)

MUTATIONS = frozenset(
    {
        "create_contact",
        "update_contact",
        "delete_contact",
        "archive_contact",
        "merge_contacts",
        "tag_contact",
        "untag_contact",
        "create_company",
        "update_company",
        "create_conversation",
        "add_conversation_part",
        "close_conversation",
        "reopen_conversation",
        "snooze_conversation",
        "assign_conversation",
        "rate_conversation",
        "delete_conversation",
        "add_activity_log",
        "delete_admin",
        "delete_tag",
    }
)


def state_of(request: web.Request) -> EmulatorState:
    return request.app[STATE_KEY]


def _bad(message: str, status: int = 400) -> web.Response:
    return json_response({"error": message}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    body = orjson.loads(raw)
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


async def get_clock(request: web.Request) -> web.Response:
    ws = state_of(request).ws
    return json_response({"now": ws.clock.now(), "timezone": ws.timezone, "version": ws.version})


async def advance_clock(request: web.Request) -> web.Response:
    try:
        seconds = float((await _body(request)).get("seconds", 0))
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        return _bad(f"bad body: {exc}")
    if seconds < 0:
        return _bad("the clock only moves forward")
    ws = state_of(request).ws
    ws.clock.advance(seconds)
    return json_response({"now": ws.clock.now()})


async def mutate(request: web.Request) -> web.Response:
    try:
        body = await _body(request)
    except (ValueError, orjson.JSONDecodeError) as exc:
        return _bad(f"bad body: {exc}")
    op = body.get("op")
    args = body.get("args") or {}
    if op not in MUTATIONS:
        return _bad(f"unknown op {op!r}; allowed: {sorted(MUTATIONS)}")
    method = getattr(state_of(request).ws, op)
    positional: list[Any] = []
    if isinstance(args, list):
        positional, args = args, {}
    elif not isinstance(args, dict):
        return _bad("args must be an object or a list")
    elif "id" in args:
        # the record id goes first whatever the store calls its parameter (`id`, `ident`...)
        first = next(iter(inspect.signature(method).parameters), None)
        if first != "id":
            positional = [args.pop("id")]
    try:
        result = method(*positional, **args)
    except (TypeError, KeyError, ValueError) as exc:
        return _bad(f"{op} failed: {exc!r}")
    return json_response({"result": result, "version": state_of(request).ws.version})


async def get_requests(request: web.Request) -> web.Response:
    return json_response(state_of(request).log.snapshot())


async def reset_requests(request: web.Request) -> web.Response:
    state_of(request).log.reset()
    return json_response({"ok": True})


async def get_config(request: web.Request) -> web.Response:
    return json_response(state_of(request).describe())


async def post_config(request: web.Request) -> web.Response:
    state = state_of(request)
    try:
        state.configure(**(await _body(request)))
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        return _bad(f"bad config: {exc}")
    return json_response(state.describe())


async def ground_truth(request: web.Request) -> web.Response:
    stream = request.match_info["stream"]
    try:
        rows = state_of(request).ws.ground_truth(stream)
    except (KeyError, ValueError) as exc:
        return _bad(f"unknown stream {stream!r}: {exc}", 404)
    body = b"".join(orjson.dumps(r) + b"\n" for r in rows)
    return web.Response(body=body, content_type="application/x-ndjson")


async def dump(request: web.Request) -> web.Response:
    try:
        out = (await _body(request)).get("out")
    except (ValueError, orjson.JSONDecodeError) as exc:
        return _bad(f"bad body: {exc}")
    if not out:
        return _bad("out is required")
    ws = state_of(request).ws
    await asyncio.get_running_loop().run_in_executor(None, ws.dump, out)
    return json_response({"out": str(out)})


def register(app: web.Application) -> None:
    """Add the control routes."""
    r = app.router
    r.add_get("/_emulator/clock", get_clock)
    r.add_post("/_emulator/clock/advance", advance_clock)
    r.add_post("/_emulator/mutate", mutate)
    r.add_get("/_emulator/requests", get_requests)
    r.add_post("/_emulator/requests/reset", reset_requests)
    r.add_get("/_emulator/config", get_config)
    r.add_post("/_emulator/config", post_config)
    r.add_get("/_emulator/ground_truth/{stream}", ground_truth)
    r.add_post("/_emulator/dump", dump)

"""GET /conversations and one conversation with its newest parts (plaintext rendering, detail cache)."""

from __future__ import annotations

import html
import re
from typing import Any

import orjson
from aiohttp import web

from intercom_emulator.dump import PARTS_LIMIT
from intercom_emulator.routes.common import not_found, one_record, state_of
from intercom_emulator.routes.cursor import cursor_list
from intercom_emulator.state import FATE_KEY

_TAG_RE = re.compile(r"<[^>]+>")


async def list_conversations(request: web.Request) -> web.Response:
    return cursor_list(request, "conversations", "conversation.list", "conversations", 20)


def _plain(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    text = re.sub(r"(?i)<br\s*/?>|</p>", "\n", text)
    return html.unescape(_TAG_RE.sub("", text)).strip()


async def get_conversation(request: web.Request) -> web.Response:
    state = state_of(request)
    conv_id = request.match_info["id"]
    plaintext = request.query.get("display_as") == "plaintext"
    key = (conv_id, plaintext, state.ws.version)
    payload = state.detail_cache.lookup(key)
    if payload is None:
        conv = state.ws.get("conversations", conv_id)
        if conv is None:
            raise not_found()
        parts = state.ws.conversation_parts(conv_id)
        shown = parts[-PARTS_LIMIT:]
        if plaintext:
            source = conv.get("source")
            if isinstance(source, dict):
                source["body"] = _plain(source.get("body"))
            for part in shown:
                part["body"] = _plain(part.get("body"))
        conv["conversation_parts"] = {
            "type": "conversation_part.list",
            "conversation_parts": shown,
            "total_count": len(parts),
        }
        payload = orjson.dumps(conv)
        state.detail_cache.put(key, payload)
    fate = request.get(FATE_KEY)
    if fate is not None and (fate.extra_fields_rate or fate.type_drift_rate):
        return one_record(request, orjson.loads(payload))
    return web.Response(body=payload, content_type="application/json")

"""Ground truth: exactly what a perfect sync would hold at the current virtual time.

Read from the store directly (never through server code), so tests compare the connector's tables
against an independent witness. One JSON-lines file per stream.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

PARTS_LIMIT = 500  # the API returns only the newest 500 parts of a conversation
STREAMS = ("contacts", "companies", "conversations", "conversation_parts", "admins", "tags", "teams",
           "segments", "activity_logs", "tickets", "data_attributes")
EXTRA_STREAMS = ("ticket_parts",)  # available from ground_truth(), not written by dump()


class GroundTruthMixin:
    """ground_truth(stream) and dump(out_dir) for Workspace (kept here to keep store.py focused)."""

    def iter_ground_truth(self: Any, stream: str) -> Iterator[dict]:
        """Rows of one stream, streamed (for big workspaces)."""
        if stream == "conversation_parts":
            for conv_id in self.ids("conversations"):
                for part in self.conversation_parts(conv_id)[-PARTS_LIMIT:]:
                    part["conversation_id"] = conv_id
                    yield part
        elif stream == "ticket_parts":
            for ticket_id in self.ids("tickets"):
                for part in self.ticket_parts(ticket_id):
                    part["ticket_id"] = ticket_id
                    yield part
        elif stream == "data_attributes":
            for model in ("contact", "company", "conversation"):
                yield from self.data_attributes(model)
        elif stream in STREAMS:
            yield from self.iter(stream)
        else:
            raise ValueError(f"unknown stream {stream!r}; streams: {STREAMS + EXTRA_STREAMS}")

    def ground_truth(self: Any, stream: str) -> list[dict]:
        """All rows of one stream a perfect sync would hold now."""
        return list(self.iter_ground_truth(stream))

    def dump(self: Any, out_dir: str | Path) -> dict[str, int]:
        """Write <stream>.jsonl for every stream; returns row counts per stream."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        counts: dict[str, int] = {}
        for stream in STREAMS:
            n = 0
            with open(out / f"{stream}.jsonl", "wb") as fh:
                for row in self.iter_ground_truth(stream):
                    fh.write(orjson.dumps(row, option=orjson.OPT_SORT_KEYS) + b"\n")
                    n += 1
            counts[stream] = n
        log.info("dumped %s to %s", counts, out)
        return counts

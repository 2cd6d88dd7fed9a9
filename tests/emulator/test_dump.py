"""dump(): one JSON-lines file per stream, exact counts, the 500-newest-parts cap, determinism."""

from __future__ import annotations

import json
from pathlib import Path

from intercom_emulator import Workspace
from intercom_emulator.dump import STREAMS

ANCHOR = 1_750_000_000


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_dump_writes_every_stream_with_exact_counts(tmp_path: Path) -> None:
    ws = Workspace("tiny", seed=4, anchor=ANCHOR)
    counts = ws.dump(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{s}.jsonl" for s in STREAMS)
    expected = {"contacts": 40, "companies": 15, "conversations": 30, "admins": 5, "tags": 30, "teams": 3,
                "segments": 4, "activity_logs": 50, "tickets": 6}
    for stream, n in expected.items():
        rows = _rows(tmp_path / f"{stream}.jsonl")
        assert len(rows) == n == counts[stream], stream
        assert len({r["id"] for r in rows}) == n
    convs = _rows(tmp_path / "conversations.jsonl")
    assert all("conversation_parts" not in c for c in convs)
    parts = _rows(tmp_path / "conversation_parts.jsonl")
    per_conv: dict[str, int] = {}
    for p in parts:
        per_conv[p["conversation_id"]] = per_conv.get(p["conversation_id"], 0) + 1
    total = {c["id"]: c["statistics"]["count_conversation_parts"] for c in convs}
    assert per_conv == {k: min(v, 500) for k, v in total.items() if v}
    assert max(total.values()) == 520 and len(parts) == sum(min(v, 500) for v in total.values())
    long_id = max(total, key=total.get)
    kept = [p["id"] for p in parts if p["conversation_id"] == long_id]
    assert kept == [p["id"] for p in ws.conversation_parts(long_id)[-500:]]  # the newest 500
    attrs = _rows(tmp_path / "data_attributes.jsonl")
    assert {a["model"] for a in attrs} == {"contact", "company", "conversation"} and len(attrs) == counts["data_attributes"]
    assert sum(a["custom"] for a in attrs) == 20  # 16 typed + 4 named as real workspaces name them
    assert all(("id" in a) == a["custom"] for a in attrs)  # built-ins carry no id


def test_dump_is_deterministic_and_follows_mutations(tmp_path: Path) -> None:
    a, b = Workspace("tiny", seed=9, anchor=ANCHOR), Workspace("tiny", seed=9, anchor=ANCHOR)
    a.dump(tmp_path / "a")
    b.dump(tmp_path / "b")
    for s in STREAMS:
        assert (tmp_path / "a" / f"{s}.jsonl").read_bytes() == (tmp_path / "b" / f"{s}.jsonl").read_bytes(), s
    b.clock.freeze()
    gone = b.ids("contacts")[0]
    b.clock.advance(60)
    b.delete_contact(gone)
    conv = b.ids("conversations")[0]
    b.add_conversation_part(conv, "comment", "admin", body="<p>hi</p>")
    counts = b.dump(tmp_path / "c")
    assert counts["contacts"] == 39
    assert gone not in {r["id"] for r in _rows(tmp_path / "c" / "contacts.jsonl")}
    last = [p for p in _rows(tmp_path / "c" / "conversation_parts.jsonl") if p["conversation_id"] == conv][-1]
    assert last["body"] == "<p>hi</p>" and last["created_at"] == b.clock.now()
    assert (tmp_path / "a" / "tickets.jsonl").read_bytes() == (tmp_path / "c" / "tickets.jsonl").read_bytes()

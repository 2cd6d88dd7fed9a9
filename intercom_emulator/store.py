"""The workspace store: compact columns + records materialised on demand, mutations, ground truth.

Big models (contacts, companies, conversations, activity logs) are kept as `array('q')` columns of
created_at/updated_at plus reverse counts; a record's API dict is re-generated from (seed, index)
when read, and a mutated or created record lives in an override dict. Small workspaces cache the
serialised records (orjson bytes) so repeated reads are cheap; `cache_records=True` caches every
record and builds the contacts' at start, so a page of a big workspace is joined from bytes (the
benchmarks' emulator, which must not be the slowest part of the run). Reads return fresh copies.
See docs/emulator-contract.md for the contract with the HTTP server.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson

from intercom_emulator.clock import VirtualClock
from intercom_emulator.dump import GroundTruthMixin
from intercom_emulator.generator import (
    ADMIN_BASE,
    ALOG_BASE,
    CONV_BASE,
    DAY,
    NOTE_BASE,
    NOTES_PER_CONTACT,
    PROFILES,
    TICKET_BASE,
    Generator,
    admin_avatar_url,
    hex_index,
    num_index,
    record_seed,
)
from intercom_emulator.generator_conv import (
    ConversationGenerator,
)
from intercom_emulator.store_mutations import MutationsMixin

log = logging.getLogger(__name__)

MODELS = ("contacts", "companies", "conversations", "tickets", "admins", "teams", "tags", "segments",
          "activity_logs")
CACHE_LIMIT = 100_000  # models with fewer records cache serialised records
PARTS_CACHE = 256  # conversations whose generated parts are kept
EMBED_LIMIT = 10
STATUS_NAMES = {1: "deleted", 2: "merged", 3: "archived"}

__all__ = ["MODELS", "PROFILES", "Workspace"]


def _copy(obj: Any) -> Any:
    """A deep copy via orjson (much faster than copy.deepcopy for JSON-shaped data)."""
    return orjson.loads(orjson.dumps(obj))


class Workspace(MutationsMixin, GroundTruthMixin):
    """One emulated Intercom workspace, deterministic for (profile, seed, scale, anchor)."""

    def __init__(self, profile: str = "tiny", seed: int = 1, scale: float = 1.0,
                 timezone: str = "America/New_York", anchor: int | None = None,
                 cache_records: bool = False) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; choose from {sorted(PROFILES)}")
        if anchor is None:
            anchor = int(time.time()) // DAY * DAY
        t0 = time.perf_counter()
        self.profile, self.seed, self.scale, self.anchor = profile, seed, scale, int(anchor)
        self.timezone, self.region = timezone, "us"
        self._cache_limit = float("inf") if cache_records else CACHE_LIMIT
        self.clock = VirtualClock()
        self.version = 0
        self._lock = threading.RLock()
        self.gen = Generator(PROFILES[profile], seed, scale, self.anchor, timezone)
        self.cgen = ConversationGenerator(self.gen)
        g = self.gen
        self.app = {"type": "app", "id_code": g.app_id, "name": f"Emulated workspace {g.app_id}",
                    "region": "US", "timezone": timezone, "created_at": g.history_start - DAY,
                    "identity_verification": False}
        self._admins = [_copy(a) for a in g.admins]
        self._teams = [_copy(t) for t in g.teams]
        self._tags = [_copy(t) for t in g.tags]
        self._segments = [_copy(s) for s in g.segments]
        self._deleted_tags: set[str] = set()
        self._tags_all = [(t["id"], t["name"]) for t in g.tags]  # by index, deleted or not
        self._n = {"contacts": g.counts.contacts, "companies": g.counts.companies,
                   "conversations": g.counts.conversations, "activity_logs": g.counts.activity_logs}
        self._over: dict[str, dict[int, Any]] = {m: {} for m in self._n}
        self._cache: dict[str, dict[int, bytes]] = {m: {} for m in self._n}
        self._status: dict[int, tuple[int, str | None]] = {}  # contact index -> (status, merged into)
        self._parts_cache: OrderedDict[int, list[dict]] = OrderedDict()
        self._snooze: dict[int, int] = {}  # conversation index -> snoozed_until set by a mutation
        self._deleted_conversations: dict[int, int] = {}  # conversation index -> deleted_at
        self.observers: list[Callable[[str, str, str], None]] = []  # (topic, model, id) per mutation
        self._build_contacts()
        self._build_companies()
        self._build_conversations()
        self.ticket_types = self.cgen.ticket_types()
        self._tickets = [self.cgen.ticket(i, self.ticket_types) for i in range(g.counts.tickets)]
        self.warm("contacts")
        log.info("workspace %s seed=%s scale=%s built in %.2fs", profile, seed, scale, time.perf_counter() - t0)

    # ---- build -----------------------------------------------------------------------------------
    def _build_contacts(self) -> None:
        g, n = self.gen, self._n["contacts"]
        self._c_updated = array("q", bytes(8 * n))
        self._roles = array("b", bytes(n))
        self._company_users = array("l", bytes(array("l").itemsize * g.counts.companies))
        seg_counts = [0] * g.counts.segments
        for i in range(n):
            rng = random.Random(record_seed(g.seed, "contacts", i))
            updated, role, companies, segments = g.contact_core(rng, i, g.created_at("contacts", i))
            self._c_updated[i] = updated
            self._roles[i] = role == "user"
            for c in companies:
                self._company_users[c] += 1
            for s in segments:
                seg_counts[s] += 1
        g.roles = self._roles  # lets conversations give leads a null external_id
        for s, c in zip(self._segments, seg_counts, strict=True):
            s["count"] = c

    def _build_companies(self) -> None:
        g, n = self.gen, self._n["companies"]
        self._co_updated = array("q", bytes(8 * n))
        for i in range(n):
            rng = random.Random(record_seed(g.seed, "companies", i))
            self._co_updated[i] = g.company_core(rng, g.created_at("companies", i))

    def _build_conversations(self) -> None:
        g, n = self.gen, self._n["conversations"]
        self._cv_updated = array("q", bytes(8 * n))
        for i in range(n):
            rng = random.Random(record_seed(g.seed, "conversations", i))
            created = g.created_at("conversations", i)
            self._cv_updated[i] = min(self.cgen.core(rng, i, created)[0], self.anchor - 1)

    def warm(self, *models: str) -> None:
        """Materialise and cache every record of these models now (those the cache keeps)."""
        for model in models:
            if self._n[model] < self._cache_limit:
                for i in range(self._n[model]):
                    self._materialise(model, i)

    # ---- index helpers ---------------------------------------------------------------------------
    def _index(self, model: str, ident: Any) -> int | None:
        """Index of a big-model id, or None if unknown (not live-checked)."""
        g = self.gen
        if model in ("contacts", "companies"):
            i = hex_index(g.prefix[model], ident)
        elif model == "conversations":
            i = num_index(CONV_BASE, ident, self._n[model])
        elif model == "activity_logs":
            i = num_index(ALOG_BASE, ident, self._n[model])
        else:
            raise ValueError(model)
        return i if i is not None and i < self._n[model] else None

    def _gone(self, model: str) -> Mapping[int, object]:
        """Indices of a big model's records that are no longer live (deleted, merged, archived)."""
        if model == "contacts":
            return self._status
        if model == "conversations":
            return self._deleted_conversations
        return {}

    def _live_contact(self, ident: Any) -> int:
        i = self._index("contacts", ident)
        if i is None or i in self._status:
            raise KeyError(f"contact {ident} not found")
        return i

    def _need(self, model: str, ident: Any) -> int:
        i = self._index(model, ident)
        if i is None or i in self._gone(model):
            raise KeyError(f"{model} {ident} not found")
        return i

    def _id(self, model: str, i: int) -> str:
        if model == "contacts":
            return self.gen.contact_id(i)
        if model == "companies":
            return self.gen.company_id(i)
        if model == "conversations":
            return str(CONV_BASE + i)
        return str(ALOG_BASE + i)

    def updated_at_of(self, model: str, ident: Any) -> int | None:
        """updated_at from the compact columns (no materialisation): for fast server-side filters."""
        i = self._index(model, ident)
        if i is None:
            return None
        o = self._over[model].get(i)
        if o is not None:
            rec = o[0] if isinstance(o, tuple) else o
            return rec.get("updated_at", rec["created_at"])  # activity logs have no updated_at
        col = {"contacts": self._c_updated, "companies": self._co_updated, "conversations": self._cv_updated}.get(model)
        return col[i] if col is not None else self.gen.created_at(model, i)

    def id_at(self, model: str, index: int) -> str:
        """The id of a big-model record by its creation index (see `timestamps`)."""
        return self._id(model, index)

    def timestamps(self, model: str) -> Iterator[tuple[int, int, int]]:
        """(index, created_at, updated_at) of every live record of a big model, creation order.

        From the compact columns and the override dict: no record is materialised, so a server can
        filter and sort on dates over a million records without building their dicts. Activity logs
        have no updated_at; their created_at is given twice.
        """
        if model not in self._n:
            raise ValueError(f"timestamps() covers {sorted(self._n)}, not {model!r}")
        col = {"contacts": self._c_updated, "companies": self._co_updated,
               "conversations": self._cv_updated}.get(model)
        over, created_at = self._over[model], self.gen.created_at
        status = self._gone(model)
        generated = getattr(self.gen.counts, model)
        for i in range(self._n[model]):
            if i in status:
                continue
            o = over.get(i)
            if o is not None:
                rec = o[0] if isinstance(o, tuple) else o
                yield i, rec["created_at"], rec.get("updated_at", rec["created_at"])
            elif i < generated:
                c = created_at(model, i)
                yield i, c, (col[i] if col is not None else c)

    def updated_after(self, model: str, t: int) -> frozenset[str] | None:
        """Ids of live records with updated_at > t, or None when that would need a full scan.

        Generated records are all updated before the anchor, so for t >= anchor only mutated or
        created records (the override dict, small) can qualify: the answer is cheap and exact.
        """
        if t < self.anchor:
            return None
        if model in self._n:
            status = self._gone(model)
            out = []
            for i, o in self._over[model].items():
                rec = o[0] if isinstance(o, tuple) else o
                if i not in status and int(rec.get("updated_at", rec.get("created_at")) or 0) > t:
                    out.append(self._id(model, i))
            return frozenset(out)
        return frozenset(r["id"] for r in self._small(model) if int(r.get("updated_at") or 0) > t)

    # ---- materialisation -------------------------------------------------------------------------
    def _contact_internal(self, i: int) -> tuple[dict, dict]:
        o = self._over["contacts"].get(i)
        return o if o is not None else self.gen.contact(i)

    def _contact_public(self, rec: dict, rel: dict) -> dict:
        out = dict(rec)
        cid = rec["id"]
        tags = [self._tags_all[t][0] for t, _, _ in rel["tags"] if self._tags_all[t][0] not in self._deleted_tags]
        comps = [self.gen.company_id(c) for c in rel["companies"]]
        notes = [str(NOTE_BASE + self._note_owner(cid) * NOTES_PER_CONTACT + k) for k, *_ in rel["notes"]]
        for key, ids, typ, url in (("tags", tags, "tag", "tags"), ("notes", notes, "note", "notes"),
                                   ("companies", comps, "company", "companies")):
            out[key] = {"type": "list", "data": [{"type": typ, "id": x, "url": f"/{url}/{x}"} for x in ids[:EMBED_LIMIT]],
                        "url": f"/contacts/{cid}/{url}", "total_count": len(ids), "has_more": len(ids) > EMBED_LIMIT}
        return out

    def _note_owner(self, cid: str) -> int:
        return hex_index(self.gen.prefix["contacts"], cid) or 0

    def _company_internal(self, i: int) -> dict:
        o = self._over["companies"].get(i)
        if o is not None:
            return o
        rec = self.gen.company(i)
        rec["user_count"] = self._company_users[i]
        return rec

    def _conversation_internal(self, i: int) -> tuple[dict, list[dict]]:
        o = self._over["conversations"].get(i)
        if o is not None:
            return o
        conv, parts = self.cgen.conversation(i)
        with self._lock:
            if i not in self._parts_cache:
                self._parts_cache[i] = parts
                if len(self._parts_cache) > PARTS_CACHE:
                    self._parts_cache.popitem(last=False)
        return conv, parts

    def _materialise(self, model: str, i: int) -> bytes:
        """Serialised public record of index i (cached for small models)."""
        cache = self._cache[model]
        b = cache.get(i)
        if b is not None:
            return b
        if model == "contacts":
            rec = self._contact_public(*self._contact_internal(i))
        elif model == "companies":
            rec = self._company_internal(i)
        elif model == "conversations":
            rec = self._conversation_internal(i)[0]
        else:
            rec = self._over["activity_logs"].get(i) or self.gen.activity_log(i)
        b = orjson.dumps(rec)
        if self._n[model] < self._cache_limit:
            # an exact-size copy: orjson's bytes keep the block its buffer grew in, and a cache of
            # them held about 8 KB a 1.9 KB contact (measured), 3.4 x the copies' resident memory
            b = cache[i] = bytes(memoryview(b))
        return b

    def _touch(self, model: str, i: int) -> None:
        self._cache[model].pop(i, None)
        if model == "conversations":
            self._parts_cache.pop(i, None)

    # ---- read API --------------------------------------------------------------------------------
    def me(self) -> dict:
        """GET /me: the first admin (the token owner) with the app embedded."""
        a = _copy(self._admins[0] if self._admins else self.gen.admins[0])
        # /me is the one admin answer with an avatar, and there it is an object (real responses)
        a["avatar"] = {"type": "avatar", "image_url": admin_avatar_url(a["id"])}
        a.pop("team_priority_level", None)
        a.pop("away_status_reason_id", None)
        a["email_verified"] = True
        a["app"] = dict(self.app)
        return a

    def _small(self, model: str) -> list[dict]:
        if model == "admins":
            return self._admins
        if model == "teams":
            return self._teams
        if model == "tags":
            return self._tags
        if model == "segments":
            return self._segments
        if model == "tickets":
            return [t for t, _ in self._tickets]
        raise ValueError(f"unknown model {model!r}; models: {MODELS}")

    def count(self, model: str) -> int:
        """Number of live records of a model."""
        if model in self._n:
            return self._n[model] - len(self._gone(model))
        return len(self._small(model))

    def _live_indices(self, model: str) -> Iterator[int]:
        status = self._gone(model)
        return (i for i in range(self._n[model]) if i not in status)

    def ids(self, model: str) -> list[str]:
        """Ids of live records in creation order."""
        if model in self._n:
            return [self._id(model, i) for i in self._live_indices(model)]
        return [r["id"] for r in self._small(model)]

    def get(self, model: str, ident: Any) -> dict | None:
        """One live record as a fresh API dict, or None."""
        if model in self._n:
            raw = self.raw(model, ident)
            return None if raw is None else orjson.loads(raw)
        return next((_copy(r) for r in self._small(model) if r["id"] == str(ident)), None)

    def raw(self, model: str, ident: str) -> bytes | None:
        """One live big-model record as its serialised JSON (callers must not keep it), or None."""
        i = self._index(model, ident)
        if i is None or i in self._gone(model):
            return None
        return self._materialise(model, i)

    def iter(self, model: str) -> Iterator[dict]:
        """Live records in creation order, each a fresh dict."""
        if model in self._n:
            for i in self._live_indices(model):
                yield orjson.loads(self._materialise(model, i))
        else:
            for r in list(self._small(model)):
                yield _copy(r)

    def contact_status(self, ident: Any) -> str | None:
        """'live' | 'deleted' | 'merged' | 'archived' for a known contact id, None for an unknown one."""
        i = self._index("contacts", ident)
        if i is None:
            return None
        st = self._status.get(i)
        return "live" if st is None else STATUS_NAMES[st[0]]

    def deleted_conversations(self) -> list[tuple[str, int]]:
        """(id, deleted_at) of every deleted conversation, in deletion order (GET /conversations/deleted)."""
        return [(self._id("conversations", i), at) for i, at in self._deleted_conversations.items()]

    def merged_into(self, ident: Any) -> str | None:
        """Target contact id of a merged contact (None if the contact was not merged)."""
        i = self._index("contacts", ident)
        st = self._status.get(i) if i is not None else None
        return st[1] if st else None

    def _contact_rel(self, ident: Any) -> dict:
        return self._contact_internal(self._live_contact(ident))[1]

    def contact_tags(self, ident: Any) -> list[dict]:
        """All tags of a contact (full tag objects with applied_at/applied_by)."""
        rel = self._contact_rel(ident)
        out = []
        for t, applied, admin in rel["tags"]:
            tid, name = self._tags_all[t]
            if tid not in self._deleted_tags:
                out.append({"type": "tag", "id": tid, "name": name, "applied_at": applied,
                            "applied_by": {"type": "admin", "id": str(ADMIN_BASE + admin)}})
        return out

    def contact_companies(self, ident: Any) -> list[dict]:
        """All companies of a contact (full company objects)."""
        return [orjson.loads(self._materialise("companies", c)) for c in self._contact_rel(ident)["companies"]]

    def contact_notes(self, ident: Any) -> list[dict]:
        """All notes of a contact (2.15 note objects, author = full admin)."""
        i = self._live_contact(ident)
        cid = self.gen.contact_id(i)
        return [{"type": "note", "id": str(NOTE_BASE + i * NOTES_PER_CONTACT + k), "created_at": created,
                 "contact": {"type": "contact", "id": cid}, "author": _copy(self.gen.admins[admin]), "body": body}
                for k, created, admin, body in self._contact_internal(i)[1]["notes"]]

    def contact_segments(self, ident: Any) -> list[dict]:
        """Segments the contact belongs to."""
        return [_copy(self.gen.segments[s]) | {"count": self._segments[s]["count"]}
                for s in self._contact_rel(ident)["segments"]]

    def company_segments(self, ident: Any) -> list[dict]:
        """Segments of a company (the same list the record embeds)."""
        rec = self.get("companies", ident)
        return rec["segments"]["segments"] if rec else []

    def company_contact_count(self, ident: Any) -> int:
        """Live contacts attached to the company (equals its user_count)."""
        return self._company_users[self._need("companies", ident)]

    def company_by_company_id(self, company_id: str) -> dict | None:
        """Lookup by the external company_id."""
        for i, rec in self._over["companies"].items():
            if rec["company_id"] == company_id:
                return self.get("companies", self.gen.company_id(i))
        i = self.gen.company_index(company_id)
        if i is None or i >= self.gen.counts.companies or i in self._over["companies"]:
            return None
        return self.get("companies", self.gen.company_id(i))

    def company_by_name(self, name: str) -> dict | None:
        """Lookup by exact company name (names are unique)."""
        if not hasattr(self, "_names"):
            from intercom_emulator.generator_text import company_name
            self._names = {company_name(i): i for i in range(self.gen.counts.companies)}
        for i, rec in self._over["companies"].items():
            if rec["name"] == name:
                return self.get("companies", self.gen.company_id(i))
        i = self._names.get(name)
        if i is None or i in self._over["companies"]:
            return None
        return self.get("companies", self.gen.company_id(i))

    def conversation_parts(self, ident: Any) -> list[dict]:
        """ALL parts of a conversation, oldest first (the server truncates to the newest 500)."""
        i = self._need("conversations", ident)
        o = self._over["conversations"].get(i)
        if o is not None:
            return _copy(o[1])
        with self._lock:
            parts = self._parts_cache.get(i)
            if parts is not None:
                self._parts_cache.move_to_end(i)
        if parts is None:
            parts = self._conversation_internal(i)[1]
        return _copy(parts)

    def _ticket_index(self, ident: Any) -> int:
        i = num_index(TICKET_BASE, ident, len(self._tickets))
        if i is None:
            raise KeyError(f"ticket {ident} not found")
        return i

    def ticket_parts(self, ident: Any) -> list[dict]:
        """All parts of a ticket, oldest first."""
        return _copy(self._tickets[self._ticket_index(ident)][1])

    def data_attributes(self, model: str = "contact") -> list[dict]:
        """GET /data_attributes?model=...: built-in and custom attributes of contact|company|conversation."""
        if model not in ("contact", "company", "conversation"):
            raise ValueError(f"unknown data attribute model {model!r}")
        return self.gen.data_attributes(model)

"""Workspace mutations: each stamps the touched record's updated_at with clock.now() and bumps version.

A mutated generated record is copied into the store's override dict first, so the generator stays
pure; conversation mutations append parts and re-derive state and statistics from all parts.
"""

from __future__ import annotations

import random
from typing import Any

from intercom_emulator.generator import (
    ADMIN_BASE,
    ALOG_BASE,
    CONV_BASE,
    TAG_BASE,
    TEAM_BASE,
    num_index,
    record_seed,
)
from intercom_emulator.generator_conv import (
    admin_author,
    bot_author,
    derive_conversation,
    make_part,
    next_state,
    part_id_for,
    user_author,
)
from intercom_emulator.generator_conv import rating as make_rating

_PART_TOPICS = {"close": "conversation.admin.closed", "open": "conversation.admin.opened",
                "snoozed": "conversation.admin.snoozed", "assignment": "conversation.admin.assigned"}


def merge_custom(current: dict, update: dict | None) -> dict:
    """Merge custom attributes key by key; a None value unsets the attribute (its key is left out)."""
    merged = {**current, **(update or {})}
    return {k: v for k, v in merged.items() if v is not None}


class MutationsMixin:
    """The mutation half of Workspace (state lives in store.Workspace)."""

    _n: dict
    _over: dict
    _status: dict
    _snooze: dict
    _tags: list
    _segments: list
    _admins: list
    _deleted_tags: set
    _cache: dict
    _roles: Any
    _c_updated: Any
    _co_updated: Any
    _cv_updated: Any
    _company_users: Any
    _deleted_conversations: dict
    observers: list

    def _emit(self, topic: str, model: str, ident: str) -> None:
        """Tell the observers (the emulator's outgoing webhooks) what just changed."""
        for observer in self.observers:
            observer(topic, model, ident)

    # ---- mutations -------------------------------------------------------------------------------
    def _bump(self) -> int:
        self.version += 1
        return self.clock.now()

    def _own_contact(self, i: int) -> tuple[dict, dict]:
        o = self._over["contacts"].get(i)
        if o is None:
            o = self._over["contacts"][i] = self.gen.contact(i)
        self._touch("contacts", i)
        return o

    def _own_company(self, i: int) -> dict:
        o = self._over["companies"].get(i)
        if o is None:
            o = self._over["companies"][i] = self._company_internal(i)
        self._touch("companies", i)
        return o

    def _own_conversation(self, i: int) -> tuple[dict, list[dict]]:
        o = self._over["conversations"].get(i)
        if o is None:
            o = self._over["conversations"][i] = self._conversation_internal(i)
        self._touch("conversations", i)
        return o

    def _company_users_delta(self, companies: list[int], delta: int, now: int) -> None:
        for c in companies:
            self._company_users[c] += delta
            rec = self._own_company(c)
            rec["user_count"] = self._company_users[c]
            rec["updated_at"] = now

    def create_contact(self, **fields: Any) -> str:
        """Create a contact (role defaults to "user"); returns its id."""
        with self._lock:
            now = self._bump()
            i = self._n["contacts"]
            self._n["contacts"] += 1
            self._roles.append(fields.get("role", "user") == "user")
            self._c_updated.append(now)
            rec, _ = self.gen.contact(0)
            cid = self.gen.contact_id(i)
            email = fields.get("email") or f"new.contact.{i}@example.org"
            rec.update({k: None for k in rec if k.endswith("_at") or k.startswith(("android_", "ios_"))})
            rec.update({"id": cid, "role": "user", "external_id": None, "email": email, "name": None, "phone": None,
                        "owner_id": None, "created_at": now, "updated_at": now, "avatar": None,
                        "custom_attributes": {},
                        "social_profiles": {"type": "social_profile.list", "data": []}})
            self._apply_contact_fields(rec, fields)
            if rec["role"] == "user" and rec["signed_up_at"] is None:
                rec["signed_up_at"] = now
            self._over["contacts"][i] = (rec, {"tags": [], "companies": [], "notes": [], "segments": []})
            self._emit(f"contact.{rec['role']}.created", "contacts", cid)
            return cid

    @staticmethod
    def _apply_contact_fields(rec: dict, fields: dict) -> None:
        for k, v in fields.items():
            if k in ("id", "type", "workspace_id", "created_at", "updated_at", "tags", "notes", "companies"):
                continue
            if k == "custom_attributes":
                rec["custom_attributes"] = merge_custom(rec["custom_attributes"], v)
            else:
                rec[k] = v
        rec.pop("email_domain", None)  # a 2.16 key: the server adds it at the edge (versions.py)

    def update_contact(self, ident: Any, **fields: Any) -> None:
        """Update fields (custom_attributes are merged key by key)."""
        with self._lock:
            i = self._live_contact(ident)
            now = self._bump()
            rec, _ = self._own_contact(i)
            self._apply_contact_fields(rec, fields)
            rec["updated_at"] = now
            self._roles[i] = rec["role"] == "user"
            self._emit(f"contact.{rec['role']}.updated", "contacts", rec["id"])

    def _remove_contact(self, ident: Any, status: int, target: str | None = None) -> dict:
        i = self._live_contact(ident)
        now = self._bump()
        rec, rel = self._own_contact(i)
        rec["updated_at"] = now
        self._status[i] = (status, target)
        self._company_users_delta(rel["companies"], -1, now)
        for seg in rel["segments"]:  # segment counts are of live contacts
            self._segments[seg]["count"] -= 1
        return rel

    def delete_contact(self, ident: Any) -> None:
        """Delete: the contact vanishes from ids/iter/get; contact_status says "deleted"."""
        with self._lock:
            self._remove_contact(ident, 1)
            self._emit("contact.deleted", "contacts", str(ident))

    def archive_contact(self, ident: Any) -> None:
        """Archive: not listable any more; contact_status says "archived"."""
        with self._lock:
            self._remove_contact(ident, 3)
            self._emit("contact.archived", "contacts", str(ident))

    def merge_contacts(self, from_id: Any, into_id: Any) -> None:
        """Merge a lead into a user: the lead vanishes (status "merged"); the user gains its tags."""
        with self._lock:
            fi, ti = self._live_contact(from_id), self._live_contact(into_id)
            if fi == ti:
                raise ValueError("cannot merge a contact into itself")
            if self._contact_internal(fi)[0]["role"] != "lead" or self._contact_internal(ti)[0]["role"] != "user":
                raise ValueError("merge takes a lead (from) into a user (into)")
            rel = self._remove_contact(from_id, 2, self.gen.contact_id(ti))
            rec, trel = self._own_contact(ti)
            have = {t for t, _, _ in trel["tags"]}
            trel["tags"].extend(t for t in rel["tags"] if t[0] not in have)
            rec["updated_at"] = self.clock.now()
            self._emit("contact.merged", "contacts", str(from_id))

    def _tag_index(self, tag_id: Any) -> int:
        i = num_index(TAG_BASE, tag_id, len(self.gen.tags))
        if i is None or str(tag_id) in self._deleted_tags:
            raise KeyError(f"tag {tag_id} not found")
        return i

    def tag_contact(self, ident: Any, tag_id: Any, admin_id: Any = None) -> None:
        """Attach a tag (idempotent for the tag list, but still an update)."""
        with self._lock:
            i, t = self._live_contact(ident), self._tag_index(tag_id)
            now = self._bump()
            rec, rel = self._own_contact(i)
            admin = (int(admin_id) - ADMIN_BASE) if admin_id is not None else 0
            if all(x[0] != t for x in rel["tags"]):
                rel["tags"].append((t, now, admin))
            rec["updated_at"] = now
            self._emit(f"contact.{rec['role']}.tag.created", "contacts", rec["id"])

    def untag_contact(self, ident: Any, tag_id: Any) -> None:
        """Detach a tag from a contact."""
        with self._lock:
            i, t = self._live_contact(ident), self._tag_index(tag_id)
            now = self._bump()
            rec, rel = self._own_contact(i)
            rel["tags"] = [x for x in rel["tags"] if x[0] != t]
            rec["updated_at"] = now
            self._emit(f"contact.{rec['role']}.tag.deleted", "contacts", rec["id"])

    def create_company(self, **fields: Any) -> str:
        """Create a company (no users yet); returns its id."""
        with self._lock:
            now = self._bump()
            i = self._n["companies"]
            self._n["companies"] += 1
            self._company_users.append(0)
            self._co_updated.append(now)
            rec = self.gen.company(0)
            rec.update({"id": self.gen.company_id(i), "name": fields.get("name") or f"New company {i}",
                        "company_id": fields.get("company_id") or f"new-{i}", "created_at": now, "updated_at": now,
                        "remote_created_at": fields.get("remote_created_at", now), "plan": {},
                        "user_count": 0, "session_count": 0, "monthly_spend": 0,
                        "custom_attributes": {},
                        "tags": {"type": "tag.list", "tags": []}, "segments": {"type": "segment.list", "segments": []}})
            for key in ("website", "industry", "size", "last_request_at"):  # absent until set (real responses)
                rec.pop(key, None)
            self._over["companies"][i] = rec
            self._apply_company_fields(rec, fields)
            self._emit("company.created", "companies", rec["id"])
            return rec["id"]

    @staticmethod
    def _apply_company_fields(rec: dict, fields: dict) -> None:
        for k, v in fields.items():
            if k in ("id", "type", "app_id", "created_at", "updated_at", "user_count", "tags", "segments"):
                continue
            if k == "custom_attributes":
                rec["custom_attributes"] = merge_custom(rec["custom_attributes"], v)
            else:
                rec[k] = v

    def update_company(self, ident: Any, **fields: Any) -> None:
        """Update company fields (custom_attributes merged)."""
        with self._lock:
            i = self._need("companies", ident)
            now = self._bump()
            rec = self._own_company(i)
            self._apply_company_fields(rec, fields)
            rec["updated_at"] = now
            self._emit("company.updated", "companies", rec["id"])

    def create_conversation(self, contact_id: Any, body: str | None = None, **fields: Any) -> str:
        """A user-initiated conversation with no parts yet; returns its id."""
        with self._lock:
            ci = self._live_contact(contact_id)
            crec = self._contact_internal(ci)[0]
            now = self._bump()
            i = self._n["conversations"]
            self._n["conversations"] += 1
            self._cv_updated.append(now)
            conv, _ = self.cgen.conversation(0)
            author = user_author(crec["id"], crec["name"], crec["email"])
            conv.update({"id": str(CONV_BASE + i), "title": fields.get("title"), "created_at": now, "updated_at": now,
                         "read": False, "priority": "not_priority", "conversation_rating": None, "sla_applied": None,
                         "tags": {"type": "tag.list", "tags": []}, "ai_agent_participated": False, "ai_agent": None,
                         "custom_attributes": {},
                         "contacts": {"type": "contact.list", "contacts": [
                             {"type": "contact", "id": crec["id"], "external_id": crec["external_id"]}]},
                         "source": {"type": "conversation", "id": str(CONV_BASE + i),
                                    "delivered_as": "customer_initiated", "subject": "",
                                    "body": body or "<p>Hello, I need help.</p>", "author": author,
                                    "attachments": [], "url": None, "redacted": False},
                         "topics": {"type": "topic.list", "topics": [], "total_count": 0}, "ticket": None})
            conv["custom_attributes"] = merge_custom(conv["custom_attributes"], fields.get("custom_attributes"))
            derive_conversation(conv, [])
            self._over["conversations"][i] = (conv, [])
            self._emit("conversation.user.created", "conversations", conv["id"])
            return conv["id"]

    def _author(self, conv: dict, author_type: str, admin_id: Any) -> dict:
        if author_type == "user":  # the conversation's contact (its source may be null or an admin's)
            ref = conv["contacts"]["contacts"][0]
            i = self._index("contacts", ref["id"])
            if i is None:
                raise KeyError(f"contact {ref['id']} not found")
            crec = self._contact_internal(i)[0]
            return user_author(crec["id"], crec["name"], crec["email"])
        if author_type == "bot":
            return bot_author()
        admin = self._admin(admin_id)
        return admin_author(admin)

    def _admin(self, admin_id: Any) -> dict:
        if admin_id is None:
            return self.gen.admins[0]
        a = next((a for a in self.gen.admins if a["id"] == str(admin_id)), None)
        if a is None:
            raise KeyError(f"admin {admin_id} not found")
        return a

    def add_conversation_part(self, ident: Any, part_type: str = "comment", author_type: str = "user",
                              body: str | None = None, admin_id: Any = None,
                              assigned_to: dict | None = None, _snooze_until: int | None = None) -> str:
        """Append a part at clock.now(); state, statistics and updated_at follow. Returns the part id."""
        if author_type not in ("user", "admin", "bot"):
            raise ValueError("author_type is user, admin or bot")
        with self._lock:
            i = self._need("conversations", ident)
            now = self._bump()
            conv, parts = self._own_conversation(i)
            state = next_state(part_type, author_type, conv["state"])
            author = self._author(conv, author_type, admin_id)
            rng = random.Random(record_seed(self.seed, "conversations", i) + len(parts) * 7_919)
            part = make_part(part_id_for(i, len(parts)), part_type, author, now, state, rng, body=body,
                             assigned_to=assigned_to)
            parts.append(part)
            if _snooze_until is not None:
                self._snooze[i] = _snooze_until
            elif part_type == "snoozed":
                self._snooze.pop(i, None)
            derive_conversation(conv, parts, self._snooze.get(i))
            conv["updated_at"] = now
            self._emit(_PART_TOPICS.get(part_type, f"conversation.{author_type}.replied"), "conversations", conv["id"])
            return part["id"]

    def close_conversation(self, ident: Any, admin_id: Any = None) -> str:
        """An admin closes the conversation (part_type "close")."""
        return self.add_conversation_part(ident, "close", "admin", admin_id=admin_id)

    def reopen_conversation(self, ident: Any, admin_id: Any = None) -> str:
        """An admin reopens it (part_type "open")."""
        return self.add_conversation_part(ident, "open", "admin", admin_id=admin_id)

    def snooze_conversation(self, ident: Any, until: int, admin_id: Any = None) -> str:
        """Snooze until `until` (part_type "snoozed"; snoozed_until = until)."""
        return self.add_conversation_part(ident, "snoozed", "admin", admin_id=admin_id, _snooze_until=int(until))

    def assign_conversation(self, ident: Any, admin_id: Any = None, team_id: Any = None,
                            by_admin_id: Any = None) -> str:
        """Assign to an admin or a team (part_type "assignment")."""
        if team_id is not None:
            if num_index(TEAM_BASE, team_id, len(self.gen.teams)) is None:
                raise KeyError(f"team {team_id} not found")
            to = {"type": "team", "id": str(team_id)}
        else:
            to = {"type": "admin", "id": self._admin(admin_id)["id"]}
        return self.add_conversation_part(ident, "assignment", "admin", admin_id=by_admin_id, assigned_to=to)

    def rate_conversation(self, ident: Any, rating: int, remark: str | None = None) -> None:
        """The contact rates the conversation (1-5): conversation_rating set, updated_at = now."""
        if not 1 <= int(rating) <= 5:
            raise ValueError("rating is 1..5")
        with self._lock:
            i = self._need("conversations", ident)
            now = self._bump()
            conv, _ = self._own_conversation(i)
            c = conv["contacts"]["contacts"][0]
            last = conv["statistics"].get("last_closed_by_id") or (
                conv["admin_assignee_id"] and str(conv["admin_assignee_id"]))
            conv["conversation_rating"] = make_rating(int(rating), remark, now, dict(c),
                                                      {"type": "admin", "id": str(last)} if last else None)
            conv["updated_at"] = now
            self._emit("conversation.rating.added", "conversations", conv["id"])

    def delete_conversation(self, ident: Any) -> None:
        """Delete a conversation: gone from lists, search and GET; listed by GET /conversations/deleted."""
        with self._lock:
            i = self._need("conversations", ident)
            self._deleted_conversations[i] = self._bump()
            self._touch("conversations", i)
            self._emit("conversation.deleted", "conversations", str(ident))

    def add_activity_log(self, admin_id: Any = None, activity_type: str = "admin_login_success") -> str:
        """Record an admin action at clock.now(); returns the log id."""
        with self._lock:
            now = self._bump()
            i = self._n["activity_logs"]
            self._n["activity_logs"] += 1
            rec = self.gen.make_activity_log(ALOG_BASE + i, now, self._admin(admin_id), activity_type,
                                             random.Random(record_seed(self.seed, "activity_logs", i)))
            self._over["activity_logs"][i] = rec
            return rec["id"]

    def delete_admin(self, ident: Any) -> None:
        """Remove an admin from the admins list (its past parts keep naming it)."""
        with self._lock:
            before = len(self._admins)
            self._admins = [a for a in self._admins if a["id"] != str(ident)]
            if len(self._admins) == before:
                raise KeyError(f"admin {ident} not found")
            self._bump()

    def delete_tag(self, ident: Any) -> None:
        """Delete a tag: gone from /tags and from every embedded tag list."""
        with self._lock:
            self._tag_index(ident)
            self._deleted_tags.add(str(ident))
            self._tags = [t for t in self._tags if t["id"] != str(ident)]
            self._cache["contacts"].clear()
            self._bump()

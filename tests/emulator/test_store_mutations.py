"""Mutations: each changes the record, stamps updated_at = clock.now(), bumps version, shows in ground truth."""

from __future__ import annotations

import pytest

from intercom_emulator import VirtualClock, Workspace

ANCHOR = 1_750_000_000


@pytest.fixture
def ws() -> Workspace:
    w = Workspace("tiny", seed=11, anchor=ANCHOR)
    w.clock.freeze()  # so "updated_at == clock.now()" cannot race a second boundary
    w.clock.advance(3_600)  # mutations happen after the generated history
    return w


def _gt(ws: Workspace, stream: str, ident: str) -> dict:
    return next(r for r in ws.ground_truth(stream) if r["id"] == ident)


def _lead_and_user(ws: Workspace) -> tuple[str, str]:
    contacts = list(ws.iter("contacts"))
    return (next(c["id"] for c in contacts if c["role"] == "lead"),
            next(c["id"] for c in contacts if c["role"] == "user"))


def test_clock_only_moves_forward() -> None:
    clock = VirtualClock()
    before = clock.now()
    assert clock.advance(120) >= before + 120
    with pytest.raises(ValueError):
        clock.advance(-1)
    frozen = clock.freeze()
    assert clock.now() == frozen and clock.advance(5) == frozen + 5
    assert clock.unfreeze() >= frozen + 5


def test_create_and_update_contact(ws: Workspace) -> None:
    v = ws.version
    cid = ws.create_contact(email="new.person@example.org", name="New Person", role="lead",
                            custom_attributes={"plan_tier": "pro"})
    assert ws.version == v + 1
    rec = ws.get("contacts", cid)
    assert rec["created_at"] == rec["updated_at"] == ws.clock.now()
    assert (rec["role"], rec["email"], rec["custom_attributes"]["plan_tier"]) == ("lead", "new.person@example.org", "pro")
    assert "email_domain" not in rec  # a 2.16 key, added at the server edge (test_version_shapes.py)
    assert rec["tags"]["total_count"] == 0 and ws.count("contacts") == 41 and ws.ids("contacts")[-1] == cid
    ws.clock.advance(90)
    ws.update_contact(cid, name="Renamed", custom_attributes={"seats": 4})
    rec = ws.get("contacts", cid)
    assert rec["name"] == "Renamed" and rec["custom_attributes"] == {"plan_tier": "pro", "seats": 4}
    assert rec["updated_at"] == ws.clock.now() and ws.version == v + 2
    ws.update_contact(cid, custom_attributes={"seats": None})  # null unsets: the key is left out
    assert ws.get("contacts", cid)["custom_attributes"] == {"plan_tier": "pro"}
    assert ws.version == v + 3
    assert _gt(ws, "contacts", cid)["name"] == "Renamed"


def test_update_generated_contact(ws: Workspace) -> None:
    cid = ws.ids("contacts")[4]
    old = ws.get("contacts", cid)
    ws.update_contact(cid, phone="+15550001111")
    new = ws.get("contacts", cid)
    assert new["phone"] == "+15550001111" and new["updated_at"] == ws.clock.now() > old["updated_at"]
    assert {k: v for k, v in new.items() if k not in ("phone", "updated_at")} == {
        k: v for k, v in old.items() if k not in ("phone", "updated_at")}


@pytest.mark.parametrize("action,status", [("delete_contact", "deleted"), ("archive_contact", "archived")])
def test_delete_and_archive_hide_the_contact(ws: Workspace, action: str, status: str) -> None:
    user = next(c for c in ws.iter("contacts") if c["companies"]["total_count"] > 0)
    company_id = user["companies"]["data"][0]["id"]
    users_before = ws.get("companies", company_id)["user_count"]
    v = ws.version
    getattr(ws, action)(user["id"])
    assert ws.version == v + 1
    assert ws.get("contacts", user["id"]) is None
    assert user["id"] not in ws.ids("contacts") and ws.count("contacts") == 39
    assert user["id"] not in {c["id"] for c in ws.ground_truth("contacts")}
    assert ws.contact_status(user["id"]) == status
    company = ws.get("companies", company_id)
    assert company["user_count"] == users_before - 1 == ws.company_contact_count(company_id)
    assert company["updated_at"] == ws.clock.now()
    with pytest.raises(KeyError):
        ws.update_contact(user["id"], name="ghost")
    assert ws.contact_status("0" * 24) is None


def test_merge_lead_into_user(ws: Workspace) -> None:
    lead, user = _lead_and_user(ws)
    ws.tag_contact(lead, ws.ids("tags")[-1])
    ws.clock.advance(10)
    ws.merge_contacts(lead, user)
    assert ws.contact_status(lead) == "merged" and ws.merged_into(lead) == user
    assert ws.get("contacts", lead) is None
    assert ws.get("contacts", user)["updated_at"] == ws.clock.now()
    assert ws.ids("tags")[-1] in {t["id"] for t in ws.contact_tags(user)}
    with pytest.raises(ValueError):
        ws.merge_contacts(user, user)


def test_tag_and_untag_update_embedded_and_full_lists(ws: Workspace) -> None:
    cid = next(c["id"] for c in ws.iter("contacts") if c["tags"]["total_count"] == 0)
    tag_id = ws.ids("tags")[2]
    ws.tag_contact(cid, tag_id)
    rec = ws.get("contacts", cid)
    assert [t["id"] for t in rec["tags"]["data"]] == [tag_id] and rec["tags"]["total_count"] == 1
    assert [t["id"] for t in ws.contact_tags(cid)] == [tag_id]
    assert ws.contact_tags(cid)[0]["applied_at"] == ws.clock.now() == rec["updated_at"]
    ws.clock.advance(5)
    ws.untag_contact(cid, tag_id)
    rec = ws.get("contacts", cid)
    assert rec["tags"]["total_count"] == 0 and ws.contact_tags(cid) == [] and rec["updated_at"] == ws.clock.now()


def test_delete_tag_and_admin(ws: Workspace) -> None:
    special = next(c for c in ws.iter("contacts") if c["tags"]["total_count"] == 25)
    tag_id = special["tags"]["data"][0]["id"]
    ws.delete_tag(tag_id)
    assert tag_id not in ws.ids("tags") and ws.count("tags") == 29
    rec = ws.get("contacts", special["id"])
    assert rec["tags"]["total_count"] == 24 and tag_id not in {t["id"] for t in ws.contact_tags(special["id"])}
    admin_id = ws.ids("admins")[-1]
    ws.delete_admin(admin_id)
    assert ws.get("admins", admin_id) is None and ws.count("admins") == 4


def test_companies(ws: Workspace) -> None:
    co = ws.create_company(name="Zeta Corp", company_id="zeta-1", custom_attributes={"arr": 12.5})
    rec = ws.get("companies", co)
    assert (rec["name"], rec["company_id"], rec["user_count"], rec["custom_attributes"]["arr"]) == (
        "Zeta Corp", "zeta-1", 0, 12.5)
    assert ws.company_by_company_id("zeta-1")["id"] == co and ws.company_by_name("Zeta Corp")["id"] == co
    old = ws.ids("companies")[0]
    ws.clock.advance(7)
    ws.update_company(old, industry="Robotics")
    assert ws.get("companies", old)["industry"] == "Robotics"
    assert ws.get("companies", old)["updated_at"] == ws.clock.now()
    assert _gt(ws, "companies", old)["industry"] == "Robotics" and ws.count("companies") == 16


def test_conversation_lifecycle(ws: Workspace) -> None:
    contact = ws.ids("contacts")[0]
    conv_id = ws.create_conversation(contact, body="<p>My export fails</p>")
    conv = ws.get("conversations", conv_id)
    assert conv["state"] == "open" and conv["statistics"]["count_conversation_parts"] == 0
    # nothing happened yet: the unknown metrics are null (real responses send every key)
    assert conv["statistics"]["first_close_at"] is None and conv["statistics"]["time_to_admin_reply"] is None
    assert conv["custom_attributes"] == {}
    assert conv["contacts"]["contacts"][0]["id"] == contact and conv["source"]["body"] == "<p>My export fails</p>"
    admin = ws.ids("admins")[1]
    ws.clock.advance(60)
    ws.assign_conversation(conv_id, admin_id=admin)
    assert ws.get("conversations", conv_id)["admin_assignee_id"] == int(admin)
    ws.clock.advance(60)
    ws.add_conversation_part(conv_id, "comment", "admin", body="<p>Looking</p>", admin_id=admin)
    ws.clock.advance(60)
    ws.close_conversation(conv_id, admin_id=admin)
    conv = ws.get("conversations", conv_id)
    s = conv["statistics"]
    assert (conv["state"], conv["open"], s["count_conversation_parts"], s["count_assignments"]) == ("closed", False, 3, 1)
    assert s["first_close_at"] == ws.clock.now() == conv["updated_at"] and s["last_closed_by_id"] == int(admin)
    assert s["time_to_admin_reply"] == 120 and s["first_admin_reply_at"] == conv["created_at"] + 120
    ws.clock.advance(60)
    ws.add_conversation_part(conv_id, "comment", "user", body="<p>Still broken</p>")
    conv = ws.get("conversations", conv_id)
    assert conv["state"] == "open" and conv["statistics"]["count_reopens"] == 1
    assert conv["waiting_since"] == ws.clock.now()
    until = ws.clock.now() + 86_400
    ws.snooze_conversation(conv_id, until, admin_id=admin)
    conv = ws.get("conversations", conv_id)
    assert (conv["state"], conv["snoozed_until"], conv["open"]) == ("snoozed", until, True)
    ws.reopen_conversation(conv_id)
    ws.close_conversation(conv_id)
    ws.rate_conversation(conv_id, 4, remark="ok")
    conv = ws.get("conversations", conv_id)
    assert conv["conversation_rating"]["rating"] == 4 and conv["conversation_rating"]["created_at"] == ws.clock.now()
    assert conv["conversation_rating"]["remark"] == "ok"
    ws.rate_conversation(conv_id, 5)
    assert "remark" not in ws.get("conversations", conv_id)["conversation_rating"]  # no remark: key left out
    parts = ws.conversation_parts(conv_id)
    assert [p["part_type"] for p in parts] == ["assignment", "comment", "close", "comment", "snoozed", "open", "close"]
    assert [p["author"]["type"] for p in parts] == ["admin", "admin", "admin", "user", "admin", "admin", "admin"]
    assert len({p["id"] for p in parts}) == 7
    gt_parts = [p for p in ws.ground_truth("conversation_parts") if p["conversation_id"] == conv_id]
    assert [p["id"] for p in gt_parts] == [p["id"] for p in parts]


def test_part_on_generated_conversation_keeps_history(ws: Workspace) -> None:
    conv_id = ws.ids("conversations")[3]
    before = ws.conversation_parts(conv_id)
    v = ws.version
    pid = ws.add_conversation_part(conv_id, "note", "admin", body="<p>internal</p>")
    after = ws.conversation_parts(conv_id)
    assert after[:-1] == before and after[-1]["id"] == pid and after[-1]["body"] == "<p>internal</p>"
    conv = ws.get("conversations", conv_id)
    assert conv["statistics"]["count_conversation_parts"] == len(before) + 1
    assert conv["updated_at"] == ws.clock.now() and ws.version == v + 1
    assert ws.assign_conversation(conv_id, team_id=ws.ids("teams")[0])
    assert ws.get("conversations", conv_id)["team_assignee_id"] == int(ws.ids("teams")[0])


def test_activity_log(ws: Workspace) -> None:
    admin = ws.ids("admins")[0]
    log_id = ws.add_activity_log(admin_id=admin, activity_type="admin_logout")
    rec = ws.get("activity_logs", log_id)
    assert (rec["performed_by"]["id"], rec["activity_type"], rec["created_at"]) == (admin, "admin_logout", ws.clock.now())
    assert ws.ids("activity_logs")[-1] == log_id and ws.count("activity_logs") == 51


def test_bad_ids_raise(ws: Workspace) -> None:
    with pytest.raises(KeyError):
        ws.add_conversation_part("999", "comment")
    with pytest.raises(KeyError):
        ws.tag_contact(ws.ids("contacts")[0], "1")
    with pytest.raises(ValueError):
        ws.rate_conversation(ws.ids("conversations")[0], 9)
    assert ws.get("contacts", "not-an-id") is None and ws.get("conversations", "abc") is None

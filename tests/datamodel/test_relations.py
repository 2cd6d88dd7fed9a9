"""Complete relation tables: beyond the 10 embedded elements, removals disappear, both ids on rows."""

from __future__ import annotations

import pytest

from tests.datamodel.conftest import pairs, special_contact


def _truth_contact_tags(ws) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {(str(c), str(t["id"])) for c in ws.ids("contacts") for t in ws.contact_tags(c)}


def _truth_contact_companies(ws) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {(str(c), str(x["id"])) for c in ws.ids("contacts") for x in ws.contact_companies(c)}


def _assert_relations_complete(sync) -> None:  # type: ignore[no-untyped-def]
    ws = sync.emu.workspace
    assert pairs(sync.query("select contact_id, id from contacts__tags")) == _truth_contact_tags(ws)
    assert pairs(sync.query("select contact_id, id from contacts__companies")) == _truth_contact_companies(ws)
    segs = pairs(sync.query("select company_id, id from companies__segments"))
    assert segs == {(str(c), str(s["id"])) for c in ws.ids("companies") for s in ws.company_segments(c)}
    assert not sync.query("select 1 from companies__segments where company_id is null")


def test_contacts_with_25_tags_and_12_companies_land_complete(sync) -> None:  # type: ignore[no-untyped-def]
    ws = sync.emu.workspace
    special = special_contact(ws)
    sync.run()
    _assert_relations_complete(sync)
    assert sync.query(f"select count(*) from contacts__tags where contact_id = '{special}'") == [(25,)]
    assert sync.query(f"select count(*) from contacts__companies where contact_id = '{special}'") == [(12,)]
    # the API's own counters stay visible on the contact
    assert sync.query(f"select tags_total_count, companies_total_count from contacts where id = '{special}'") == [(25, 12)]
    # only contacts whose lists were cut were completed: one call per list per such contact
    cut = [c for c in ws.ground_truth("contacts") if c["tags"]["has_more"] or c["companies"]["has_more"]]
    log = sync.emu.request_log
    assert log["GET /contacts/{id}/tags"] == sum(1 for c in cut if c["tags"]["has_more"])
    assert log["GET /contacts/{id}/companies"] == sum(1 for c in cut if c["companies"]["has_more"])
    assert log["GET /companies/{id}/segments"] == ws.count("companies")
    assert log["GET /companies/scroll"] == 2  # one scroll for companies and their segments


def test_other_relation_tables_carry_both_ids(sync) -> None:  # type: ignore[no-untyped-def]
    ws = sync.emu.workspace
    sync.run()
    convs = ws.ground_truth("conversations")
    assert pairs(sync.query("select conversation_id, id from conversations__tags")) == {
        (str(c["id"]), str(t["id"])) for c in convs for t in c["tags"]["tags"]}
    assert pairs(sync.query("select conversation_id, id from conversations__contacts")) == {
        (str(c["id"]), str(x["id"])) for c in convs for x in c["contacts"]["contacts"]}
    assert pairs(sync.query("select conversation_id, id from conversations__teammates")) == {
        (str(c["id"]), str(x["id"])) for c in convs for x in c["teammates"]["admins"]}
    assert pairs(sync.query("select company_id, id from companies__tags")) == {
        (str(c["id"]), str(t["id"])) for c in ws.ground_truth("companies") for t in c["tags"]["tags"]}
    assert pairs(sync.query("select team_id, admin_id from teams__admins")) == {
        (str(t["id"]), str(a)) for t in ws.ground_truth("teams") for a in t["admin_ids"]}


def test_relation_calls_only_for_changed_records(sync) -> None:  # type: ignore[no-untyped-def]
    ws = sync.emu.workspace
    special = special_contact(ws)
    sync.run()
    sync.run()
    log = sync.emu.request_log
    for path in ("GET /contacts/{id}/tags", "GET /contacts/{id}/companies", "GET /companies/{id}/segments"):
        assert log.get(path, 0) == 0, path
    ws.clock.advance(60)
    ws.update_contact(special, name="Changed")
    ws.update_company(ws.ids("companies")[2], name="Changed Co")
    sync.run()
    log = sync.emu.request_log
    assert log["GET /contacts/{id}/tags"] == 1 and log["GET /contacts/{id}/companies"] == 1
    assert log["GET /companies/{id}/segments"] == 1
    assert log["GET /companies/scroll"] == 2


def test_removed_tag_disappears_from_contact_tags(sync) -> None:  # type: ignore[no-untyped-def]
    ws = sync.emu.workspace
    special = special_contact(ws)
    tags = [str(t["id"]) for t in ws.contact_tags(special)]
    embedded_tag, beyond_tag = tags[0], tags[-1]  # one of the first 10, one only in the full list
    plain = next(c for c in ws.ids("contacts") if 1 <= len(ws.contact_tags(c)) <= 3 and str(c) != special)
    plain_tags = [str(t["id"]) for t in ws.contact_tags(plain)]
    sync.run()
    ws.clock.advance(60)
    ws.untag_contact(special, embedded_tag)
    ws.untag_contact(special, beyond_tag)
    for t in plain_tags:  # every tag of another contact: its relation rows must all go
        ws.untag_contact(plain, t)
    added = next(str(t["id"]) for t in ws.ground_truth("tags") if str(t["id"]) not in tags)
    ws.tag_contact(special, added)
    sync.run()
    got = {r[0] for r in sync.query(f"select id from contacts__tags where contact_id = '{special}'")}
    assert got == {str(t["id"]) for t in ws.contact_tags(special)}
    assert embedded_tag not in got and beyond_tag not in got and added in got and len(got) == 24
    assert sync.query(f"select count(*) from contacts__tags where contact_id = '{plain}'") == [(0,)]
    _assert_relations_complete(sync)


@pytest.mark.postgres
def test_relations_complete_and_removal_on_postgres(pg_sync) -> None:  # type: ignore[no-untyped-def]
    ws = pg_sync.emu.workspace
    special = special_contact(ws)
    pg_sync.run(streams=["contacts", "companies"])
    _assert_relations_complete(pg_sync)
    ws.clock.advance(60)
    removed = str(ws.contact_tags(special)[-1]["id"])
    ws.untag_contact(special, removed)
    pg_sync.run(streams=["contacts", "companies"])
    _assert_relations_complete(pg_sync)
    assert pg_sync.query(f"select count(*) from contacts__tags where contact_id = '{special}'") == [(24,)]


def test_a_page_waiting_for_its_relations_does_not_hold_the_pages_after_it() -> None:
    """`relations.completed_meanwhile`: the page whose contact needs two relation requests (at
    100 ms each) is completed in the pool while the next pages go on, and comes complete three
    pages later; the order depends on the pages alone, never on the requests' timing."""
    from intercom_elt.sources.intercom import IntercomClient, relations
    from intercom_emulator.testing import EmulatorServer

    with EmulatorServer(profile="demo", seed=1, faults={"latency_ms": 100}) as emu:
        ws = emu.workspace
        special = special_contact(ws)
        plain = [c for c in ws.ids("contacts") if len(ws.contact_tags(c)) <= 10 and len(ws.contact_companies(c)) <= 10][:6]
        pages = [[ws.get("contacts", special)], *([ws.get("contacts", c)] for c in plain)]
        with IntercomClient(emu.token, base_url=emu.base_url) as client:
            out = list(relations.completed_meanwhile(relations.CONTACTS, client, iter(pages), 4, behind=3))
        tags, companies = len(ws.contact_tags(special)), len(ws.contact_companies(special))
    assert [page[0]["id"] for page in out] == [*plain[:3], special, *plain[3:]]
    done = out[3][0]
    assert len(done["tags"]["data"]) == tags >= 25 and len(done["companies"]["data"]) == companies >= 12
    assert out[:3] + out[4:] == pages[1:]  # nothing to complete: the pages as they were

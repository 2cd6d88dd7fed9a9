"""The rejects path, unit by unit: which records are kept aside, why, and that siblings survive."""

from __future__ import annotations

import pytest

from intercom_elt.sources.intercom import schema
from intercom_elt.sources.intercom.rejects import REJECTS_TABLE, Rejects, key_problem


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"id": "1"}, None),
        ({"id": 7}, None),
        ({"name": "x"}, "no 'id'"),
        ({"id": None}, "'id' is null"),
        ({"id": ""}, "'id' is \"\""),
        ({"id": {"value": 1}}, "'id' is a dict, not a string or integer"),
        ({"id": True}, "'id' is a bool, not a string or integer"),
        ("just a string", "the record is a str, not an object"),
    ],
)
def test_key_problem_names_what_is_wrong(record, problem):
    assert key_problem(record, "id") == problem


def test_screened_keeps_siblings_and_rejects_the_odd_ones():
    rejects = Rejects("contacts")
    page = [
        {"id": "a", "updated_at": 1_700_000_000},
        {"email": "no-id@example.com", "updated_at": 1_700_000_001},
        {"id": "c", "updated_at": None},
        {"id": "d", "updated_at": "1700000002"},
        {"id": "e", "updated_at": 10**20},  # no calendar holds it: must not crash the page
    ]
    kept = rejects.screened(page, cursor_field="updated_at")
    assert [r["id"] for r in kept] == ["a", "d"]
    assert [(r["record_id"], r["reason"]) for r in rejects.rows] == [
        (None, "no 'id'"),
        ("c", "'updated_at' is not a timestamp: null"),
        ("e", "'updated_at' is not a timestamp: 100000000000000000000"),
    ]
    assert rejects.rows[0]["reject_key"].startswith("sha1:")
    assert rejects.rows[1]["reject_key"] == "id:c"
    assert rejects.rows[0]["record"] == page[1]
    item = rejects.drain()
    assert item is not None and item.meta.table_name == REJECTS_TABLE and len(item.data) == 3
    assert rejects.drain() is None and rejects.rows == []


def test_a_record_whose_shaping_raises_is_kept_aside():
    rejects = Rejects("conversations")

    def shape(raw):
        return {"id": raw["id"], "total": 10 / raw["n"]}

    rows = rejects.shaped([{"id": "1", "n": 2}, {"id": "2", "n": 0}, {"id": "3", "n": 5}], shape)
    assert rows == [{"id": "1", "total": 5.0}, {"id": "3", "total": 2.0}]
    assert rejects.rows[0]["record_id"] == "2"
    assert rejects.rows[0]["reason"] == "cannot be shaped: ZeroDivisionError: division by zero"


def test_the_access_token_never_reaches_the_rejects_table():
    rejects = Rejects("contacts", secrets=("tok-SECRET-123",))
    rejects.add("no 'id'", {"note": "pasted tok-SECRET-123 by mistake", "nested": {"k": "tok-SECRET-123"}})
    assert "tok-SECRET-123" not in repr(rejects.rows)
    assert rejects.rows[0]["record"] == {"note": "pasted *** by mistake", "nested": {"k": "***"}}


def test_the_same_record_gets_the_same_reject_key():
    one, two = Rejects("tags"), Rejects("tags")
    one.add("no 'id'", {"name": "vip", "type": "tag"})
    two.add("no 'id'", {"type": "tag", "name": "vip"})
    assert one.rows[0]["reject_key"] == two.rows[0]["reject_key"]


def test_custom_attribute_names_that_snake_case_alike_get_their_own_columns():
    attrs = [
        {"name": "Copilot used", "full_name": "custom_attributes.Copilot used", "custom": True, "data_type": "boolean"},
        {"name": "copilot_used", "full_name": "custom_attributes.copilot_used", "custom": True, "data_type": "string"},
        {"name": "Fin AI Agent: Preview", "full_name": "custom_attributes.Fin AI Agent: Preview", "custom": True,
         "data_type": "boolean"},
        {"name": "plan", "full_name": "plan.name", "data_type": "string"},  # built-in, no id: not custom
    ]
    types = schema.custom_attribute_types(attrs)
    assert dict(types) == {"Copilot used": "boolean", "copilot_used": "string", "Fin AI Agent: Preview": "boolean"}
    # the first name in sorted order keeps the plain column, the other a suffix of its own name
    assert types.columns["Copilot used"] == "custom_copilot_used"
    assert types.columns["copilot_used"].startswith("custom_copilot_used_") and len(types.columns["copilot_used"]) == 26
    assert types.columns["Fin AI Agent: Preview"] == "custom_fin_ai_agent_preview"
    hints = schema.custom_attribute_columns(types)
    assert hints["custom_copilot_used"]["data_type"] == "bool"
    assert hints[types.columns["copilot_used"]]["data_type"] == "text"

    row = {"id": "1", "custom_attributes": {"Copilot used": "true", "copilot_used": "yes",
                                            "Copilot-Used": "unknown", "Fin AI Agent: Preview": False}}
    schema.lift_custom_attributes(row, types)
    lifted = {k: v for k, v in row.items() if k.startswith("custom_")}
    assert len(lifted) == 4, lifted  # nothing overwritten
    assert lifted["custom_copilot_used"] is True
    assert lifted[types.columns["copilot_used"]] == "yes"
    assert "unknown" in lifted.values()
    # the column of a name never depends on the record it came with
    again = {"id": "2", "custom_attributes": {"copilot_used": "no"}}
    schema.lift_custom_attributes(again, types)
    assert again[types.columns["copilot_used"]] == "no"


def test_envelope_list_under_an_unexpected_key_still_gives_child_rows():
    items, extras = schema.envelope_items({"type": "admin.list", "admins": [{"id": "1"}, {"id": "2"}]}, "teammates")
    assert [i["id"] for i in items] == ["1", "2"]
    items, _ = schema.envelope_items({"type": "tag.list", "tags": [{"id": "t"}]})
    assert [i["id"] for i in items] == ["t"]


def test_list_elements_that_are_not_objects_are_skipped_with_a_warning(caplog):
    """`null` or a string inside a record list is no record to keep aside, but never skipped silently."""
    from intercom_elt.sources.intercom.client import records_in
    from intercom_elt.sources.intercom.pagers import RecordsAt

    page = records_in({"data": [{"id": "1"}, None, "oops", {"id": "2"}]}, RecordsAt(), "POST /contacts/search")
    assert page == [{"id": "1"}, {"id": "2"}]
    assert "POST /contacts/search: 2 element(s) of 'data' were not objects and were skipped: [null, \"oops\"]" in caplog.text


@pytest.mark.parametrize(
    ("record", "where"),
    [
        ({"id": "1", "custom_attributes": {"seats": 2**63}}, "'seats' is 9223372036854775808"),
        # orjson reads an integer beyond 2**64 - 1 as a float, which dlt puts back in the bigint column
        ({"id": "1", "custom_attributes": {"seats": 1.8446744073709552e19}}, "'seats' is 18446744073709551616"),
        ({"id": "1", "custom_attributes": {"seats": "99999999999999999999"}}, "'seats' is 99999999999999999999"),
        ({"id": "1", "location": {"population": -(2**63) - 1}}, "'population' is -9223372036854775809"),
        ({"id": "1", "scores": [1, 2**64 - 1]}, "'a list element' is 18446744073709551615"),
    ],
)
def test_an_integer_beyond_bigint_makes_its_record_a_reject(record, where):
    rejects = Rejects("contacts")
    rows = rejects.shaped([record, {"id": "2", "custom_attributes": {"seats": 2**63 - 1}}],
                          lambda raw: schema.shape_contact(raw, {"seats": "integer"}))
    assert [r["id"] for r in rows] == ["2"] and rows[0]["custom_seats"] == 2**63 - 1
    assert [r["reason"] for r in rejects.rows] == [
        f"cannot be shaped: BeyondBigint: {where}, beyond a 64-bit integer: no warehouse column holds it",
    ]


def test_an_integral_float_in_an_integer_attribute_is_an_int():
    row = schema.shape_contact({"id": "1", "custom_attributes": {"seats": 12.0, "mrr": 12.0}},
                               {"seats": "integer", "mrr": "float"})
    assert (row["custom_seats"], type(row["custom_seats"]), row["custom_mrr"]) == (12, int, 12.0)

"""Pure shaping and query-building functions (no network)."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from intercom_elt.sources.intercom import IntercomConfigError, intercom_source, schema
from intercom_elt.sources.intercom.streams import (
    RecentWindow,
    build_search_query,
    day_safe_lower_bound,
    day_safe_upper_bound,
)

UTC = timezone.utc


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1700000000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        ("1700000000", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        (0, None),
        ("", None),
        (None, None),
        ("not a date", None),
    ],
)
def test_to_datetime(value: object, expected: datetime | None) -> None:
    assert schema.to_datetime(value) == expected


def test_nested_timestamps_become_datetimes() -> None:
    raw = {"id": 5, "updated_at": 1700000000, "statistics": {"first_contact_reply_at": "1700000100", "count": 3},
           "first_contact_reply": {"created_at": 0}, "waiting_since": 1700000200}
    row = schema.shape_conversation(raw, {})
    assert row["id"] == "5"
    assert row["statistics"]["first_contact_reply_at"] == datetime.fromtimestamp(1700000100, UTC)
    assert row["statistics"]["count"] == 3
    assert row["first_contact_reply"]["created_at"] is None
    assert row["waiting_since"] == datetime.fromtimestamp(1700000200, UTC)


def test_rows_leave_out_top_level_nulls_but_keep_json_documents_whole() -> None:
    raw = {"id": "p1", "body": None, "created_at": 1700000000, "assigned_to": None,
           "metadata": {"reason": None, "sent_at": 1700000001}, "attachments": [{"url": None}]}
    row = schema.record_row(raw)
    assert row == {"id": "p1", "created_at": datetime.fromtimestamp(1700000000, UTC),
                   "metadata": {"reason": None, "sent_at": datetime.fromtimestamp(1700000001, UTC)},
                   "attachments": [{"url": None}]}
    assert raw["body"] is None and "assigned_to" in raw  # the API's record is not changed
    assert "body" not in schema.shape_parts({"conversation_parts": [raw]}, "c1")[0]


def test_contact_envelopes_become_child_rows_with_parent_id() -> None:
    raw = {
        "id": "c1", "updated_at": 1700000000,
        "tags": {"type": "list", "data": [{"type": "tag", "id": "7", "url": "/tags/7"}], "url": "/contacts/c1/tags",
                 "total_count": 12, "has_more": True},
        "companies": {"type": "list", "data": [], "total_count": 0, "has_more": False},
        "custom_attributes": {"Plan Tier": "gold", "seats": "12", "renewal": 1700000000, "vip": "true"},
    }
    types = {"Plan Tier": "string", "seats": "integer", "renewal": "date", "vip": "boolean"}
    row = schema.shape_contact(raw, types)
    assert row["tags"] == [{"contact_id": "c1", "type": "tag", "id": "7", "url": "/tags/7"}]
    assert row["tags_total_count"] == 12 and row["tags_has_more"] is True
    assert row["companies"] == []
    assert "custom_attributes" not in row
    assert row["custom_plan_tier"] == "gold"
    assert row["custom_seats"] == 12
    assert row["custom_renewal"] == datetime.fromtimestamp(1700000000, UTC)
    assert row["custom_vip"] is True


def test_drifting_custom_value_is_kept_not_failed() -> None:
    row = schema.shape_company({"id": "x", "custom_attributes": {"seats": "many"}}, {"seats": "integer"})
    assert row["custom_seats"] == "many"  # dlt stores it in a variant column custom_seats__v_text


def test_company_tag_and_segment_envelopes() -> None:
    raw = {"id": "co", "tags": {"type": "tag.list", "tags": [{"id": "1", "name": "a"}]},
           "segments": {"type": "segment.list", "segments": [{"id": "s", "name": "b"}]}}
    row = schema.shape_company(raw, {})
    assert row["tags"] == [{"company_id": "co", "id": "1", "name": "a"}]
    assert row["segments"] == [{"company_id": "co", "id": "s", "name": "b"}]


def test_conversation_truncation_flags() -> None:
    raw = {"id": "9", "admin_assignee_id": "42", "statistics": {"count_conversation_parts": 612},
           "tags": {"type": "tag.list", "tags": [{"id": "t", "applied_by": {"type": "admin", "id": "1"}}]},
           "teammates": {"type": "admin.list", "teammates": [{"type": "admin", "id": "1"}]}}
    parts = [{"id": str(i), "created_at": 1700000000 + i} for i in range(500)]
    detail = {"conversation_parts": {"type": "conversation_part.list", "conversation_parts": parts, "total_count": 612}}
    row = schema.shape_conversation(raw, {}, detail)
    assert (row["parts_total_count"], row["parts_returned_count"], row["parts_truncated"]) == (612, 500, True)
    assert row["admin_assignee_id"] == 42
    assert row["tags"] == [{"conversation_id": "9", "id": "t", "applied_by__type": "admin", "applied_by__id": "1"}]
    assert row["teammates"] == [{"conversation_id": "9", "type": "admin", "id": "1"}]
    shaped = schema.shape_parts(detail, "9")
    assert len(shaped) == 500 and shaped[0]["conversation_id"] == "9"
    assert shaped[0]["created_at"] == datetime.fromtimestamp(1700000000, UTC)
    # without a detail fetch, truncation is unknown rather than guessed
    assert schema.shape_conversation(raw, {})["parts_truncated"] is None


def test_custom_attribute_types_only_custom() -> None:
    attrs = [{"name": "name", "full_name": "name", "data_type": "string", "custom": False},
             {"name": "Seats", "full_name": "custom_attributes.Seats", "data_type": "integer", "custom": True}]
    types = schema.custom_attribute_types(attrs)
    assert types == {"Seats": "integer"}
    assert schema.custom_attribute_columns(types)["custom_seats"]["data_type"] == "bigint"


def test_lower_bound_lands_on_previous_local_day() -> None:
    tz = "America/New_York"
    start = datetime(2025, 3, 10, 15, 30, tzinfo=ZoneInfo(tz))  # afternoon, the day after a DST change
    v = day_safe_lower_bound(start, tz)
    v_local = datetime.fromtimestamp(v, ZoneInfo(tz))
    assert v_local.date() == datetime(2025, 3, 9).date()  # previous calendar day in the workspace zone
    # `> v` under day rules matches from the start of v's next day = start's own day
    start_of_day = datetime(2025, 3, 10, tzinfo=ZoneInfo(tz))
    assert v < start_of_day.timestamp()
    assert day_safe_lower_bound(None, tz) == 0


def test_upper_bound_includes_end_day_and_no_now_bound() -> None:
    tz = "Europe/Paris"
    end = datetime(2025, 6, 1, 23, 50, tzinfo=ZoneInfo(tz))
    u = day_safe_upper_bound(end, tz)
    assert datetime.fromtimestamp(u, ZoneInfo(tz)).date() == datetime(2025, 6, 2).date()
    q = build_search_query(end, None, tz)
    assert q["operator"] == ">" and q["field"] == "updated_at"  # no `< now` bound
    q2 = build_search_query(end, end, tz)
    assert q2["operator"] == "AND" and [f["operator"] for f in q2["value"]] == [">", "<"]


def test_recent_window_keeps_what_changed_and_prunes_outside_lookback() -> None:
    w = RecentWindow({"a": 1000, "b": 1850}, lookback_seconds=900)
    assert w.changed([(0, "a", 1000), (1, "c", 2000)]) == ([1], 1)  # a as loaded, c new
    assert w.changed([(0, "a", 1001), (3, "b", 1850)]) == ([0], 1)  # a changed since
    assert w.pruned() == {"b": 1850, "c": 2000}  # a (1001) is past the lookback of the newest


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"streams": ["contacts", "ticketz"]}, "Valid streams: contacts"),
        ({"region": "mars"}, "unknown region"),
        ({"base_url": "http://api.example.com"}, "must use https"),
        ({"start_date": "2025-02-01", "end_date": "2025-01-01"}, "not after start_date"),
        ({"start_date": "yesterday-ish"}, "not a date"),
    ],
)
def test_source_validates_inputs(kwargs: dict, needle: str) -> None:
    with pytest.raises(IntercomConfigError, match=needle):
        intercom_source(access_token="t", **kwargs)

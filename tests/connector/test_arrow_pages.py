"""Search pages parsed by the window readers (arrow_pages.py) land exactly what decoded pages land.

A split contacts search hands the JSON lane's plan to its readers, which parse each page from the
bytes as served; the stages after them read the ids and cursors of such pages. The workspace puts
records those stages treat otherwise among the parsed pages: a record without an id or without a
cursor (kept aside), a contact whose tag list is cut at 10 (completed by requests), a timestamp
in milliseconds (the lane leaves that record to the Columnizer). Each must make its page decoded
at that stage; the test checks that parsed pages were taken, that each fallback happened, and that
every table, type, row and reject equals a sync without the lane, on a first sync and the next.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pendulum
import pyarrow as pa
import pytest

from intercom_elt.sources.intercom import arrow_items, arrow_pages, json_lane, window_readers
from intercom_elt.sources.intercom.arrow_pages import Page, records_of
from intercom_elt.sources.intercom.first_load import FirstLoad, RepeatWatch
from intercom_elt.sources.intercom.rejects import Rejects
from intercom_elt.sources.intercom.relations import needs_completion
from intercom_elt.sources.intercom.streams import RESOURCE_STATE, StreamContext, incremental_records
from intercom_emulator.testing import EmulatorServer
from tests.connector.conftest import Sync
from tests.connector.test_columnar import Warehouse, _assert_same
from tests.connector.test_json_lane import ANCHOR
from tests.connector.test_read_together import at_once

STREAMS = ["contacts"]
# served without a cursor, with the emulator's own key beside: such pages are refused by the readers.
# 20 ms a page, so the pages come over time: with none, the readers had fetched all but 5-7 of the 40
# pages before the lane handed them its plan, and in about half the runs no page they parsed held a
# refused record or a millisecond timestamp (16-20 parsed pages with it, 3-5 of them refused)
DRIFT = {"missing_cursor_rate": 0.002, "latency_ms": 20}
_PARSED = re.compile(r"contacts: \d+ records built .* of them (\d+) in the (\d+) pages the readers parsed; (\d+) pages")


@pytest.fixture
def workspace(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    # small batches, so that the lane (and with it the readers' parsing) starts after a few pages
    monkeypatch.setattr(arrow_items, "BATCH_RECORDS", 300)
    monkeypatch.setattr(json_lane, "BATCH_RECORDS", 300)
    # bench profile at 0.3: 6,000 contacts, a split search of 40 pages
    with EmulatorServer(profile="bench", seed=3, scale=0.3, fault_seed=11, anchor=ANCHOR) as server:
        clock = server.workspace.clock
        clock.freeze()
        clock.advance(ANCHOR + 6 * 3600 - clock.now())
        server.configure(faults=DRIFT)
        yield server


def _odd_records(emu: EmulatorServer, first: int) -> None:
    """Records the later stages treat otherwise, changed now: read in the newest pages."""
    ws = emu.workspace
    ids, tags = ws.ids("contacts"), ws.ids("tags")
    assert len(tags) >= 12
    for tag in tags[:12]:  # more than the 10 a search answer embeds: completed by requests
        ws.tag_contact(ids[first], tag)
    ws.clock.advance(60)  # a minute apart: on other pages than the cut list (a page decoded once is decoded)
    for n, contact in enumerate(ids[first + 2:first + 1_500]):  # a split search (> 8 pages) in an incremental run too
        # every 200th in milliseconds too, so that several pages hold such a record: which pages the
        # readers parse depends on the order requests arrive (the emulator's faults are drawn in that
        # order, and a refused page rests the parser a few pages), and one such page may miss them all
        odd = {"last_seen_at": 1_767_225_600_000 + n} if n % 200 == 100 else {}
        ws.update_contact(contact, name=f"Renamed {contact}", **odd)
    ws.clock.advance(60)
    ws.update_contact(ids[first + 1], last_seen_at=1_767_225_600_000)  # milliseconds: left to the Columnizer


@pytest.fixture
def decoded_at(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Which stage decoded a parsed page, counted (a spy: the pages are decoded as ever)."""
    seen: Counter[str] = Counter()
    decode = arrow_pages.ArrowPage.decoded

    def spy(page: arrow_pages.ArrowPage) -> list[dict[str, Any]]:
        caller = sys._getframe(1).f_code.co_name
        seen[sys._getframe(2).f_code.co_name if caller == "records_of" else caller] += 1
        return decode(page)

    monkeypatch.setattr(arrow_pages.ArrowPage, "decoded", spy)
    return seen


def test_pages_parsed_by_the_readers_land_as_decoded_ones(
    workspace: EmulatorServer, tmp_path: Path, caplog: pytest.LogCaptureFixture, decoded_at: Counter[str],
) -> None:
    caplog.set_level(logging.INFO, logger="intercom_elt.sources.intercom.readers")
    lane = Sync(workspace, tmp_path / "lane", dataset="parsed")
    walk = Sync(workspace, tmp_path / "walk", dataset="decoded")
    _odd_records(workspace, 0)
    for round_ in ("first sync", "incremental"):
        if round_ == "incremental":
            workspace.workspace.clock.advance(3600)
            _odd_records(workspace, 2_000)
        caplog.clear()
        decoded_at.clear()
        lane.run(streams=STREAMS)
        walk.run(streams=STREAMS, json_lane=False)
        _assert_same(Warehouse(lane, None), Warehouse(walk, None), same_order=False)
        logged = [tuple(int(g) for g in m.groups()) for r in caplog.records if (m := _PARSED.search(r.getMessage()))]
        records, pages, refused = logged[0]  # the lane's run, then the walk's
        assert records > 0 and pages > 0, (round_, logged)
        if round_ == "first sync":  # the fallbacks, each at its stage
            assert refused > 0, logged
            for stage in ("completed_meanwhile", "_left_out"):
                assert decoded_at[stage] > 0, (round_, stage, decoded_at)
    reasons = {reason for (reason,) in Warehouse(lane, None).query("select reason from _intercom_rejects")}
    assert "no 'updated_at'" in reasons, reasons


def _stage_outputs(pages: list[Page], window: window_readers.Window, start: int, state: dict[str, Any]) -> dict[str, Any]:
    """What the stages between the readers and the lane make of `pages`: the window's records and
    newest cursor, what a tail asked again keeps of them (without the versions of their first
    half, taken decoded; without their own), the screened and filtered records (a scheduled run's,
    with its lookback map), their rejects, and the ids the first load notes."""
    inc = SimpleNamespace(start_value=pendulum.from_timestamp(start), end_value=None)  # dlt's cursor, as read there
    rejects = Rejects("contacts")
    within = [window_readers.within(page, window) for page in pages]
    newest = [window_readers.last_epoch(page) for page in pages]
    first_half = frozenset().union(*(window_readers.versions(records_of(page)[:75]) for page in pages))
    unseen = [records_of(window_readers.unseen(page, first_half)) for page in pages]
    seen_twice = [records_of(window_readers.unseen(page, window_readers.versions(page))) for page in pages]
    context = contextvars.copy_context()
    context.run(RESOURCE_STATE.set, state)
    screened = context.run(lambda: list(incremental_records(StreamContext(client=None), inc, iter(within), "updated_at", rejects)))  # type: ignore[arg-type]
    watch = RepeatWatch("contacts", FirstLoad(), {})
    list(watch.pages(iter(screened)))
    return {
        "within": [records_of(page) for page in within], "newest": newest, "unseen": unseen, "seen twice": seen_twice,
        "screened": [records_of(page) for page in screened], "kinds": [type(page).__name__ for page in screened],
        "rejects": [(row["reason"], row["record_id"]) for row in rejects.rows], "noted": watch._ids, "state": state,
    }


def test_odd_ids_and_cursors_in_parsed_pages_take_the_usual_path(
    workspace: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pages the readers parsed, with one record made odd in each way the stages check, give what
    the same pages decoded give at every stage; a plain page stays parsed to the end."""
    captured: list[tuple[arrow_pages.PageParser, bytes]] = []
    parse = arrow_pages.PageParser.__call__

    def capture(parser: arrow_pages.PageParser, content: bytes) -> arrow_pages.ArrowPage | None:
        page = parse(parser, content)
        if page is not None and len(page) == 150 and not captured:
            captured.append((parser, content))
        return page

    monkeypatch.setattr(arrow_pages.PageParser, "__call__", capture)
    Sync(workspace, tmp_path / "lane", dataset="parsed").run(streams=STREAMS)
    assert captured, "no page was parsed by the readers"
    parser, content = captured[0]
    monkeypatch.setattr(arrow_pages.PageParser, "__call__", parse)
    body = orjson.loads(content)
    epochs = sorted(r["updated_at"] for r in body["data"])
    window = window_readers.Window(epochs[10], epochs[-10])  # some records of the page on each side
    odd: dict[str, Any] = {
        "plain": {}, "id empty": {"id": ""}, "id null": {"id": None}, "cursor null": {"updated_at": None},
        "cursor in milliseconds": {"updated_at": epochs[50] * 1000}, "cursor zero": {"updated_at": 0},
    }
    for name, change in odd.items():
        edited = orjson.loads(content)
        edited["data"][75].update(change)
        served = orjson.dumps(edited)
        page = parser(served)
        assert page is not None, f"{name}: the reader refused the page"
        decoded = edited["data"]
        parsed_way = _stage_outputs([page], window, epochs[20], {})
        usual_way = _stage_outputs([decoded], window, epochs[20], {})
        kinds = parsed_way.pop("kinds"), usual_way.pop("kinds")
        assert parsed_way == usual_way, name
        assert kinds[0] == (["ArrowPage"] if name == "plain" else ["list"]), (name, kinds)


@pytest.mark.parametrize(("tags", "cut"), [
    ({"data": [{"id": "1"}] * 10, "total_count": 10, "has_more": False}, False),
    ({"data": [{"id": "1"}] * 10, "total_count": 12, "has_more": False}, True),  # more exist than shown
    ({"data": [{"id": "1"}] * 10, "total_count": 10, "has_more": True}, True),
    ({"data": [], "total_count": 0}, False),
    ({"total_count": 3}, True),  # no list shown at all
    ({"data": None, "total_count": 0, "has_more": False}, True),  # cannot tell from the columns: decoded
    (None, True),
])
def test_a_cut_list_is_seen_in_the_parsed_columns(tags: dict[str, Any] | None, cut: bool) -> None:
    """The readers' check of embedded lists (arrow_pages._lists_cut) agrees with the decoded path
    (relations.needs_completion), or sends the page there; a whole list beside it changes nothing."""
    whole = {"data": [{"id": "2"}], "total_count": 1, "has_more": False}
    records = pa.array([{"id": "a", "tags": whole}, {"id": "b", "tags": tags}]).flatten()
    records = pa.StructArray.from_arrays(records, names=["id", "tags"])
    assert arrow_pages._lists_cut(records, ("tags",)) is cut
    if tags is not None and tags.get("data") is not None:
        assert needs_completion(tags) is cut


def test_pages_read_together_are_the_pages_read_alone(
    workspace: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pages the readers queue at once are parsed by one call of Arrow's reader (read_together.py),
    each then a slice of the call's records: every stage makes of such a page what it makes of the
    page decoded. A page the plan refuses is refused alone; one with line breaks is read alone."""
    captured: list[tuple[arrow_pages.PageParser, bytes]] = []
    parse = arrow_pages.PageParser.__call__

    def capture(parser: arrow_pages.PageParser, content: bytes) -> arrow_pages.ArrowPage | None:
        page = parse(parser, content)
        if page is not None and len(page) == 150:
            captured.append((parser, content))
        return page

    monkeypatch.setattr(arrow_pages.PageParser, "__call__", capture)
    Sync(workspace, tmp_path / "lane", dataset="parsed").run(streams=STREAMS)
    monkeypatch.setattr(arrow_pages.PageParser, "__call__", parse)
    assert len(captured) >= 4, f"{len(captured)} pages parsed by the readers"
    lane = captured[0][0]
    contents = [content for _, content in captured[:4]]
    pretty = orjson.dumps(orjson.loads(contents[1]), option=orjson.OPT_INDENT_2)
    unknown = orjson.loads(contents[0])
    unknown["data"][3]["a_key_never_seen"] = 1

    # four pages and a pretty-printed one: the four read by one call, the pretty one alone
    parser = arrow_pages.PageParser(lane.cursor_field, lane.lists, lane.plan, gather=5.0, gather_pages=5)
    pages = _read_at_once(parser, [*contents, pretty])
    assert (parser.reads, parser.refused) == (1, 0)
    assert any(page is not None and page.records.offset > 0 for page in pages), "no page was a slice of a joint read"
    for page, content in zip(pages, [*contents, pretty], strict=True):
        assert page is not None
        alone = parse(parser, content)
        assert alone is not None and page.records.equals(alone.records) and page.envelope == alone.envelope
        decoded = orjson.loads(content)["data"]
        epochs = sorted(r["updated_at"] for r in decoded)
        window = window_readers.Window(epochs[10], epochs[-10])
        parsed_way, usual_way = _stage_outputs([page], window, epochs[20], {}), _stage_outputs([decoded], window, epochs[20], {})
        assert (parsed_way.pop("kinds"), usual_way.pop("kinds")) == (["ArrowPage"], ["list"])  # stayed parsed
        assert parsed_way == usual_way

    # a page with a key the plan never saw, among two plain ones: only it is refused
    parser = arrow_pages.PageParser(lane.cursor_field, lane.lists, lane.plan, gather=5.0, gather_pages=3)
    pages = _read_at_once(parser, [contents[2], orjson.dumps(unknown), contents[3]])
    assert (parser.reads, parser.refused) == (1, 1)
    assert pages[1] is None  # decoded by orjson, as ever
    for page, content in zip([pages[0], pages[2]], [contents[2], contents[3]], strict=True):
        alone = parse(parser, content)
        assert page is not None and alone is not None and page.records.equals(alone.records)


def _read_at_once(parser: arrow_pages.PageParser, served: list[bytes]) -> list[arrow_pages.ArrowPage | None]:
    """`parser` called with each page in a thread of its own, all at once (as the window readers do)."""
    pages = at_once([functools.partial(parser, content) for content in served])
    assert not any(isinstance(page, Exception) for page in pages), pages
    return pages  # type: ignore[return-value]

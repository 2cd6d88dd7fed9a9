"""History mode (dlt scd2): one row per version, contiguous validity, relations versioned too."""

from __future__ import annotations

import pytest

from intercom_elt.pipelines.reconcile import reconcile_deletes
from tests.datamodel.conftest import special_contact

STREAMS = ["contacts", "companies", "conversations"]


def _versions(sync, cid: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    return sync.query(
        f"select name, _dlt_valid_from, _dlt_valid_to, _dlt_id from contacts where id = '{cid}' order by _dlt_valid_from"
    )


def _three_updates(sync, cid: str) -> None:  # type: ignore[no-untyped-def]
    ws = sync.emu.workspace
    tags = [str(t["id"]) for t in ws.ground_truth("tags")]
    for n in range(3):
        ws.clock.advance(60)
        ws.update_contact(cid, name=f"Version {n + 1}")
        if n == 1:
            ws.tag_contact(cid, next(t for t in tags if t not in {str(x["id"]) for x in ws.contact_tags(cid)}))
        sync.run(streams=STREAMS, history=True)


def _assert_history(sync, cid: str) -> None:  # type: ignore[no-untyped-def]
    ws = sync.emu.workspace
    versions = _versions(sync, cid)
    assert [v[0] for v in versions][1:] == ["Version 1", "Version 2", "Version 3"]
    assert len(versions) == 4  # the first load + three updates
    for older, newer in zip(versions, versions[1:], strict=False):
        assert older[2] == newer[1], "validity ranges must be contiguous"
        assert older[1] < older[2]
    assert versions[-1][2] is None
    # exactly one current row per live contact; untouched contacts have a single version
    current = sync.query("select id, count(*) from contacts where _dlt_valid_to is null group by id")
    assert {r[0] for r in current} == {str(c) for c in ws.ids("contacts")} and {r[1] for r in current} == {1}
    assert sync.query("select count(*) from contacts") == [(ws.count("contacts") + 3,)]
    # relations are versioned with their parent: the tag added in update 2 belongs to versions 2 and 3
    counts = [sync.query(f"select count(*) from contacts__tags where _dlt_parent_id = '{v[3]}'")[0][0] for v in versions]
    before = len(ws.contact_tags(cid)) - 1
    assert counts == [before, before, before + 1, before + 1]
    current_tags = sync.query(
        "select t.id from contacts__tags t join contacts c on t._dlt_parent_id = c._dlt_id "
        f"where c._dlt_valid_to is null and c.id = '{cid}'"
    )
    assert {r[0] for r in current_tags} == {str(t["id"]) for t in ws.contact_tags(cid)}


def test_three_updates_give_three_new_versions_with_contiguous_validity(sync) -> None:  # type: ignore[no-untyped-def]
    ws = sync.emu.workspace
    cid = special_contact(ws)
    sync.run(streams=STREAMS, history=True)
    _three_updates(sync, cid)
    _assert_history(sync, cid)
    # companies and conversations are versioned too (one current version each)
    for table in ("companies", "conversations"):
        assert sync.query(f"select count(*) from {table} where _dlt_valid_to is null") == [(ws.count(table),)]


def test_default_mode_keeps_latest_state_only(sync) -> None:  # type: ignore[no-untyped-def]
    ws = sync.emu.workspace
    cid = str(ws.ids("contacts")[4])
    sync.run(streams=["contacts"])
    ws.clock.advance(60)
    ws.update_contact(cid, name="Latest")
    sync.run(streams=["contacts"])
    assert sync.query(f"select name from contacts where id = '{cid}'") == [("Latest",)]
    cols = {r[0] for r in sync.query("select column_name from information_schema.columns where table_name = 'contacts'")}
    assert "_dlt_valid_to" not in cols


def test_reconciliation_closes_the_current_version(sync) -> None:  # type: ignore[no-untyped-def]
    ws = sync.emu.workspace
    cid = str(ws.ids("contacts")[6])
    sync.run(streams=["contacts"], history=True)
    ws.clock.advance(60)
    ws.delete_contact(cid)
    client = sync.run(streams=["contacts"], history=True)
    results = reconcile_deletes(sync.pipeline, client, streams=["contacts"])
    assert results[0].marked == {"deleted": 1}
    rows = sync.query(f"select _dlt_valid_to is not null, _deleted_at is not null from contacts where id = '{cid}'")
    assert rows == [(True, True)]
    assert sync.query("select count(*) from contacts where _dlt_valid_to is null") == [(ws.count("contacts"),)]


@pytest.mark.postgres
def test_history_on_postgres(pg_sync) -> None:  # type: ignore[no-untyped-def]
    cid = special_contact(pg_sync.emu.workspace)
    pg_sync.run(streams=STREAMS, history=True)
    _three_updates(pg_sync, cid)
    _assert_history(pg_sync, cid)


def test_history_rows_keep_their_none_values(emu, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """dlt's scd2 hashes each row as yielded, None values included, to tell changed records from
    unchanged ones: history rows keep the API's None values (else every record re-read after an
    upgrade would get a new version); other rows leave them out (dlt drops them anyway, slower)."""
    import dlt

    from intercom_elt.sources.intercom import intercom_source

    def nones(history: bool, stream: str) -> int:
        # a fresh pipeline is the active one: its empty state starts every cursor at the beginning
        dlt.pipeline(pipeline_name=f"nones_{stream}_{history}", pipelines_dir=str(tmp_path))
        source = intercom_source(access_token=emu.token, base_url=emu.base_url, streams=[stream], history=history)
        pages = list(source.resources[stream])
        rows = [row for page in pages for row in (page if isinstance(page, list) else [page])]
        assert rows, stream
        return sum(v is None for row in rows for v in row.values())

    plain, history = nones(False, "contacts"), nones(True, "contacts")
    assert history > plain, (history, plain)  # e.g. every contact's android_* fields
    for stream in ("companies", "conversations"):
        assert nones(True, stream) >= nones(False, stream), stream

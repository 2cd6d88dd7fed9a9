"""The post-load step that settles `_intercom_rejects`, on real DuckDB and Postgres.

Three loads: records kept aside, the same records kept aside again, then the fixed ones landing.
The table must hold one row per rejected record with its first sighting, and lose a row exactly
when its record has landed (incremental streams) or its listing stream ran clean.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dlt
import pytest

from intercom_elt.pipelines.rejects import REJECTS_TABLE, settle_rejects
from intercom_elt.sources.intercom.rejects import Rejects, rows_and_rejects, with_rejects_table


def _source(contacts: list[dict[str, Any]], tags: list[dict[str, Any]]) -> Any:
    """Two streams as the Intercom source builds them: rows screened, rejects yielded in-band."""

    def contact_rows() -> Iterator[Any]:
        rejects = Rejects("contacts", secrets=("tok-SECRET",))
        kept = rejects.screened(contacts, cursor_field="updated_at")
        yield from rows_and_rejects(kept, rejects)

    def tag_rows() -> Iterator[Any]:
        rejects = Rejects("tags")
        yield from rows_and_rejects(rejects.screened(tags), rejects)

    @dlt.source(name="intercom")
    def source() -> list[Any]:
        return [
            with_rejects_table(dlt.resource(contact_rows, name="contacts", primary_key="id", write_disposition="merge")()),
            with_rejects_table(dlt.resource(tag_rows, name="tags", primary_key="id", write_disposition="merge")()),
        ]

    return source()


def _run(pipeline: dlt.Pipeline, contacts: list[dict[str, Any]], tags: list[dict[str, Any]]) -> dict[str, int] | None:
    info = pipeline.run(_source(contacts, tags))
    return settle_rejects(pipeline, ["contacts", "tags"], list(info.loads_ids))


def _rejects(pipeline: dlt.Pipeline) -> list[tuple[Any, ...]]:
    with pipeline.sql_client() as sql:
        table = sql.make_qualified_table_name(REJECTS_TABLE)
        rows = sql.execute_sql(
            f"SELECT stream, reject_key, record_id, reason, first_seen, last_seen FROM {table} ORDER BY stream, reject_key"
        )
    return [tuple(r) for r in rows]


def _scenario(pipeline: dlt.Pipeline) -> None:
    good = {"id": "a", "updated_at": 1_700_000_000, "name": "A"}
    no_cursor = {"id": "b", "updated_at": None, "name": "B"}
    no_id = {"email": "x@example.com", "updated_at": 1_700_000_001, "note": "tok-SECRET"}
    bad_tag = {"type": "tag", "name": "vip"}

    assert _run(pipeline, [good, no_cursor, no_id], [bad_tag, {"id": "t1", "name": "ok"}]) == {"contacts": 2, "tags": 1}
    first = _rejects(pipeline)
    assert [(s, rid, reason) for s, _, rid, reason, _, _ in first] == [
        ("contacts", "b", "'updated_at' is not a timestamp: null"),
        ("contacts", None, "no 'id'"),
        ("tags", None, "no 'id'"),
    ]
    assert "tok-SECRET" not in repr(first)

    # the same three again: still one row each, first seen kept, last seen moved on
    assert _run(pipeline, [good, no_cursor, no_id], [bad_tag]) == {"contacts": 2, "tags": 1}
    second = _rejects(pipeline)
    assert [r[:4] for r in second] == [r[:4] for r in first]
    for before, after in zip(first, second, strict=True):
        assert after[4] == before[4]  # first_seen
        assert after[5] > before[5]  # last_seen

    # b is fixed and lands; tags list clean: their rejects go, the id-less contact stays
    assert _run(pipeline, [{**no_cursor, "updated_at": 1_700_000_005}], [{"id": "t1", "name": "ok"}]) == {}
    third = _rejects(pipeline)
    assert [(s, rid, reason) for s, _, rid, reason, _, _ in third] == [("contacts", None, "no 'id'")]
    with pipeline.sql_client() as sql:
        ids = sql.execute_sql(f"SELECT id FROM {sql.make_qualified_table_name('contacts')} ORDER BY id")
    assert [r[0] for r in ids] == ["a", "b"]


def _pipeline(tmp_path: Path, destination: Any, dataset: str) -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name=f"rejects_{uuid.uuid4().hex[:8]}", destination=destination, dataset_name=dataset,
        pipelines_dir=str(tmp_path / "pipelines"),
    )


def test_settle_on_duckdb(tmp_path: Path) -> None:
    _scenario(_pipeline(tmp_path, dlt.destinations.duckdb(str(tmp_path / "w.duckdb")), "intercom_data"))


@pytest.mark.postgres
def test_settle_on_postgres(tmp_path: Path, postgres_credentials: str, postgres_dataset: str) -> None:
    _scenario(_pipeline(tmp_path, dlt.destinations.postgres(postgres_credentials), postgres_dataset))


def test_settling_never_fails_a_finished_load(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A broken settle step warns and returns None; the rows stay loaded."""
    pipeline = _pipeline(tmp_path, dlt.destinations.duckdb(str(tmp_path / "w.duckdb")), "intercom_data")
    pipeline.run(_source([{"id": "x"}], []))  # a reject (no cursor) and no contacts table
    broken: Callable[..., Any] = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("database went away"))  # noqa: E731
    original = pipeline.sql_client
    pipeline.sql_client = broken  # type: ignore[method-assign]
    try:
        assert settle_rejects(pipeline, ["contacts"], ["1"]) is None
    finally:
        pipeline.sql_client = original  # type: ignore[method-assign]
    assert "the rejects table was not settled (RuntimeError: database went away)" in caplog.text
    assert len(_rejects(pipeline)) == 1

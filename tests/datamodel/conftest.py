"""Fixtures for the data-model tests (complete relations, tickets, deletes, history).

They reuse the connector tests' `Sync` (one dlt pipeline on a DuckDB file in tmp_path, run
against an in-process emulator); `pg_sync` is the same on the Postgres test server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dlt
import pytest

from intercom_emulator.testing import EmulatorServer
from tests.connector.conftest import Sync


class PgSync(Sync):
    """`Sync` into a Postgres schema; `query` runs through the pipeline's sql client."""

    def query(self, sql: str) -> list[tuple]:
        with self.pipeline.sql_client() as client:
            with client.execute_query(f'SET search_path TO "{self.dataset}"'):
                pass
            return [tuple(r) for r in client.execute_sql(sql) or []]


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(profile="tiny", seed=1) as server:
        yield server


@pytest.fixture
def sync(emu: EmulatorServer, tmp_path: Path) -> Sync:
    return Sync(emu, tmp_path)


@pytest.fixture
def pg_sync(emu: EmulatorServer, tmp_path: Path, postgres_credentials: str, postgres_dataset: str) -> PgSync:
    return PgSync(emu, tmp_path, destination=dlt.destinations.postgres(postgres_credentials), dataset=postgres_dataset)


def special_contact(ws, with_role: str = "user") -> str:  # type: ignore[no-untyped-def]
    """A contact whose embedded tags and companies are cut at 10 (25 tags, 12 companies)."""
    for cid in ws.ids("contacts"):
        if len(ws.contact_tags(cid)) >= 25 and len(ws.contact_companies(cid)) >= 12:
            return str(cid)
    raise AssertionError("the profile has no contact with 25 tags and 12 companies")


def pairs(rows) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {(str(a), str(b)) for a, b in rows}

"""Fixtures for the analyst-view tests: one hand-built emulator scenario, synced once per destination.

The scenario conversation (times in seconds after it was opened by a user):

      0  opened by the user (source message)
    120  assigned to team 7200001 (by admin 5100003, no body)
    180  assigned to admin 5100003 (no body)
    600  note by admin 5100003                      -> not a response
    905  comment by admin 5100003                   -> first admin response (15.08 min)
   1200  comment by the bot                         -> bots are not admins
   1500  snoozed by admin 5100003
   2400  reopened by admin 5100003 (part "open")
   3000  comment by the user                        -> first contact reply
   3300  assignment WITH a body, to admin 5100004   -> an admin response, 3rd assignment
   4200  closed by the bot                          -> first close (any author)
   4800  comment by the user                        -> last contact reply
   5400  comment by admin 5100004                   -> last admin response
   6000  closed by admin 5100004                    -> first = last admin close
   6060  rated 4 ("Great help")

A second conversation gets 505 parts, more than the 500 Intercom returns.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest

from intercom_elt.pipelines import config
from intercom_elt.pipelines import intercom_pipeline as ip
from intercom_emulator.testing import EmulatorServer

ADMIN_1, ADMIN_2, TEAM = "5100003", "5100004", "7200001"
LONG_PARTS = 505


@dataclass
class Scenario:
    emu: EmulatorServer
    conversation_id: str
    long_conversation_id: str
    contact_id: str
    t0: int


def build_scenario(emu: EmulatorServer) -> Scenario:
    ws = emu.workspace
    clock = ws.clock
    clock.freeze()
    clock.advance(3600)
    contact = str(ws.ground_truth("contacts")[0]["id"])
    t0 = clock.now()
    conv = ws.create_conversation(contact, body="<p>My invoice is wrong</p>")

    def at(offset: int) -> None:
        clock.advance(t0 + offset - clock.now())

    at(120)
    ws.assign_conversation(conv, team_id=TEAM, by_admin_id=ADMIN_1)
    at(180)
    ws.assign_conversation(conv, admin_id=ADMIN_1, by_admin_id=ADMIN_1)
    at(600)
    ws.add_conversation_part(
        conv, part_type="note", author_type="admin", admin_id=ADMIN_1, body="<p>checking</p>"
    )
    at(905)
    ws.add_conversation_part(
        conv, part_type="comment", author_type="admin", admin_id=ADMIN_1, body="<p>Hi!</p>"
    )
    at(1200)
    ws.add_conversation_part(conv, part_type="comment", author_type="bot", body="<p>Did that help?</p>")
    at(1500)
    ws.snooze_conversation(conv, until=t0 + 2400, admin_id=ADMIN_1)
    at(2400)
    ws.reopen_conversation(conv, admin_id=ADMIN_1)
    at(3000)
    ws.add_conversation_part(conv, part_type="comment", author_type="user", body="<p>Still wrong</p>")
    at(3300)
    ws.add_conversation_part(
        conv,
        part_type="assignment",
        author_type="admin",
        admin_id=ADMIN_1,
        body="<p>Handing over to billing</p>",
        assigned_to={"type": "admin", "id": ADMIN_2},
    )
    at(4200)
    ws.add_conversation_part(conv, part_type="close", author_type="bot")
    at(4800)
    ws.add_conversation_part(conv, part_type="comment", author_type="user", body="<p>No!</p>")
    at(5400)
    ws.add_conversation_part(
        conv, part_type="comment", author_type="admin", admin_id=ADMIN_2, body="<p>Fixed</p>"
    )
    at(6000)
    ws.close_conversation(conv, admin_id=ADMIN_2)
    at(6060)
    ws.rate_conversation(conv, 4, "Great help")

    at(7000)
    long_conv = ws.create_conversation(contact, body="<p>Long thread</p>")
    for _ in range(LONG_PARTS):
        clock.advance(1)
        ws.add_conversation_part(long_conv, part_type="comment", author_type="user", body="<p>more</p>")
    clock.unfreeze()
    return Scenario(emu, conv, long_conv, contact, t0)


@dataclass
class Warehouse:
    """One synced dataset; `rows(sql)` runs SQL with `{ds}`/`{ft}` replaced by the schema names."""

    destination: str
    dataset: str
    duckdb_path: Path | None = None
    dsn: str | None = None
    views_line: str | None = None
    target: Any = None
    settings: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fivetran(self) -> str:
        return f"{self.dataset}_fivetran"

    def sql(self, text: str) -> str:
        return text.replace("{ds}", self.dataset).replace("{ft}", self.fivetran)

    def query(self, text: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        text = self.sql(text)
        if self.destination == "duckdb":
            con = duckdb.connect(str(self.duckdb_path), read_only=True)
            try:
                cur = con.execute(text)
                return [d[0] for d in cur.description], cur.fetchall()
            finally:
                con.close()
        import psycopg2

        conn = psycopg2.connect(self.dsn)
        try:
            with conn.cursor() as cur:
                cur.execute("set timezone = 'UTC'")
                cur.execute(text)
                return [d[0] for d in cur.description], cur.fetchall()
        finally:
            conn.close()

    def rows(self, text: str) -> list[tuple[Any, ...]]:
        return self.query(text)[1]

    def dicts(self, text: str) -> list[dict[str, Any]]:
        cols, rows = self.query(text)
        return [dict(zip(cols, r, strict=True)) for r in rows]

    def columns(self, schema: str, table: str) -> dict[str, str]:
        rows = self.rows(
            "select column_name, data_type from information_schema.columns "
            f"where table_schema = '{schema}' and table_name = '{table}' order by ordinal_position"
        )
        return {str(c): str(t).lower() for c, t in rows}


def sync(emu: EmulatorServer, target: config.Target, **kwargs: Any) -> str | None:
    settings = config.SourceSettings(access_token=emu.token, base_url=emu.base_url)
    summary = ip.run_sync(settings, target, preflight=False, **kwargs)
    return getattr(summary, "views", None)


@pytest.fixture(scope="session")
def scenario() -> Iterator[Scenario]:
    with EmulatorServer(profile="tiny", seed=1) as emu:
        yield build_scenario(emu)


@pytest.fixture(scope="session")
def duck(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    tmp = tmp_path_factory.mktemp("views_duckdb")
    target = config.Target(
        destination="duckdb",
        dataset_name="intercom_data",
        pipeline_name=f"views_{uuid.uuid4().hex[:8]}",
        duckdb_path=str(tmp / "warehouse.duckdb"),
        pipelines_dir=str(tmp / "pipelines"),
    )
    line = sync(scenario.emu, target)
    return Warehouse(
        "duckdb", "intercom_data", duckdb_path=tmp / "warehouse.duckdb", views_line=line, target=target
    )


@pytest.fixture(scope="session")
def pg(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    from tests.conftest import POSTGRES_DSN, _require_postgres, drop_schemas

    _require_postgres()
    dataset = f"test_views_{uuid.uuid4().hex[:10]}"
    tmp = tmp_path_factory.mktemp("views_pg")
    target = config.Target(
        destination="postgres",
        dataset_name=dataset,
        pipeline_name=f"views_{uuid.uuid4().hex[:8]}",
        pipelines_dir=str(tmp / "pipelines"),
    )
    old = os.environ.get("DESTINATION__POSTGRES__CREDENTIALS")
    os.environ["DESTINATION__POSTGRES__CREDENTIALS"] = POSTGRES_DSN
    try:
        line = sync(scenario.emu, target)
        yield Warehouse("postgres", dataset, dsn=POSTGRES_DSN, views_line=line, target=target)
    finally:
        drop_schemas(POSTGRES_DSN, f"{dataset}_fivetran", dataset, f"{dataset}_staging")
        if old is None:
            os.environ.pop("DESTINATION__POSTGRES__CREDENTIALS", None)
        else:
            os.environ["DESTINATION__POSTGRES__CREDENTIALS"] = old


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def wh(request: pytest.FixtureRequest) -> Warehouse:
    """Each test using it runs once on DuckDB and once on Postgres."""
    return request.getfixturevalue("duck" if request.param == "duckdb" else "pg")

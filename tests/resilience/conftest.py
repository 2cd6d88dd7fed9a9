"""Shared machinery for the "never lose or duplicate a row" suite.

Why one comparator: every resilience test, whatever it breaks, ends the same way: the warehouse
(a real DuckDB file or a real Postgres schema) must equal the emulator's ground truth exactly:
the same ids, no duplicate key, key fields equal, child lists equal as multisets. Reading the
warehouse goes through the database drivers directly (not through our code or dlt), so the
witness is independent of the thing under test.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pendulum
import pytest

from intercom_elt.pipelines import intercom_pipeline as ip
from intercom_elt.pipelines.config import SourceSettings
from intercom_elt.pipelines.config import Target as PipelineTarget
from intercom_elt.pipelines.destination import pipeline_run_kwargs
from intercom_elt.sources.intercom import IntercomClient, intercom_source
from intercom_emulator.testing import EmulatorServer
from tests.conftest import POSTGRES_DSN, drop_schemas, postgres_unavailable_reason

log = logging.getLogger(__name__)

TOKEN = "emulator-token"
DATASET = "intercom_data"
MERGED = ("contacts", "companies", "conversations", "activity_logs")
REPLACED = ("admins", "tags", "teams", "segments")
ALL_STREAMS = (*MERGED, "conversation_parts", *REPLACED, "data_attributes", "tickets")
DESTINATIONS = ("duckdb", pytest.param("postgres", marks=pytest.mark.postgres))


# --------------------------------------------------------------------------- warehouse access
class Warehouse:
    """Read-only SQL access to one dataset in DuckDB (a file) or Postgres (a schema)."""

    def __init__(self, kind: str, dataset: str, duckdb_path: Path | None = None, dsn: str | None = None) -> None:
        self.kind = kind
        self.dataset = dataset
        self.duckdb_path = duckdb_path
        self.dsn = dsn

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run `sql` with the dataset as search path; a fresh connection each time (no stale reads)."""
        if self.kind == "duckdb":
            assert self.duckdb_path is not None
            if not self.duckdb_path.exists():
                return []
            with duckdb.connect(str(self.duckdb_path), read_only=True) as con:
                con.execute(f"SET search_path = '{self.dataset}'")
                return con.execute(sql).fetchall()
        import psycopg2

        conn = psycopg2.connect(self.dsn, connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute(f'SET search_path TO "{self.dataset}"')
                cur.execute(sql)
                return list(cur.fetchall())
        finally:
            conn.close()

    def tables(self) -> set[str]:
        """Table names in the dataset (empty when it does not exist yet)."""
        if self.kind == "duckdb":
            sql = f"select table_name from information_schema.tables where table_schema = '{self.dataset}'"
        else:
            sql = f"select table_name from information_schema.tables where table_schema = '{self.dataset}'"
        try:
            return {str(r[0]) for r in self.query(sql)}
        except Exception:  # noqa: BLE001 - a missing file/schema simply has no tables
            return set()

    def columns(self, table: str) -> set[str]:
        """Column names of one table (empty when it does not exist)."""
        sql = (
            "select column_name from information_schema.columns "
            f"where table_schema = '{self.dataset}' and table_name = '{table}'"
        )
        try:
            return {str(r[0]) for r in self.query(sql)}
        except Exception:  # noqa: BLE001 - a missing file/schema simply has no columns
            return set()

    def epoch(self, column: str) -> str:
        """SQL for a timestamp column as integer unix seconds (same text works on both engines)."""
        return f"cast(extract(epoch from {column}) as bigint)"

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every user table's rows (sorted, dlt ids dropped) to prove a failed run changed nothing."""
        out: dict[str, list[tuple[Any, ...]]] = {}
        for table in sorted(self.tables()):
            rows = self.query(f'select * from "{table}"')
            out[table] = sorted(tuple(str(v) for v in r) for r in rows)
        return out


def _full(ws: Any, field: str, contact: dict[str, Any]) -> list[dict[str, Any]]:
    """A contact's whole tag/company list: the embedded one is cut at 10 (`has_more`)."""
    if not contact[field].get("has_more"):
        return list(contact[field]["data"])
    reader = ws.contact_tags if field == "tags" else ws.contact_companies
    return list(reader(contact["id"]))


# why a row may carry `_deleted_at` (sources/intercom/deletes.py), per table
DELETE_REASONS: dict[str, set[str]] = {
    "contacts": {"deleted", "merged", "archived"},
    "companies": {"deleted"},
    "conversations": {"deleted"},
    **{t: {"missing_from_list"} for t in REPLACED},
}


def assert_matches_ground_truth(wh: Warehouse, ws: Any, streams: Sequence[str] = ALL_STREAMS) -> dict[str, int]:
    """The warehouse equals `ws`'s ground truth for `streams`: ids, no duplicates, key fields.

    Deleted rows: a row marked with `_deleted_at` (a reconciliation or a soft delete noticed it
    vanished) counts as deleted, not as an extra row, provided its id really is gone from the
    ground truth and `_deleted_reason` is one the connector documents; the relation rows of a
    deleted parent are left out of the comparison. An unmarked row of a vanished record is extra.

    Returns the number of rows compared per table (for reports), plus `<table> (deleted)` counts.
    """
    compared: dict[str, int] = {}
    tables = wh.tables()
    marked: dict[str, set[str]] = {}  # table -> ids of rows marked deleted

    def deleted_ids(table: str, truth_ids: set[str]) -> set[str]:
        if table not in tables or "_deleted_at" not in wh.columns(table):
            return set()
        rows = wh.query(f"select id, _deleted_reason from {table} where _deleted_at is not null")
        ids = {str(r[0]) for r in rows}
        alive = sorted(ids & truth_ids)
        assert not alive, f"{table}: {len(alive)} live records marked deleted, e.g. {alive[:3]}"
        bad = sorted({str(r[1]) for r in rows} - DELETE_REASONS.get(table, set()))
        assert not bad, f"{table}: unexpected _deleted_reason {bad}"
        marked[table] = ids
        compared[f"{table} (deleted)"] = len(ids)
        return ids

    def live(table: str, column: str = "id") -> str:
        """SQL condition: the row is not marked deleted (`column` is its id in `table`)."""
        if not marked.get(table):
            return "true"
        return f"{column} not in (select id from {table} where _deleted_at is not null)"

    def check(table: str, sql: str, truth: list[tuple[Any, ...]]) -> None:
        assert table in tables, f"{table}: table missing from the warehouse ({sorted(tables)})"
        got = [tuple(None if v is None else (v if isinstance(v, (int, bool)) else str(v)) for v in r) for r in wh.query(sql)]
        got_c, truth_c = Counter(got), Counter(truth)
        dup = [k for k, n in got_c.items() if n > 1]
        assert not dup, f"{table}: {len(dup)} duplicated rows, e.g. {dup[:3]}"
        missing = truth_c - got_c
        extra = got_c - truth_c
        assert not missing and not extra, (
            f"{table}: {sum(missing.values())} rows missing (e.g. {list(missing)[:3]}), "
            f"{sum(extra.values())} unexpected (e.g. {list(extra)[:3]})"
        )
        compared[table] = len(got)

    def s(v: Any) -> str | None:
        return None if v is None else str(v)

    def ids_unique(table: str, key: str = "id") -> None:
        rows = wh.query(f"select {key}, count(*) from {table} group by {key} having count(*) > 1")
        assert not rows, f"{table}: duplicate primary key {key}: {rows[:5]}"

    if "contacts" in streams:
        truth = ws.ground_truth("contacts")
        ids_unique("contacts")
        deleted_ids("contacts", {str(c["id"]) for c in truth})
        check(
            "contacts",
            f"select id, {wh.epoch('updated_at')}, email, name, role from contacts where {live('contacts')}",
            [(str(c["id"]), int(c["updated_at"]), s(c.get("email")), s(c.get("name")), s(c.get("role"))) for c in truth],
        )
        check(
            "contacts__tags",
            f"select contact_id, id from contacts__tags where {live('contacts', 'contact_id')}",
            [(str(c["id"]), str(t["id"])) for c in truth for t in _full(ws, "tags", c)],
        )
        check(
            "contacts__companies",
            f"select contact_id, id from contacts__companies where {live('contacts', 'contact_id')}",
            [(str(c["id"]), str(x["id"])) for c in truth for x in _full(ws, "companies", c)],
        )
    if "companies" in streams:
        truth = ws.ground_truth("companies")
        ids_unique("companies")
        deleted_ids("companies", {str(c["id"]) for c in truth})
        check(
            "companies",
            f"select id, {wh.epoch('updated_at')}, name, company_id, user_count from companies where {live('companies')}",
            [(str(c["id"]), int(c["updated_at"]), s(c.get("name")), s(c.get("company_id")), int(c["user_count"])) for c in truth],
        )
        check(
            "companies__tags",
            f"select company_id, id from companies__tags where {live('companies', 'company_id')}",
            [(str(c["id"]), str(t["id"])) for c in truth for t in c["tags"]["tags"]],
        )
    if "conversations" in streams:
        truth = ws.ground_truth("conversations")
        ids_unique("conversations")
        deleted_ids("conversations", {str(c["id"]) for c in truth})
        check(
            "conversations",
            f"select id, {wh.epoch('updated_at')}, state, statistics__count_conversation_parts from conversations "
            f"where {live('conversations')}",
            [
                (str(c["id"]), int(c["updated_at"]), s(c["state"]), int(c["statistics"]["count_conversation_parts"]))
                for c in truth
            ],
        )
        check(
            "conversations__contacts",
            f"select conversation_id, id from conversations__contacts where {live('conversations', 'conversation_id')}",
            [(str(c["id"]), str(x["id"])) for c in truth for x in c["contacts"]["contacts"]],
        )
    if "conversation_parts" in streams:
        ids_unique("conversation_parts")
        # Intercom returns only the newest 500 parts: older parts of a truncated conversation that
        # were loaded while still among the newest 500 stay (they exist); nothing else may differ
        truncated = {str(c["id"]) for c in ws.ground_truth("conversations")
                     if int(c["statistics"]["count_conversation_parts"]) > 500}
        kept = " and ".join([*(f"conversation_id <> '{cid}'" for cid in sorted(truncated)),
                             live("conversations", "conversation_id")])
        check(
            "conversation_parts",
            f"select id, conversation_id, part_type from conversation_parts where {kept}",
            [(str(p["id"]), str(p["conversation_id"]), s(p.get("part_type"))) for p in ws.ground_truth("conversation_parts")
             if str(p["conversation_id"]) not in truncated],
        )
        for cid in sorted(truncated):
            got = {str(r[0]) for r in wh.query(f"select id from conversation_parts where conversation_id = '{cid}'")}
            want = {str(p["id"]) for p in ws.ground_truth("conversation_parts") if str(p["conversation_id"]) == cid}
            assert want <= got, f"conversation_parts of {cid}: {len(want - got)} of the newest 500 missing"
            every = {str(p["id"]) for p in ws.conversation_parts(cid)}
            assert got <= every, f"conversation_parts of {cid}: ids that never existed: {sorted(got - every)[:3]}"
        compared["conversation_parts"] = compared.get("conversation_parts", 0)
    if "activity_logs" in streams:
        ids_unique("activity_logs")
        check(
            "activity_logs",
            f"select id, {wh.epoch('created_at')}, activity_type from activity_logs",
            [(str(r["id"]), int(r["created_at"]), s(r.get("activity_type"))) for r in ws.ground_truth("activity_logs")],
        )
    for stream in REPLACED:
        if stream in streams:
            ids_unique(stream)
            truth = ws.ground_truth(stream)
            deleted_ids(stream, {str(r["id"]) for r in truth})
            check(stream, f"select id, name from {stream} where {live(stream)}", [(str(r["id"]), s(r.get("name"))) for r in truth])
    if "tickets" in streams and "tickets" in tables:
        ids_unique("tickets")
        check(
            "tickets",
            f"select id, {wh.epoch('updated_at')} from tickets",
            [(str(t["id"]), int(t["updated_at"])) for t in ws.ground_truth("tickets")],
        )
    if "data_attributes" in streams:
        check(
            "data_attributes",
            "select model, full_name, name from data_attributes",  # built-ins have no id: keyed on full_name
            [(str(a["model"]), str(a["full_name"]), s(a.get("name"))) for a in ws.ground_truth("data_attributes")],
        )
    return compared


# --------------------------------------------------------------------------- saved cursors
def product_pipeline(target: Target, pipelines_dir: Path, name: str) -> dlt.Pipeline:
    """A dlt pipeline to `target`, as the product makes one (its own working dir under `pipelines_dir`)."""
    return dlt.pipeline(
        pipeline_name=name, destination=target.destination, dataset_name=target.dataset, pipelines_dir=str(pipelines_dir),
    )


def sync_product_path(
    emu: EmulatorServer, target: Target, pipelines_dir: Path, name: str, streams: Sequence[str], **options: Any,
) -> tuple[dlt.Pipeline, list[str]]:
    """The product's run path (`run_until_caught_up`, every part) in this process: the pipeline and
    the load ids of the run."""
    pipeline = product_pipeline(target, pipelines_dir, name)
    settings = SourceSettings(access_token=emu.token, base_url=emu.base_url, streams=list(streams), **options).validated()
    client = IntercomClient(emu.token, base_url=emu.base_url, backoff_base=0.05)
    try:
        loads = ip.run_until_caught_up(pipeline, settings, client, **pipeline_run_kwargs(PipelineTarget(destination=target.kind)))
    finally:
        client.close()
    return pipeline, loads


def _decode_dlt_value(value: Any) -> Any:
    """dlt's state JSON prefixes typed values with a private-use char (\\uf027 = datetime)."""
    if isinstance(value, str) and value[:1] == "\uf027":
        return pendulum.parse(value[1:])
    return value


def saved_cursors(state: dict[str, Any]) -> dict[str, pendulum.DateTime]:
    """{resource: last_value} of every incremental cursor in a dlt pipeline state dict."""
    out: dict[str, pendulum.DateTime] = {}
    resources = ((state.get("sources") or {}).get("intercom") or {}).get("resources") or {}
    for name, rstate in resources.items():
        for cursor in (rstate.get("incremental") or {}).values():
            value = _decode_dlt_value(cursor.get("last_value"))
            if value is not None:
                out[name] = value
    return out


def local_state(pipelines_dir: Path, pipeline_name: str) -> dict[str, Any]:
    """The pipeline's local state.json (empty when the pipeline never committed one)."""
    path = pipelines_dir / pipeline_name / "state.json"
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text()))


def pending_packages(pipelines_dir: Path, pipeline_name: str) -> list[str]:
    """Load ids extracted or normalized but not yet loaded (dlt finishes them on the next run)."""
    root = pipelines_dir / pipeline_name
    found: list[str] = []
    for sub in ("normalize/extracted", "load/new", "load/normalized"):
        folder = root / sub
        if folder.is_dir():
            found += [p.name for p in folder.iterdir() if p.is_dir()]
    return found


CURSOR_COLUMN = {"contacts": "updated_at", "companies": "updated_at", "conversations": "updated_at", "activity_logs": "created_at"}


def assert_cursors_not_past_loaded(wh: Warehouse, pipelines_dir: Path, pipeline_name: str) -> None:
    """A saved cursor may only be ahead of the warehouse when a pending package holds that data.

    The cursor committed in the destination (`_dlt_pipeline_state`) must never be past the newest
    loaded row of its table; the local one may be, but only while dlt keeps the package that
    carries those rows (it is loaded first thing on the next run).
    """
    state = local_state(pipelines_dir, pipeline_name)
    cursors = saved_cursors(state)
    tables = wh.tables()
    pending = pending_packages(pipelines_dir, pipeline_name)
    for resource, cursor in cursors.items():
        column = CURSOR_COLUMN.get(resource)
        if column is None:
            continue
        newest = wh.query(f"select max({wh.epoch(column)}) from {resource}")[0][0] if resource in tables else None
        if newest is None or int(newest) < int(cursor.timestamp()):
            assert pending, (
                f"{resource}: saved cursor {cursor} is past the newest loaded row "
                f"({newest}) and no pending load package carries the missing rows"
            )


# --------------------------------------------------------------------------- destinations
@dataclass
class Target:
    """Where one test's sync lands: the dlt destination object and a reader for it."""

    kind: str
    dataset: str
    warehouse: Warehouse
    destination: Any
    env: dict[str, str]
    cli_args: list[str]


@pytest.fixture(params=DESTINATIONS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """A fresh DuckDB file or Postgres schema (dropped afterwards)."""
    kind = request.param
    if kind == "duckdb":
        path = tmp_path / "warehouse.duckdb"
        yield Target(
            kind, DATASET, Warehouse("duckdb", DATASET, duckdb_path=path),
            dlt.destinations.duckdb(str(path)), {}, ["--duckdb-path", str(path)],
        )
        return
    reason = postgres_unavailable_reason()
    assert reason is None, reason  # the autouse gate in tests/conftest.py skipped/failed already
    dataset = f"res_{uuid.uuid4().hex[:10]}"
    try:
        yield Target(
            kind, dataset, Warehouse("postgres", dataset, dsn=POSTGRES_DSN),
            dlt.destinations.postgres(POSTGRES_DSN), {"DESTINATION__POSTGRES__CREDENTIALS": POSTGRES_DSN},
            ["--destination", "postgres", "--dataset", dataset],
        )
    finally:
        drop_schemas(POSTGRES_DSN, dataset, f"{dataset}_staging")


# --------------------------------------------------------------------------- in-process sync
class Sync:
    """The real source in a real dlt pipeline, against the emulator over HTTP.

    The client gets a short timeout and backoff so fault tests stay fast; everything else is the
    production code path (`intercom_source` with an `IntercomClient`).
    """

    def __init__(self, emu: EmulatorServer, target: Target, pipelines_dir: Path, timeout: float = 5.0) -> None:
        self.emu = emu
        self.target = target
        self.timeout = timeout
        self.pipeline = dlt.pipeline(
            pipeline_name=f"res_{uuid.uuid4().hex[:8]}",
            destination=target.destination,
            dataset_name=target.dataset,
            pipelines_dir=str(pipelines_dir),
        )
        self.client: IntercomClient | None = None

    def run(self, **kwargs: Any) -> dict[str, Any]:
        """One sync; returns the client's stats (requests, retries, 429s)."""
        self.client = IntercomClient(
            self.emu.token, base_url=self.emu.base_url, backoff_base=0.05, backoff_max=1.0, timeout=self.timeout
        )
        try:
            source = intercom_source(access_token=self.emu.token, base_url=self.emu.base_url, client=self.client, **kwargs)
            # the load path production uses (parquet into DuckDB, INSERTs into Postgres)
            self.pipeline.run(source, **pipeline_run_kwargs(PipelineTarget(destination=self.target.kind)))
        finally:
            self.client.close()
        stats = self.client.stats.as_dict()
        log.info("sync stats: %s", stats)
        return stats

    def check(self, streams: Sequence[str] = ALL_STREAMS) -> dict[str, int]:
        """Compare the warehouse with ground truth now."""
        return assert_matches_ground_truth(self.target.warehouse, self.emu.workspace, streams)


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    """A tiny deterministic workspace served over real HTTP in this process.

    A scroll broken by an injected fault stays open on the server until it idles out (about a
    minute on Intercom), and the client's restart waits for that; 3 s keeps the restart path real
    without a minute's wait per broken scroll.
    """
    with EmulatorServer(profile="tiny", seed=3, scroll_idle_timeout=3.0) as server:
        yield server


@pytest.fixture
def sync(emu: EmulatorServer, target: Target, tmp_path: Path) -> Sync:
    return Sync(emu, target, tmp_path / "pipelines")


# --------------------------------------------------------------------------- fault helpers
class ScrollExpirer(threading.Thread):
    """Expires the open companies scroll once, between two pages, as an idle timeout would.

    Why a thread: the emulator's idle timeout is wall-clock based, so the test shortens it right
    after the first page of a scroll was served and restores it once the client opened a new
    scroll. Needs some latency on GET /companies/scroll so the flip lands between two pages.
    """

    def __init__(self, emu: EmulatorServer, times: int = 1) -> None:
        super().__init__(daemon=True, name="scroll-expirer")
        self.emu = emu
        self.times = times
        self.fired = 0
        self._halt = threading.Event()

    def run(self) -> None:
        state = self.emu.state
        while not self._halt.is_set() and self.fired < self.times:
            scroll = state.scroll
            if scroll is not None and scroll.page >= 1 and not scroll.done:
                # restore what the test configured, not Intercom's 60 s: a scroll a 5xx orphans
                # later must expire as fast as the test intended (a 60 s wait proves nothing more)
                idle = state.knobs.scroll_idle_timeout
                self.emu.configure(scroll_idle_timeout=0.0)
                while not self._halt.is_set() and state.scroll is scroll:
                    time.sleep(0.002)
                self.emu.configure(scroll_idle_timeout=idle)
                self.fired += 1
            time.sleep(0.002)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


class OtherScrollClient(threading.Thread):
    """Another client opens a companies scroll and walks away: ours must wait for it to expire."""

    def __init__(self, emu: EmulatorServer, idle_timeout: float = 1.5) -> None:
        super().__init__(daemon=True, name="other-scroller")
        self.emu = emu
        self.idle_timeout = idle_timeout

    def open_now(self) -> None:
        """Open the foreign scroll synchronously (before our sync starts)."""
        self.emu.configure(scroll_idle_timeout=self.idle_timeout)
        with self.emu.client(timeout=10) as http:
            resp = http.get("/companies/scroll")
            assert resp.status_code == 200, resp.text


def wait_until(pred: Callable[[], bool], timeout: float, step: float = 0.01) -> bool:
    """Poll `pred` until true or `timeout` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a CLI subprocess: telemetry off, no user config leaking in."""
    env = dict(os.environ)
    env["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    env.pop("DESTINATION__POSTGRES__CREDENTIALS", None)
    env.update(extra or {})
    return env

"""Shape-drift soak: sync a large workspace served with shape drift, then account for every record.

Not a CI test (minutes, not seconds); `tests/resilience/test_shape_drift.py` proves the same on the
tiny workspace. The emulator runs in this process (its log of what it served invalid is the
ground truth), the real CLI (`python -m intercom_elt.pipelines.cli run`) in a subprocess, into DuckDB or
Postgres. Then, read through the database drivers:
* per table, the rows the ground truth says must be there (every record not served invalid, with
  its cursor, and every child row) against the rows that are: missing, unexpected, duplicated;
* the records served invalid (without `id` or cursor) against the rows of `_intercom_rejects`,
  each mapped back to its record through the id the emulator kept in the served JSON.

    python bench/shape_soak.py --scale 1                          # bench profile: 20,000 contacts
    python bench/shape_soak.py --scale 1 --destination postgres   # INTERCOM_TEST_POSTGRES or the local server

Then (unless `--no-rerun`) a second sync without drift, after the invalid contacts, companies and
conversations changed: those land and their rejects clear (but for records served without id,
which nothing can tell apart); tickets and activity logs are read again only inside the lookback.
Exit 0 only when, after each sync, no valid record is missing, nothing is duplicated or
unexpected, and the rejects are exactly what they must be.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.run_bench import drop_pg_schema  # noqa: E402
from intercom_elt.sources.intercom.settings import DEFAULT_LOOKBACK_SECONDS  # noqa: E402
from intercom_emulator.dump import PARTS_LIMIT  # noqa: E402
from intercom_emulator.shape_drift import ORIGINAL_ID_FIELD, Invalid  # noqa: E402
from intercom_emulator.testing import EmulatorServer  # noqa: E402

log = logging.getLogger("shape_soak")

DRIFT = {"shape_drift_rate": 0.3, "missing_id_rate": 0.01, "missing_cursor_rate": 0.01}
DRIFTED = ("contacts", "companies", "conversations", "tickets", "activity_logs")
LISTED = ("admins", "tags", "teams", "segments")
POSTGRES_DSN = os.environ.get("INTERCOM_TEST_POSTGRES", "postgresql://postgres:postgres@127.0.0.1:5432/test")
Rows = Counter[tuple[str, ...]]


def _listed(envelope: Any) -> list[dict[str, Any]]:
    if not isinstance(envelope, dict):
        return []
    return [e for key, items in envelope.items() if key != "url" and isinstance(items, list) for e in items]


def _children(ws: Any, stream: str, rec: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(child table, parent key column, element id) of one record, as the connector stores them."""
    rid = rec["id"]
    if stream == "contacts":
        tags = rec["tags"]["data"] if not rec["tags"].get("has_more") else ws.contact_tags(rid)
        companies = rec["companies"]["data"] if not rec["companies"].get("has_more") else ws.contact_companies(rid)
        yield from (("contacts__tags", "contact_id", str(t["id"])) for t in tags)
        yield from (("contacts__companies", "contact_id", str(c["id"])) for c in companies)
        yield from (("contacts__notes", "contact_id", str(n["id"])) for n in _listed(rec.get("notes")))
    elif stream == "companies":
        yield from (("companies__tags", "company_id", str(t["id"])) for t in _listed(rec.get("tags")))
        yield from (("companies__segments", "company_id", str(s["id"])) for s in ws.company_segments(rid))
    elif stream == "conversations":
        for table, field in (("conversations__tags", "tags"), ("conversations__contacts", "contacts"),
                             ("conversations__teammates", "teammates")):
            yield from ((table, "conversation_id", str(x["id"])) for x in _listed(rec.get(field)))
        # Intercom returns the newest 500 parts of a conversation
        parts = ws.conversation_parts(rid)[-PARTS_LIMIT:]
        yield from (("conversation_parts", "conversation_id", str(p["id"])) for p in parts)
    elif stream == "tickets":
        yield from (("tickets__contacts", "ticket_id", str(c["id"])) for c in _listed(rec.get("contacts")))
        yield from (("ticket_parts", "ticket_id", str(p["id"])) for p in ws.ticket_parts(rid))


def expected(ws: Any, invalid: dict[str, set[str]]) -> tuple[dict[str, Rows], dict[str, str]]:
    """{table: rows} the warehouse must hold, and {child table: its parent key column}."""
    want: dict[str, Rows] = {}
    keys: dict[str, str] = {}
    for stream in DRIFTED:
        cursor = "created_at" if stream == "activity_logs" else "updated_at"
        rows: Rows = Counter()
        for rec in ws.ground_truth(stream):
            rid = str(rec["id"])
            if rid in invalid.get(stream, set()):
                continue
            rows[(rid, str(int(rec[cursor])))] += 1
            for table, key, child in _children(ws, stream, rec):
                keys[table] = key
                want.setdefault(table, Counter())[(rid, child)] += 1
        want[stream] = rows
    for stream in LISTED:
        want[stream] = Counter((str(r["id"]),) for r in ws.ground_truth(stream))
    want["data_attributes"] = Counter((str(a["model"]), str(a["full_name"])) for a in ws.ground_truth("data_attributes"))
    return want, keys


class Reader:
    """Read-only SQL on the dataset in DuckDB (a file) or Postgres (a schema), drivers only."""

    def __init__(self, kind: str, dataset: str, duckdb_path: Path | None = None) -> None:
        self.kind, self.dataset, self.duckdb_path = kind, dataset, duckdb_path

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.kind == "duckdb":
            import duckdb

            with duckdb.connect(str(self.duckdb_path), read_only=True) as con:
                con.execute(f"SET search_path = '{self.dataset}'")
                return con.execute(sql).fetchall()
        import psycopg2

        conn = psycopg2.connect(POSTGRES_DSN, connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute(f'SET search_path TO "{self.dataset}"')
                cur.execute(sql)
                return list(cur.fetchall())
        finally:
            conn.close()

    def tables(self) -> set[str]:
        sql = f"select table_name from information_schema.tables where table_schema = '{self.dataset}'"
        return {str(r[0]) for r in self.query(sql)}


def landed(db: Reader, keys: dict[str, str]) -> dict[str, Rows]:
    tables = db.tables()
    epoch = "cast(extract(epoch from {}) as bigint)"
    sql = {s: f"select id, {epoch.format('created_at' if s == 'activity_logs' else 'updated_at')} from {s}" for s in DRIFTED}
    sql.update({t: f"select {k}, id from {t}" for t, k in keys.items()})
    sql.update({s: f"select id from {s}" for s in LISTED})
    sql["data_attributes"] = "select model, full_name from data_attributes"
    return {t: Counter(tuple(str(v) for v in r) for r in (db.query(q) if t in tables else [])) for t, q in sql.items()}


def compare(ws: Any, db: Reader, invalid: dict[str, set[str]]) -> dict[str, dict[str, int]]:
    """Per table: rows expected, landed, valid missing, unexpected, duplicated."""
    want, keys = expected(ws, invalid)
    got = landed(db, keys)
    truncated = {str(c["id"]) for c in ws.ground_truth("conversations") if len(ws.conversation_parts(c["id"])) > PARTS_LIMIT}
    out = {}
    for table, rows in sorted(want.items()):
        have = got[table]
        extra = have - rows
        if table == "conversation_parts":  # older parts of a truncated conversation are real parts
            extra = Counter({r: n for r, n in extra.items() if r[0] not in truncated})
        out[table] = {
            "expected": sum(rows.values()), "landed": sum(have.values()), "missing": sum((rows - have).values()),
            "unexpected": sum(extra.values()), "duplicated": sum(n - 1 for n in have.values() if n > 1),
        }
    return out


def rejects(db: Reader) -> Counter[tuple[str, str, str | None]]:
    """(stream, original id, record_id) per row of `_intercom_rejects`."""
    if "_intercom_rejects" not in db.tables():
        return Counter()
    out: Counter[tuple[str, str, str | None]] = Counter()
    for stream, record_id, document in db.query("select stream, record_id, record from _intercom_rejects"):
        record = json.loads(document) if isinstance(document, str) else document
        out[(str(stream), str(record.get(ORIGINAL_ID_FIELD)), record_id)] += 1
    return out


def _rejects_of(invalid: Iterable[Invalid]) -> Counter[tuple[str, str, str | None]]:
    """The rejects rows `invalid` must have made: a record without id has no `record_id`."""
    return Counter((i.stream, i.original_id, None if i.kind == "missing_id" else i.original_id) for i in invalid)


def _phase(name: str, ws: Any, db: Reader, run: tuple[int, list[str], float], missing: dict[str, set[str]],
           want_rejects: Counter[tuple[str, str, str | None]]) -> dict[str, Any]:
    """The numbers of one sync: rows per table against ground truth, rejects against what they must be."""
    rc, lines, seconds = run
    tables = compare(ws, db, missing)
    found = rejects(db)
    print(f"\n{name}: exit {rc} in {seconds:.0f}s; {lines[0] if lines else 'no warning'}")
    print(f"{'table':32} {'expected':>9} {'landed':>9} {'missing':>8} {'unexpected':>10} {'duplicated':>10}")
    for table, t in tables.items():
        print(f"{table:32} {t['expected']:>9,} {t['landed']:>9,} {t['missing']:>8,} {t['unexpected']:>10,} {t['duplicated']:>10,}")
    numbers = {
        "exit": rc, "cli_lines": lines, "sync_seconds": round(seconds, 1), "tables": tables,
        "rows_compared": sum(t["landed"] for t in tables.values()),
        "valid_missing": sum(t["missing"] for t in tables.values()),
        "unexpected": sum(t["unexpected"] for t in tables.values()),
        "duplicated": sum(t["duplicated"] for t in tables.values()),
        "rejects_expected": sum(want_rejects.values()),
        "rejects_rows": sum(found.values()),
        "expected_in_rejects_once": sum(1 for k in want_rejects if found.get(k) == 1),
        "rejects_not_expected": sum((found - want_rejects).values()),
    }
    print(json.dumps({k: v for k, v in numbers.items() if k != "tables"}, indent=2))
    numbers["ok"] = (rc == 0 and not numbers["valid_missing"] and not numbers["unexpected"]
                     and not numbers["duplicated"] and found == want_rejects)
    return numbers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="bench profile scale (1 = 20,000 contacts)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault-seed", type=int, default=7)
    parser.add_argument("--destination", choices=("duckdb", "postgres"), default="duckdb")
    parser.add_argument("--no-rerun", dest="rerun", action="store_false",
                        help="only the drifted sync (default: then a sync without drift that re-reads the rejects)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the Postgres schema afterwards")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="shape_soak_"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, RUNTIME__DLTHUB_TELEMETRY="false", PYTHONPATH=str(REPO))
    if args.destination == "duckdb":
        dataset = "intercom_data"
        target = ["--duckdb-path", str(work / "soak.duckdb")]
        db = Reader("duckdb", dataset, work / "soak.duckdb")
    else:
        dataset = f"shape_soak_{uuid.uuid4().hex[:8]}"
        target = ["--destination", "postgres", "--dataset", dataset]
        env["DESTINATION__POSTGRES__CREDENTIALS"] = POSTGRES_DSN
        db = Reader("postgres", dataset)
    phases: dict[str, Any] = {}
    with EmulatorServer(profile="bench", seed=args.seed, scale=args.scale, fault_seed=args.fault_seed,
                        rate_limit_per_minute=60_000_000, workspace_rate_limit_per_minute=0) as emu:
        ws = emu.workspace
        env["INTERCOM_ACCESS_TOKEN"] = emu.token

        def sync(n: int) -> tuple[int, list[str], float]:
            started = time.monotonic()
            proc = subprocess.run(
                [sys.executable, "-m", "intercom_elt.pipelines.cli", "run", "--base-url", emu.base_url, *target,
                 "--pipelines-dir", str(work / "pipelines"), "--no-progress", "--no-views"],
                cwd=work, env=env, capture_output=True, text=True,
            )
            (work / f"run{n}.stderr.log").write_text(proc.stderr)
            log.info("run %d exit %d\n%s", n, proc.returncode, proc.stdout)
            lines = [line for line in proc.stderr.splitlines() if line.startswith(("warning:", "error:"))]
            return proc.returncode, lines, time.monotonic() - started

        try:
            emu.configure(faults=DRIFT)
            first = sync(1)
            served = emu.state.faults.served_invalid
            invalid = set(served.invalid)
            missing = {s: served.ids(s) for s in DRIFTED}
            phases["drifted"] = _phase("1. with drift", ws, db, first, missing, _rejects_of(invalid))
            phases["drifted"]["valid_drifts_served"] = {f"{s}/{d}": n for (s, d), n in sorted(served.valid.items())}
            phases["drifted"]["invalid_injected"] = dict(Counter(f"{i.stream}/{i.kind}" for i in invalid))
            if args.rerun:
                emu.configure(faults=dict.fromkeys(DRIFT, 0.0))
                still = _touch_or_not(ws, db, missing)
                second = sync(2)
                # a record served without id cannot be told from any other: its reject stays
                stays = {i for i in invalid if i.original_id in still.get(i.stream, set()) or i.kind == "missing_id"}
                phases["rerun"] = _phase("2. without drift, invalid records changed since", ws, db, second, still,
                                         _rejects_of(stays))
        finally:
            if args.destination == "postgres" and not args.keep:
                drop_pg_schema(POSTGRES_DSN, dataset)
    numbers = {"scale": args.scale, "destination": args.destination, "drift": DRIFT, **phases}
    (work / "shape_soak.json").write_text(json.dumps(numbers, indent=2))
    ok = all(p["ok"] for p in phases.values())
    log.info("shape soak %s (%s)", "OK" if ok else "FAILED", work)
    return 0 if ok else 1


def _touch_or_not(ws: Any, db: Reader, missing: dict[str, set[str]]) -> dict[str, set[str]]:
    """Change the invalid records that can change (the next run reads them); return those it will not
    read: tickets and activity logs (never changed here) older than the lookback of the saved cursor."""
    epoch = "cast(extract(epoch from {}) as bigint)"
    ws.clock.advance(3600)
    for contact in missing["contacts"]:
        ws.update_contact(contact, name="Readable Again")
    for company in missing["companies"]:
        ws.update_company(company, name="Readable Again Co")
    for conversation in missing["conversations"]:
        ws.add_conversation_part(conversation, author_type="admin", body="readable again")
    still: dict[str, set[str]] = {}
    for stream, cursor in (("tickets", "updated_at"), ("activity_logs", "created_at")):
        floor = int(db.query(f"select max({epoch.format(cursor)}) from {stream}")[0][0]) - DEFAULT_LOOKBACK_SECONDS
        still[stream] = {str(r["id"]) for r in ws.ground_truth(stream)
                         if str(r["id"]) in missing[stream] and int(r[cursor]) < floor}
    return still


if __name__ == "__main__":
    sys.exit(main())

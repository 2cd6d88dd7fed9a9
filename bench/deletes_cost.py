"""Requests needed to mark deletes: webhooks + the 2.16 feed against `run --reconcile-deletes`.

Starts the emulator (a subprocess, `bench` profile) and the webhook receiver (a subprocess),
syncs contacts, companies and conversations once, deletes D contacts and K conversations in the
emulator, then prints the API requests of: one `webhooks drain`, one plain `run` on 2.16 (the
deleted-conversations feed), and one `run --reconcile-deletes` beyond a plain run. Also checks
that each path marked exactly the deleted records.

    python bench/deletes_cost.py                  # bench profile, D=20, K=10
    python bench/deletes_cost.py --scale 0.1      # a quick look
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import httpx
import orjson

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from intercom_emulator.testing import EmulatorProcess, free_port  # noqa: E402

SECRET = "bench-client-secret"
STREAMS = "contacts,companies,conversations"
# what a reconciliation adds to a run (deletes.py); companies reuse the run's scroll
RECONCILE_ENDPOINTS = ("GET /contacts", "GET /conversations", "GET /contacts/{id}")


def _cli(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "intercom_elt.pipelines.cli", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"intercom-sync {' '.join(args[:2])} failed: {done.stderr[-2000:]}")


def _requests(emu: EmulatorProcess) -> dict[str, int]:
    log = emu.request_log
    emu.reset_log()
    return log


def _deleted(path: Path, table: str) -> dict[str, str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return dict(con.sql(f"select id, _deleted_reason from intercom_data.{table} where _deleted_at is not null").fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--contacts", type=int, default=20, help="contacts deleted (D)")
    parser.add_argument("--conversations", type=int, default=10, help="conversations deleted (K)")
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="deletes-cost-"))
    target = ["--duckdb-path", str(tmp / "w.duckdb"), "--pipelines-dir", str(tmp / "dlt"), "--no-progress"]
    other = ["--duckdb-path", str(tmp / "r.duckdb"), "--pipelines-dir", str(tmp / "dlt-r"), "--no-progress"]  # a second warehouse, no receiver: the reconcile path alone
    with EmulatorProcess(profile="bench", seed=1, args=["--scale", str(opts.scale)]) as emu:
        env = dict(os.environ, INTERCOM_ACCESS_TOKEN=emu.token, INTERCOM_CLIENT_SECRET=SECRET)
        port = free_port()
        receiver = subprocess.Popen([sys.executable, "-m", "intercom_elt.pipelines.cli", "webhooks", "serve", "--port", str(port),
                                     *target], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                if receiver.poll() is not None:
                    raise SystemExit(f"the receiver exited with {receiver.returncode}")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            emu.subscribe_webhooks(f"http://127.0.0.1:{port}/intercom/webhooks", SECRET)
            run = ["run", "--base-url", emu.base_url, "--streams", STREAMS, "--no-views", *target]
            t0 = time.monotonic()
            _cli([*run, "--intercom-version", "2.16"], env)
            full = _requests(emu)
            print(f"full sync: {sum(full.values()):,} requests in {time.monotonic() - t0:.0f}s")
            rec_run = ["run", "--base-url", emu.base_url, "--streams", STREAMS, "--no-views", *other]
            _cli(rec_run, env)
            _requests(emu)
            contacts = [orjson.loads(line)["id"] for line in
                        httpx.get(f"{emu.base_url}/_emulator/ground_truth/contacts", timeout=120).content.splitlines()]
            convs = [orjson.loads(line)["id"] for line in
                     httpx.get(f"{emu.base_url}/_emulator/ground_truth/conversations", timeout=120).content.splitlines()]
            gone_contacts, gone_convs = contacts[: opts.contacts], convs[: opts.conversations]
            for op, ids in (("delete_contact", gone_contacts), ("delete_conversation", gone_convs)):
                for rid in ids:
                    httpx.post(f"{emu.base_url}/_emulator/mutate", json={"op": op, "args": {"id": rid}},
                               timeout=30).raise_for_status()
            emu.webhooks_settled(120)
            _requests(emu)
            _cli(["webhooks", "drain", *target], env)
            drain = _requests(emu)
            assert set(_deleted(tmp / "w.duckdb", "contacts")) == set(gone_contacts), "drain: contacts not exact"
            _cli([*run, "--intercom-version", "2.16"], env)
            feed_run = _requests(emu)
            assert set(_deleted(tmp / "w.duckdb", "conversations")) == set(gone_convs), "feed: conversations not exact"
            _cli(run, env)
            plain = _requests(emu)
            _cli([*rec_run, "--reconcile-deletes"], env)
            reconciled = _requests(emu)
            assert set(_deleted(tmp / "r.duckdb", "contacts")) == set(gone_contacts), "reconcile: contacts not exact"
        finally:
            receiver.terminate()
            receiver.wait(10)
    listing = {k: v for k, v in reconciled.items() if k in RECONCILE_ENDPOINTS}
    print(f"workspace: bench profile x{opts.scale:g}; deleted: {opts.contacts} contacts, {opts.conversations} conversations")
    print(f"webhooks drain:            {sum(drain.values())} requests (contacts and conversations marked)")
    print(f"run on 2.16 (feed):        {feed_run.get('GET /conversations/deleted', 0)} GET /conversations/deleted "
          f"(whole run {sum(feed_run.values())})")
    print(f"plain run on 2.15:         {sum(plain.values())} requests")
    print(f"run --reconcile-deletes:   {sum(listing.values())} requests for the reconciliation ("
          + ", ".join(f"{k} {v}" for k, v in sorted(listing.items())) + f"); whole run {sum(reconciled.values())}")


if __name__ == "__main__":
    main()

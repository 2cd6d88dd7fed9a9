"""Benchmark: is the emulator fast enough never to be the bottleneck of a sync?

Starts `intercom-emulator serve` as its own process and drives it from this process with an
aiohttp client (httpx's async client is too slow on this machine to saturate it). Prints, as the
median of several runs:

* requests/s of the `bench` profile's mix with no latency: 150-record search pages of contacts
  and conversations (walking the cursor) and conversation retrievals, at a few concurrencies;
* how long 200 concurrent connections take while every response waits `--latency-ms` (async
  sleeps: with a correct server the batch takes about one latency, not 200);
* the server's resident memory (VmRSS / VmHWM) after start and after the runs.

    python bench/emulator_throughput.py                 # bench profile, 3 runs
    python bench/emulator_throughput.py --scale 50      # 1,000,000 contacts
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import orjson

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from intercom_emulator.testing import EmulatorProcess  # noqa: E402

UNLIMITED = "60000000"


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process in MB, from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


async def conversation_ids(session: aiohttp.ClientSession, base: str, limit: int) -> list[str]:
    """Ids to retrieve, read through the API like a client would."""
    ids: list[str] = []
    body: dict = {"query": {"field": "updated_at", "operator": ">", "value": "0"}, "pagination": {"per_page": 150}}
    while len(ids) < limit:
        async with session.post(f"{base}/conversations/search", data=orjson.dumps(body)) as resp:
            page = orjson.loads(await resp.read())
        ids += [c["id"] for c in page["conversations"]]  # search answers {"conversations": [...]}
        nxt = (page.get("pages") or {}).get("next")
        if not nxt:
            break
        body["pagination"]["starting_after"] = nxt["starting_after"]
    return ids[:limit]


async def mix_worker(session: aiohttp.ClientSession, base: str, ids: list[str], deadline: float,
                     rng: random.Random, counts: dict[str, int]) -> None:
    """One client loop: 1 search page walk step for every 4 conversation retrievals."""
    cursors: dict[str, str | None] = {"contacts": None, "conversations": None}
    while time.monotonic() < deadline:
        if rng.random() < 0.2:
            model = rng.choice(("contacts", "conversations"))
            body: dict = {"query": {"field": "updated_at", "operator": ">", "value": "0"},
                          "pagination": {"per_page": 150}}
            if cursors[model]:
                body["pagination"]["starting_after"] = cursors[model]
            async with session.post(f"{base}/{model}/search", data=orjson.dumps(body)) as resp:
                page = orjson.loads(await resp.read())
                counts[str(resp.status)] = counts.get(str(resp.status), 0) + 1
            nxt = (page.get("pages") or {}).get("next")
            cursors[model] = nxt["starting_after"] if nxt else None
        else:
            async with session.get(f"{base}/conversations/{rng.choice(ids)}") as resp:
                await resp.read()
                counts[str(resp.status)] = counts.get(str(resp.status), 0) + 1


def session_for(emu: EmulatorProcess, connections: int) -> aiohttp.ClientSession:
    headers = {**emu.headers, "Content-Type": "application/json"}
    return aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(limit=connections))


async def measure_mix(emu: EmulatorProcess, concurrency: int, seconds: float, ids: list[str]) -> tuple[float, dict]:
    counts: dict[str, int] = {}
    async with session_for(emu, concurrency) as session:
        deadline = time.monotonic() + seconds
        start = time.monotonic()
        await asyncio.gather(*(mix_worker(session, emu.base_url, ids, deadline, random.Random(i), counts)
                               for i in range(concurrency)))
        elapsed = time.monotonic() - start
    return sum(counts.values()) / elapsed, counts


async def measure_concurrent(emu: EmulatorProcess, connections: int, ids: list[str]) -> tuple[float, int]:
    """Wall time of `connections` simultaneous retrievals, and how many answered 200."""
    async with session_for(emu, connections) as session:
        async def one(i: int) -> int:
            async with session.get(f"{emu.base_url}/conversations/{ids[i % len(ids)]}") as resp:
                await resp.read()
                return resp.status

        start = time.monotonic()
        statuses = await asyncio.gather(*(one(i) for i in range(connections)))
        return time.monotonic() - start, sum(1 for s in statuses if s == 200)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="bench")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of one throughput run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", default="16,64", help="client concurrencies to try")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="for the 200-connection test")
    parser.add_argument("--connections", type=int, default=200)
    args = parser.parse_args(argv)

    base_args = ["--scale", str(args.scale), "--rate-limit-per-minute", UNLIMITED,
                 "--workspace-rate-limit-per-minute", UNLIMITED, "--log-level", "WARNING"]
    fast = EmulatorProcess(profile=args.profile, seed=1, args=base_args)
    started = time.monotonic()
    fast.start(timeout=900)
    try:
        assert fast.proc is not None
        ready = time.monotonic() - started
        rss_start = rss_mb(fast.proc.pid)
        ids = asyncio.run(_ids(fast))
        print(f"emulator {args.profile} x{args.scale}: ready in {ready:.1f}s, RSS {rss_start[0]:.0f} MB")
        for conc in (int(c) for c in args.concurrency.split(",")):
            rates = []
            for _ in range(args.runs):
                rate, counts = asyncio.run(measure_mix(fast, conc, args.seconds, ids))
                rates.append(rate)
            print(f"  mix, concurrency {conc:>3}: median {statistics.median(rates):7.0f} req/s "
                  f"(runs {', '.join(f'{r:.0f}' for r in rates)}; statuses {counts})")
        rss_end = rss_mb(fast.proc.pid)
        print(f"  server RSS after the runs {rss_end[0]:.0f} MB, peak {rss_end[1]:.0f} MB")
    finally:
        fast.stop()

    slow = EmulatorProcess(profile="tiny", seed=1,
                           args=[*base_args[2:], "--latency-ms", str(args.latency_ms)])
    slow.start(timeout=120)
    try:
        ids = asyncio.run(_ids(slow))
        walls = []
        for _ in range(args.runs):
            wall, ok = asyncio.run(measure_concurrent(slow, args.connections, ids))
            walls.append(wall)
        print(f"  {args.connections} concurrent connections at {args.latency_ms:.0f} ms latency: median "
              f"{statistics.median(walls):.2f}s for the batch ({ok} answered 200; a serial server "
              f"would need {args.connections * args.latency_ms / 1000:.0f}s)")
    finally:
        slow.stop()
    return 0


async def _ids(emu: EmulatorProcess) -> list[str]:
    async with session_for(emu, 4) as session:
        return await conversation_ids(session, emu.base_url, 3000)


if __name__ == "__main__":
    raise SystemExit(main())

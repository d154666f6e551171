"""The Redis Streams source against taskiq-redis and a bare redis-py loop, side by side.

    python benchmarks/redis_source.py              # full run (make bench)
    python benchmarks/redis_source.py --quick      # make bench-ci: short rounds
    python benchmarks/redis_source.py --check      # exit 1 when a target is missed
    python benchmarks/redis_source.py --gates      # exit 1 when the CI gate fails
    python benchmarks/redis_source.py --json PATH  # the figures as JSON too

A ``redis-server`` of its own (``tests/sources/redis_server.py``) and this process run
pinned to CPU 1. Each round, in alternating order, a stream is filled with ``--entries``
no-op entries in a contender's format (taskiq: a ``TASKIQ_SHARE``-th of them, its rate
is steady and its run the longest), then one process pinned to CPU 0
(``redis_contenders.py``) drains it:

- ours: an ``Application`` with a no-op handler and a ``RedisStreamSource`` (fields
  ``kind``, ``payload``), its ``/health`` polled from here at ``HEALTH_RATE`` requests/s,
  on schedule, while it consumes;
- taskiq: taskiq-redis's ``RedisStreamBroker`` worker with a no-op task, the entries sent
  by its own kicker (``task.kiq()``);
- bare: a redis-py asyncio loop of XREADGROUP COUNT 200 + XACK, the limit.

jobs/s is the jobs from the first handled to the last over that time; every entry must
be acknowledged afterwards (the group's pending count is printed). Figures: the median of
the rounds and their range; ours / bare and ours / taskiq. ``--check``: ours at least
``MIN_JOBS_PER_S`` and ``/health`` p99 at most ``MAX_HEALTH_P99``. The CI gate
(``--gates``, ``benchmarks/gate.py``): per round, ours / bare, each time without the
consumer's waits for a CPU, median of the rounds at least ``MIN_BARE_RATIO``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aredis

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))  # run as a script from anywhere
from tests.sources.redis_server import RedisServer  # noqa: E402

from benchmarks.fleet import Samples  # noqa: E402
from benchmarks.gate import Gate  # noqa: E402
from benchmarks.load_client import pin_this_process  # noqa: E402
from benchmarks.redis_contenders import taskiq_broker  # noqa: E402

CONTENDERS = ("ours", "bare", "taskiq")
GROUP = "bench"
HEALTH_RATE = 200.0
MIN_JOBS_PER_S = 10_000.0
MAX_HEALTH_P99 = 0.005
MIN_BARE_RATIO = 0.1  # 0.226-0.312 in 10 runs with both cores kept busy (docs/performance.md)
TASKIQ_SHARE = 4
WORKERS = 100  # taskiq worker's default tasks at once; ours gets as many workers


async def fill(client: aredis.Redis, url: str, stream: str, contender: str, n: int) -> None:
    """``n`` no-op entries on a fresh ``stream``, in ``contender``'s format."""
    await client.delete(stream)
    if contender == "taskiq":
        broker = taskiq_broker(url, stream, GROUP)
        noop = broker.register_task(lambda: None, task_name="noop")
        await broker.startup()  # creates the group, from the stream's start
        for start in range(0, n, 500):
            await asyncio.gather(*(noop.kiq() for _ in range(min(500, n - start))))
        await broker.shutdown()
        return
    await client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    for start in range(0, n, 1000):
        pipe = client.pipeline(transaction=False)
        for _ in range(min(1000, n - start)):
            pipe.xadd(stream, {"kind": "noop", "payload": "null"})
        await pipe.execute()


async def poll_health(url: str, stop: asyncio.Event, samples: Samples) -> None:
    """GET ``/health`` at ``HEALTH_RATE``/s, each request on schedule, until ``stop``."""
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def one() -> None:
            started = time.perf_counter()
            try:
                async with session.get(url + "/health") as resp:
                    await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            samples.add(time.perf_counter() - started, status)

        due = loop.time()
        while not stop.is_set():
            await asyncio.sleep(max(0.0, due - loop.time()))
            task = loop.create_task(one())
            pending.add(task)
            task.add_done_callback(pending.discard)
            due += 1.0 / HEALTH_RATE
        await asyncio.gather(*pending)


async def consume(
    url: str, stream: str, contender: str, n: int, workers: int, samples: Samples
) -> dict[str, Any]:
    """One contender drains ``stream`` in its own process: its figures."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "redis_contenders.py"), contender, url, stream, GROUP,
        str(n), str(workers),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None
    assert proc.stdout is not None
    stop, polling = asyncio.Event(), None
    try:
        async with asyncio.timeout(120):
            hello = json.loads(await proc.stdout.readline())
            if hello["url"]:
                polling = asyncio.create_task(poll_health(hello["url"], stop, samples))
            line = await proc.stdout.readline()
            stop.set()
            if polling is not None:
                await polling
            proc.stdin.write(b"stop\n")
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if not line:
        raise RuntimeError(f"{contender}: the consumer exited with {proc.returncode}")
    figures: dict[str, Any] = json.loads(line)
    figures["jobs_per_s"] = figures["jobs"] / figures["wall"]
    figures["uncontended_jobs_per_s"] = figures["jobs"] / figures["uncontended"]
    return figures


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="redis-bench-"))
    server = RedisServer(folder)
    server.start()
    assert server.process is not None
    pin_this_process(1)
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(server.process.pid, {1})
    client = aredis.Redis.from_url(server.url)
    rounds: list[dict[str, Any]] = []
    health = Samples()
    try:
        for i in range(args.rounds):
            order = args.contenders if i % 2 == 0 else args.contenders[::-1]
            result: dict[str, Any] = {}
            for contender in order:
                stream = f"bench-{contender}-{i}"
                n = args.entries // TASKIQ_SHARE if contender == "taskiq" else args.entries
                await fill(client, server.url, stream, contender, n)
                result[contender] = await consume(
                    server.url, stream, contender, n, args.workers, health
                )
                pending: Any = await client.xpending(stream, GROUP)
                result[contender]["pending"] = int(pending["pending"])
                await client.delete(stream)
            rounds.append(result)
            print(f"round {i + 1}: " + ", ".join(f"{c} {result[c]['jobs_per_s']:,.0f}/s"
                                                 for c in args.contenders), flush=True)  # fmt: skip
    finally:
        await client.aclose()
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return {"entries": args.entries, "rounds": rounds, "health": health.figures()}


def report(figures: dict[str, Any]) -> dict[str, Any]:
    rounds = figures["rounds"]
    summary: dict[str, Any] = {}
    contenders = [c for c in CONTENDERS if c in rounds[0]]
    for contender in contenders:
        rates = [r[contender]["jobs_per_s"] for r in rounds]
        summary[contender] = {"median": statistics.median(rates), "min": min(rates),
                              "max": max(rates),
                              "pending": max(r[contender]["pending"] for r in rounds)}  # fmt: skip
        print(f"{contender:>7}: {summary[contender]['median']:>8,.0f} jobs/s (median of "
              f"{len(rates)} rounds, range {min(rates):,.0f} to {max(rates):,.0f}); "
              f"left pending: {summary[contender]['pending']}")  # fmt: skip
    for other in contenders[1:]:
        ratio = summary["ours"]["median"] / summary[other]["median"]
        summary[f"ours_over_{other}"] = ratio
        print(f"ours / {other}: {ratio:.2f}")
    health = figures["health"]
    print(f"/health while ours consumed: p50 {health['p50'] * 1e3:.2f} ms, p99 "
          f"{health['p99'] * 1e3:.2f} ms, max {health['max'] * 1e3:.2f} ms "
          f"({health['count']} requests, statuses {health['statuses']})")  # fmt: skip
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short rounds (make bench-ci)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--gates", action="store_true", help="exit 1 when the CI gate fails")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--entries", type=int, help="entries per contender and round")
    parser.add_argument("--workers", type=int, default=WORKERS,
                        help="ours: workers; taskiq: tasks at once")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    args.contenders = CONTENDERS
    if importlib.util.find_spec("taskiq_redis") is None:
        if not args.quick:
            parser.error("taskiq-redis is missing: pip install -e '.[bench]' (make bench does)")
        print("taskiq-redis is not installed (the bench extra): left out")
        args.contenders = CONTENDERS[:2]
    args.entries = args.entries or (10_000 if args.quick else 40_000)
    figures = asyncio.run(measure(args))
    figures["summary"] = summary = report(figures)
    status = 0
    if any(summary[c]["pending"] for c in ("ours", "bare")):
        print("FAILED: entries left unacknowledged")
        status = 1
    gate = Gate("redis source: ours / bare loop, jobs/s",
                tuple(r["ours"]["uncontended_jobs_per_s"] / r["bare"]["uncontended_jobs_per_s"]
                      for r in figures["rounds"]), MIN_BARE_RATIO, at_least=True)  # fmt: skip
    print(gate.line())
    figures["gate"] = {"name": gate.name, "rounds": gate.rounds, "figure": gate.figure,
                       "limit": gate.limit, "passed": gate.passed}  # fmt: skip
    if args.gates and not gate.passed:
        status = 1
    if args.check:
        p99, rate = figures["health"]["p99"], summary["ours"]["median"]
        missed = [f"ours {rate:,.0f} jobs/s, under {MIN_JOBS_PER_S:,.0f}"] * (rate < MIN_JOBS_PER_S)
        if p99 > MAX_HEALTH_P99:
            missed.append(f"/health p99 {p99 * 1e3:.2f} ms, over {MAX_HEALTH_P99 * 1e3:g} ms")
        for text in missed:
            print(f"TARGET MISSED: {text}")
            status = 1
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())

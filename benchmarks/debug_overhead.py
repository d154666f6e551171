"""What the debugging tools cost: the watchdog on job throughput, a profile on probes.

    python benchmarks/debug_overhead.py [--rounds N] [--check]

1. Job throughput (no-op jobs, 4 workers, 64 submitters, 2 s per run) with the blocked-loop
   watchdog and the background health watcher on (the defaults) and off, interleaved
   ``rounds`` times; the median ratio is printed.
2. ``/health`` latency over loopback (one keep-alive connection, 400 sequential requests)
   with no profile running, then while ``/debug/profile`` samples the loop.

Everything runs on 127.0.0.1 and ends in about 30 s. ``--check`` (``make bench``,
``make bench-ci``) exits 1 when the watchers cost more than 10 % of the throughput
(median ratio below 0.90) or when ``/health``'s p99 while profiling reaches 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time

import aiohttp

from orchestrator import Application, Job
from orchestrator.http.debug import PROFILE
from orchestrator.log import configure_logging

TOKEN = "bench-token-0f3c"
MIN_RATIO = 0.90
"""Throughput with the watchers on over off: they may cost at most 10 %."""
MAX_P99 = 0.010
"""Seconds: /health's 99th percentile while a profile runs."""


async def throughput(watch: bool, seconds: float = 2.0) -> float:
    """No-op jobs per second with the watchers on (defaults) or off."""
    app = Application(workers=4, blocked_loop_threshold=1.0 if watch else None)

    @app.handler("noop")
    async def noop(job: Job) -> None:
        return None

    await app.start()
    if not watch:
        await app.monitors.health_watch.stop()
    done = 0
    deadline = time.perf_counter() + seconds

    async def submitter() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await app.submit("noop")
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(submitter() for _ in range(64)))
    elapsed = time.perf_counter() - started
    await app.stop()
    return done / elapsed


async def probe_latency(url: str, session: aiohttp.ClientSession, n: int = 400) -> list[float]:
    """Seconds each of ``n`` sequential GETs took."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        async with session.get(url) as resp:
            await resp.read()
        out.append(time.perf_counter() - t0)
    return out


def quantile(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def quantiles(samples: list[float]) -> str:
    p50, p99 = quantile(samples, 0.5) * 1000, quantile(samples, 0.99) * 1000
    return f"p50 {p50:.3f} ms  p99 {p99:.3f} ms  max {max(samples) * 1000:.3f} ms"


async def until_profiling(deadline: float = 5.0) -> None:
    """Return once the profile requested runs on the server (same process)."""
    stop = time.perf_counter() + deadline
    while not PROFILE.busy:
        if time.perf_counter() > stop:
            raise RuntimeError("the profile never started")
        await asyncio.sleep(0.001)


async def main(rounds: int) -> list[str]:
    """Run both measurements; return the targets missed."""
    missed = []
    ratios = []
    for n in range(rounds):  # alternate which runs first: no warm-up bias
        if n % 2:
            off = await throughput(False)
            on = await throughput(True)
        else:
            on = await throughput(True)
            off = await throughput(False)
        ratios.append(on / off)
        print(f"jobs/s  watchers on {on:,.0f}  off {off:,.0f}  ratio {on / off:.3f}")
    median = statistics.median(ratios)
    print(f"median ratio (on / off): {median:.3f} (target >= {MIN_RATIO:.2f})")
    if median < MIN_RATIO:
        missed.append(f"watchers cost {1 - median:.0%} of the job throughput")

    app = Application(workers=4, enable_http=True, http_host="127.0.0.1", http_port=0,
                      http_token=TOKEN, rate_limit=None)  # fmt: skip

    @app.handler("noop")
    async def noop(job: Job) -> None:
        return None

    await app.start()
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            health = f"{app.http_url}/health"
            await probe_latency(health, session, 50)  # warm up
            idle = await probe_latency(health, session)
            profile = asyncio.ensure_future(
                session.get(f"{app.http_url}/debug/profile?seconds=5&format=text")
            )
            await until_profiling()
            during = await probe_latency(health, session)
            resp = await profile
            await resp.read()
            print(f"/health no profile:      {quantiles(idle)}")
            print(f"/health while profiling: {quantiles(during)} (p99 target < 10 ms)")
            print(f"ratio p50 profiling / idle: "
                  f"{quantile(during, 0.5) / quantile(idle, 0.5):.2f}")  # fmt: skip
            if quantile(during, 0.99) >= MAX_P99:
                missed.append("/health p99 while profiling reached 10 ms")
    finally:
        await app.stop()
    return missed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    with open(os.devnull, "w") as devnull:
        configure_logging("json", "warning", devnull)
        missed = asyncio.run(main(args.rounds))
    for line in missed:
        print(f"MISSED: {line}")
    sys.exit(1 if missed and args.check else 0)

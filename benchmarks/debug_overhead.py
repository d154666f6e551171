"""What the debugging tools cost: the watchers on job throughput, a profile on probes.

    python benchmarks/debug_overhead.py [--rounds N] [--check]   # make bench
    python benchmarks/debug_overhead.py --quick --gates          # make bench-ci

1. Job throughput (no-op jobs, 4 workers, 64 submitters, ``--seconds`` per run) with the
   blocked-loop watchdog and the background health watcher on (the defaults) and off,
   in ``rounds`` pairs of runs (the order alternates). Printed per pair: jobs/s on and off
   and their ratio; and the watchers' cost as a share of a core: the loop thread's time
   (wall time less its waits for a CPU, ``benchmarks/gate.py``) with them on, less what
   the jobs done would have taken at the pair's watchers-off pace, over the wall time.
   The watchers wake on the clock (every 0.25 and 0.5 s), so on a machine that gives the
   process a quarter of a core they take four times their share of its throughput; their
   cost per wall second does not change.
2. ``/health`` latency over loopback (one keep-alive connection, sequential requests), in
   rounds: a batch with no profile running, then a batch while ``/debug/profile`` samples
   the loop (1 s profiles). Printed: p50, p99 and max of each kind, and per round the
   ratio of the two medians (each request timed without its waits for a CPU).

Everything runs on 127.0.0.1. CI gates (``--gates``): the watchers' cost, median of the
pairs, at most ``MAX_WATCHER_SHARE`` of a core; the profiled/idle ratio, median of the
rounds, at most ``MAX_PROFILE_RATIO``. ``--check`` (``make bench``) exits 1 when the
wall-clock jobs/s ratio (median) is below 0.90 or ``/health``'s p99 while profiling
reaches 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent.parent))  # run as a script from anywhere
from benchmarks.gate import Gate, UncontendedClock
from benchmarks.under_load_server import quantile
from orchestrator import Application, Job
from orchestrator.http.debug import PROFILE
from orchestrator.log import configure_logging

TOKEN = "bench-token-0f3c"
MIN_RATIO = 0.90
"""make bench: jobs/s with the watchers on over off (wall clock), at least."""
MAX_P99 = 0.010
"""make bench: seconds, /health's 99th percentile while a profile runs."""
MAX_WATCHER_SHARE = 0.10
"""CI: the most of a core the watchers may take (measured: about 0.02)."""
MAX_PROFILE_RATIO = 5.0
"""CI: the most a profile may multiply /health's median by (measured: 2.3-3.5; more where
the process gets less of a core, since the profiler samples on the clock)."""


@dataclass(frozen=True)
class Run:
    jobs: int
    wall: float
    loop: float
    """Seconds of the loop thread: wall time less its waits for a CPU."""


async def throughput(watch: bool, seconds: float) -> Run:
    """No-op jobs for ``seconds`` with the watchers on (defaults) or off."""
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

    clock = UncontendedClock()
    started = clock.now()
    await asyncio.gather(*(submitter() for _ in range(64)))
    run = Run(done, time.perf_counter() - started.wall, clock.since(started))
    clock.close()
    await app.stop()
    return run


async def probe_latency(
    url: str, session: aiohttp.ClientSession, n: int, clock: UncontendedClock
) -> tuple[list[float], list[float]]:
    """Seconds each of ``n`` sequential GETs took: wall, and without the waits for a CPU."""
    wall, uncontended = [], []
    for _ in range(n):
        started = clock.now()
        async with session.get(url) as resp:
            await resp.read()
        wall.append(time.perf_counter() - started.wall)
        uncontended.append(clock.since(started))
    return wall, uncontended


def quantiles(samples: list[float]) -> str:
    p50, p99 = quantile(samples, 0.5) * 1000, quantile(samples, 0.99) * 1000
    return f"p50 {p50:.3f} ms  p99 {p99:.3f} ms  max {max(samples) * 1000:.3f} ms"


async def until_profiling(deadline: float = 5.0) -> None:
    """Return once the profile requested runs on the server (same process)."""
    stop = time.perf_counter() + deadline
    while not PROFILE.busy:
        if time.perf_counter() > stop:
            raise RuntimeError("the profile never started")
        await asyncio.sleep(0.001)  # sleep-ok: polling a flag the server sets


async def watchers(rounds: int, seconds: float) -> tuple[Gate, float]:
    """Pairs of runs with the watchers on and off: the cost gate, the wall-clock ratio."""
    shares, ratios = [], []
    for n in range(rounds):  # alternate which runs first: no warm-up bias
        if n % 2:
            off = await throughput(False, seconds)
            on = await throughput(True, seconds)
        else:
            on = await throughput(True, seconds)
            off = await throughput(False, seconds)
        ratio = (on.jobs / on.wall) / (off.jobs / off.wall)
        share = (on.loop - on.jobs * off.loop / off.jobs) / on.wall
        ratios.append(ratio)
        shares.append(share)
        print(f"jobs/s  watchers on {on.jobs / on.wall:,.0f}  off {off.jobs / off.wall:,.0f}  "
              f"ratio {ratio:.3f}   watchers' cost {share:.3f} of a core")  # fmt: skip
    median = statistics.median(ratios)
    print(f"median ratio (on / off): {median:.3f} (make bench: target >= {MIN_RATIO:.2f})")
    gate = Gate("watchers' cost, share of a core", tuple(shares), MAX_WATCHER_SHARE,
                at_least=False, unit="of a core")  # fmt: skip
    return gate, median


async def profiling(rounds: int, batch: int) -> tuple[Gate, float]:
    """Rounds of /health idle then while profiling: the ratio gate, the p99 profiling."""
    app = Application(workers=4, enable_http=True, http_host="127.0.0.1", http_port=0,
                      http_token=TOKEN, rate_limit=None)  # fmt: skip

    @app.handler("noop")
    async def noop(job: Job) -> None:
        return None

    clock = UncontendedClock()
    idle: list[float] = []
    during: list[float] = []
    ratios = []
    await app.start()
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            health = f"{app.http_url}/health"
            await probe_latency(health, session, 50, clock)  # warm up
            for _ in range(rounds):
                wall_idle, base = await probe_latency(health, session, batch, clock)
                profile = asyncio.ensure_future(
                    session.get(f"{app.http_url}/debug/profile?seconds=1&format=text")
                )
                await until_profiling()
                wall_during, ours = await probe_latency(health, session, batch, clock)
                resp = await profile
                await resp.read()
                idle += wall_idle
                during += wall_during
                ratios.append(statistics.median(ours) / statistics.median(base))
    finally:
        clock.close()
        await app.stop()
    print(f"/health no profile:      {quantiles(idle)}")
    print(f"/health while profiling: {quantiles(during)} (make bench: p99 target < 10 ms)")
    gate = Gate("/health median profiling / idle", tuple(ratios), MAX_PROFILE_RATIO,
                at_least=False)  # fmt: skip
    return gate, quantile(during, 0.99)


async def main(args: argparse.Namespace) -> tuple[list[Gate], list[str]]:
    """Run both measurements; return the gates and the targets missed."""
    seconds, rounds = (1.0, 6) if args.quick else (args.seconds, args.rounds)
    watch_gate, ratio = await watchers(rounds, seconds)
    profile_gate, p99 = await profiling(5, 100 if args.quick else 400)
    missed = []
    if ratio < MIN_RATIO:
        missed.append(f"watchers cost {1 - ratio:.0%} of the job throughput")
    if p99 >= MAX_P99:
        missed.append("/health p99 while profiling reached 10 ms")
    return [watch_gate, profile_gate], missed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=4, help="pairs of throughput runs")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per run")
    parser.add_argument("--quick", action="store_true", help="6 pairs of 1 s, small batches")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--gates", action="store_true", help="exit 1 when a CI gate fails")
    args = parser.parse_args()
    with open(os.devnull, "w") as devnull:
        configure_logging("json", "warning", devnull)
        gates, missed = asyncio.run(main(args))
    for gate in gates:
        print(gate.line())
    for line in missed:
        print(f"MISSED: {line}")
    failed = args.gates and not all(g.passed for g in gates)
    sys.exit(1 if failed or (missed and args.check) else 0)

"""What the debugging tools cost: the watchers on job throughput, a profile on probes.

    python benchmarks/debug_overhead.py [--rounds N] [--check]   # make bench
    python benchmarks/debug_overhead.py --quick --gates          # make bench-ci

1. The watchers' cost: the blocked-loop watchdog and the background health watcher on
   (the defaults) and off, in pairs of 1 s runs (the order alternates), each under
   ``PACED_JOBS`` no-op jobs a second; the process's CPU time (every thread, from
   ``/proc``) with them on less off, over the wall time: the share of a core they take.
   The watchers wake on the clock (every 0.25 and 0.5 s), so this does not depend on how
   much CPU the machine gives the process; a difference of closed-loop throughputs does
   (a process given a quarter of a core loses four times the share), and it moves by
   ±20 % between runs of a second on a shared machine, many times the watchers' cost.
2. A full run also measures job throughput (no-op jobs, 4 workers, 64 submitters,
   ``--seconds`` per run) with the watchers on and off, ``rounds`` pairs: jobs/s and the
   median ratio.
3. ``/health`` latency over loopback (one keep-alive connection, sequential requests), in
   rounds: a batch with no profile running, then a batch while ``/debug/profile`` samples
   the loop (1 s profiles). Printed: p50, p99 and max of each kind, and per round the
   ratio of the two medians (each request timed without its waits for a CPU).

Everything runs on 127.0.0.1. CI gates (``--gates``): the watchers' cost, median of
``WATCH_PAIRS`` pairs, at most ``MAX_WATCHER_SHARE`` of a core; the profiled/idle ratio,
median of the rounds, at most ``MAX_PROFILE_RATIO``. ``--check`` (``make bench``) exits 1 when the
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
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).parent.parent))  # run as a script from anywhere
from benchmarks.gate import Gate, UncontendedClock, process_cpu_seconds
from benchmarks.under_load_server import quantile
from orchestrator import Application, Job
from orchestrator.http.debug import PROFILE
from orchestrator.log import configure_logging

TOKEN = "bench-token-0f3c"
MIN_RATIO = 0.90
"""make bench: jobs/s with the watchers on over off (wall clock), at least."""
MAX_P99 = 0.010
"""make bench: seconds, /health's 99th percentile while a profile runs."""
MAX_WATCHER_SHARE = 0.05
"""CI: the most of a core the watchers may take (measured: about 0.01)."""
WATCH_PAIRS = 6
PACED_JOBS = 500.0
"""No-op jobs a second while the watchers' cost is measured (about 3 % of a core)."""
MAX_PROFILE_RATIO = 5.0
"""CI: the most a profile may multiply /health's median by (measured: 2.3-3.5; more where
the process gets less of a core, since the profiler samples on the clock)."""


async def throughput(watch: bool, seconds: float) -> float:
    """No-op jobs per second for ``seconds`` with the watchers on (defaults) or off."""
    app = noop_app(watch)
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


def noop_app(watch: bool, **options: Any) -> Application:
    """4 workers and a no-op handler; the watchers on (the defaults) or off."""
    app = Application(workers=4, blocked_loop_threshold=1.0 if watch else None, **options)

    @app.handler("noop")
    async def noop(job: Job) -> None:
        return None

    return app


async def watchers_cpu(watch: bool, seconds: float = 1.0) -> float:
    """CPU seconds per wall second of the process, ``PACED_JOBS`` jobs a second."""
    app = noop_app(watch)
    await app.start()
    if not watch:
        await app.monitors.health_watch.stop()
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[Any]] = set()
    cpu, started = process_cpu_seconds(os.getpid()), loop.time()
    due = started
    while (now := loop.time()) < started + seconds:
        while due <= now:
            task = loop.create_task(app.submit("noop"))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            due += 1.0 / PACED_JOBS
        await asyncio.sleep(due - now)
    await asyncio.gather(*tasks)
    share = (process_cpu_seconds(os.getpid()) - cpu) / (loop.time() - started)
    await app.stop()
    return share


async def watchers_cost() -> Gate:
    """Pairs of paced runs with the watchers on and off: the CPU they take, a gate."""
    shares = []
    for n in range(WATCH_PAIRS):  # alternate which runs first: no warm-up bias
        first = await watchers_cpu(n % 2 == 0)
        second = await watchers_cpu(n % 2 == 1)
        on, off = (first, second) if n % 2 == 0 else (second, first)
        shares.append(on - off)
        print(f"process CPU, share of a core, {PACED_JOBS:,.0f} jobs/s: watchers on {on:.3f}, "
              f"off {off:.3f}; watchers' cost {on - off:.3f}")  # fmt: skip
    return Gate("watchers' CPU, share of a core", tuple(shares), MAX_WATCHER_SHARE,
                at_least=False, unit="of a core")  # fmt: skip


async def throughput_ratio(rounds: int, seconds: float) -> float:
    """Pairs of closed-loop runs with the watchers on and off: the median jobs/s ratio."""
    ratios = []
    for n in range(rounds):  # alternate which runs first: no warm-up bias
        if n % 2:
            off = await throughput(False, seconds)
            on = await throughput(True, seconds)
        else:
            on = await throughput(True, seconds)
            off = await throughput(False, seconds)
        ratios.append(on / off)
        print(f"jobs/s  watchers on {on:,.0f}  off {off:,.0f}  ratio {on / off:.3f}")
    median = statistics.median(ratios)
    print(f"median ratio (on / off): {median:.3f} (target >= {MIN_RATIO:.2f})")
    return median


async def profiling(rounds: int, batch: int) -> tuple[Gate, float]:
    """Rounds of /health idle then while profiling: the ratio gate, the p99 profiling."""
    app = noop_app(True, enable_http=True, http_host="127.0.0.1", http_port=0,
                   http_token=TOKEN, rate_limit=None)  # fmt: skip
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
    watch_gate = await watchers_cost()
    ratio = 1.0 if args.quick else await throughput_ratio(args.rounds, args.seconds)
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
    parser.add_argument("--quick", action="store_true", help="the gates only, small batches")
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

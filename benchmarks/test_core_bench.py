"""Core benchmarks: job throughput and the cost of ``get_stats()``.

Throughput: a no-op handler (registered with the default timeout, so each job pays for its
deadline) at 1, 4 and 16 workers, with and without a pool of free fake connections. Jobs
come from 64 concurrent submitters that each await their result. Before each round the
same jobs make the same round trip through a bare ``asyncio.Queue`` (submitters put an
item and a future, consumers resolve it). CI gate (``benchmarks/gate.py``): the median
over the rounds of our jobs/s as a share of the bare queue's, at least
``THROUGHPUT_FLOOR``. Target of a full run: at least 20,000 jobs/s with 4 workers and no
pool.

get_stats(): one call on an application with N workers and a full pool of N connections,
for N = 10, 1,000 and 10,000 with the shipped ``stats_max_items``, and for 10,000 listing
every worker and connection. Before each call, plain Python builds a listing of as many
worker- and connection-shaped dicts as ``get_stats()`` lists. CI gate, where 1,000 items
or more are listed: the median over 5 rounds of the ratio of the two medians, at most
``STATS_CEILING``. Target of a full run:
under 5 ms at 1,000 + 1,000.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.gate import Gate, paired, paired_rounds
from orchestrator import Application, Job

SUBMITTERS = 64
THROUGHPUT_TARGET = 20_000.0  # jobs/s, 4 workers, no pool
STATS_TARGET = 0.005  # seconds, 1,000 workers + 1,000 connections
THROUGHPUT_FLOOR = 0.1
"""CI: the least share of the bare queue's jobs/s (measured: about 0.2)."""
STATS_CEILING = 4.0
"""CI: the most ``get_stats()`` may cost, as a multiple of the plain listing (measured:
1.2-2.4 when 1,000 or more items are listed)."""


class NullFactory:
    """Connections that cost nothing to open or close."""

    async def connect(self) -> object:
        return object()

    async def close(self, conn: object) -> None:
        return None


def median_seconds(benchmark: BenchmarkFixture) -> float | None:
    """The median of the rounds, or None under ``--benchmark-disable``."""
    if benchmark.stats is None:
        return None
    return float(benchmark.stats.stats.median)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A private event loop (pytest-benchmark has no async support)."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


async def submit_all(app: Application, jobs: int) -> None:
    """``jobs`` no-op jobs from SUBMITTERS concurrent submitters, each awaiting its result."""

    async def submitter(count: int) -> None:
        for _ in range(count):
            await app.submit("noop")

    await asyncio.gather(*(submitter(jobs // SUBMITTERS) for _ in range(SUBMITTERS)))


async def bare_queue(jobs: int, workers: int) -> None:
    """The same round trip through a bare asyncio.Queue and ``workers`` consumers."""
    queue: asyncio.Queue[tuple[int, asyncio.Future[Any]]] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def handler(item: int) -> int:
        return item

    async def consumer() -> None:
        while True:
            item, future = await queue.get()
            future.set_result(await handler(item))

    async def submitter(count: int) -> None:
        for i in range(count):
            future = loop.create_future()
            queue.put_nowait((i, future))
            await future

    consumers = [loop.create_task(consumer()) for _ in range(workers)]
    await asyncio.gather(*(submitter(jobs // SUBMITTERS) for _ in range(SUBMITTERS)))
    for task in consumers:
        task.cancel()
    await asyncio.gather(*consumers, return_exceptions=True)


def build_app(workers: int, pooled: bool) -> Application:
    options: dict[str, Any] = {"workers": workers, "queue_size": 4096}
    if pooled:
        options.update(connection_factory=NullFactory(), pool_min_size=workers,
                       pool_max_size=workers)  # fmt: skip
    app = Application(**options)

    @app.handler("noop")
    async def noop(job: Job) -> None:
        return None

    return app


@pytest.mark.parametrize("pooled", [False, True], ids=["no-pool", "pool"])
@pytest.mark.parametrize("workers", [1, 4, 16], ids=["1-worker", "4-workers", "16-workers"])
def test_job_throughput(
    benchmark: BenchmarkFixture,
    loop: asyncio.AbstractEventLoop,
    figures: list[str],
    check_gate: Callable[[Gate], None],
    ci_quick: bool,
    workers: int,
    pooled: bool,
) -> None:
    """No-op jobs per second; at least 20,000/s with 4 workers and no pool."""
    jobs = SUBMITTERS * (40 if ci_quick else 320)
    rounds = 9 if ci_quick else 7
    app = build_app(workers, pooled)
    loop.run_until_complete(app.start())
    try:
        ours, base = paired(benchmark, lambda: loop.run_until_complete(submit_all(app, jobs)),
                            lambda: loop.run_until_complete(bare_queue(jobs, workers)),
                            rounds=rounds, warmup_rounds=1)  # fmt: skip
        assert app.workers.jobs_completed_total == jobs * (rounds + 1)  # every job ran
    finally:
        loop.run_until_complete(app.stop())
    median = median_seconds(benchmark)
    if median is None:
        return
    rate, base_rate = jobs / median, jobs / statistics.median(base)
    benchmark.extra_info.update(jobs_per_second=rate, bare_queue_jobs_per_second=base_rate)
    figures.append(
        f"throughput {workers:>2} worker(s) {'pool   ' if pooled else 'no pool'}: "
        f"{rate:>9,.0f} jobs/s   bare asyncio.Queue {base_rate:>9,.0f}/s"
    )
    shares = tuple(b / o for o, b in zip(ours, base, strict=True))
    label = f"jobs/s {workers} worker(s) {'pool' if pooled else 'no pool'} / bare asyncio.Queue"
    check_gate(Gate(label, shares, THROUGHPUT_FLOOR, at_least=True))
    if workers == 4 and not pooled and not ci_quick:
        assert rate >= THROUGHPUT_TARGET


def plain_listing(items: list[Any]) -> list[dict[str, Any]]:
    """What listing ``items`` as worker and connection entries costs in plain Python."""
    now = time.monotonic()
    workers = [{"id": i.id, "state": i.state, "jobs_total": i.uses, "failed_total": i.uses,
                "current_job": None, "age_seconds": now - i.at, "last_error": None}
               for i in items]  # fmt: skip
    conns = [{"id": i.id, "state": i.state, "uses": i.uses, "age_seconds": now - i.at,
              "idle_seconds": now - i.at if i.state == "idle" else 0.0} for i in items]  # fmt: skip
    return workers + conns


@dataclass(slots=True)
class Item:
    id: int
    state: str = "idle"
    uses: int = 0
    at: float = 0.0


@pytest.mark.parametrize(
    ("size", "listed"),
    [(10, "default"), (1_000, "default"), (10_000, "default"), (10_000, "all")],
    ids=["10", "1000", "10000", "10000-unbounded"],
)
def test_get_stats_cost(
    benchmark: BenchmarkFixture,
    loop: asyncio.AbstractEventLoop,
    figures: list[str],
    check_gate: Callable[[Gate], None],
    ci_quick: bool,
    size: int,
    listed: str,
) -> None:
    """get_stats() with N workers and N pooled connections; under 5 ms at 1,000 + 1,000."""
    # "default" keeps stats_max_items as shipped; "all" lists every worker and connection.
    options: dict[str, Any] = {} if listed == "default" else {"stats_max_items": None}
    # The loop does not run while get_stats() is timed: no watchdog to call that blocked.
    app = Application(workers=size, connection_factory=NullFactory(), pool_min_size=size,
                      pool_max_size=size, blocked_loop_threshold=None, **options)  # fmt: skip

    @app.handler("noop")
    async def noop(job: Job) -> None:
        return None

    loop.run_until_complete(app.start())
    limit = app.settings.stats_max_items
    items = [Item(i) for i in range(size if limit is None else min(size, limit))]
    try:
        stats = app.get_stats()
        assert stats["pool"]["size"] == size
        assert stats["workers"]["alive"] == size
        rounds = (20 if size == 10_000 else 100) if ci_quick else (50 if size == 10_000 else 200)
        ours, base = paired(benchmark, app.get_stats, lambda: plain_listing(items),
                            rounds=rounds, warmup_rounds=5)  # fmt: skip
    finally:
        loop.run_until_complete(app.stop())
    median = median_seconds(benchmark)
    if median is None:
        return
    benchmark.extra_info["get_stats_ms"] = median * 1e3
    shown = "all" if limit is None else f"first {limit:,}"
    figures.append(
        f"get_stats() {size:>6,} workers + {size:>6,} connections, listing {shown:>11}: "
        f"{median * 1e3:7.3f} ms   (uncontended {statistics.median(ours) * 1e3:7.3f} ms, "
        f"plain listing {statistics.median(base) * 1e3:7.3f} ms)"
    )
    if len(items) >= 1_000:  # with fewer, the fixed part (histograms, counters) dominates
        label = f"get_stats() {size} + {size}, listing {shown} / plain listing"
        ratios = tuple(paired_rounds(ours, base, 5))
        check_gate(Gate(label, ratios, STATS_CEILING, at_least=False))
    if size == 1_000 and not ci_quick:
        assert median < STATS_TARGET

"""Core benchmarks: job throughput and the cost of ``get_stats()``.

Throughput: a no-op handler (registered with the default timeout, so each job pays for its
deadline) at 1, 4 and 16 workers, with and without a pool of free fake connections. Jobs
come from 64 concurrent submitters that each await their result. The same run measures a
bare ``asyncio.Queue`` doing the same round trip (submitters put an item and a future,
consumers resolve it) and prints the ratio. Target: at least 20,000 jobs/s with 4 workers
and no pool.

get_stats(): one call on an application with N workers and a full pool of N connections,
for N = 10, 1,000 and 10,000 with the shipped ``stats_max_items``, and for 10,000 listing
every worker and connection. Target: under 5 ms at 1,000 + 1,000.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from orchestrator import Application, Job

SUBMITTERS = 64
THROUGHPUT_TARGET = 20_000.0  # jobs/s, 4 workers, no pool
STATS_TARGET = 0.005  # seconds, 1,000 workers + 1,000 connections


class NullFactory:
    """Connections that cost nothing to open or close."""

    async def connect(self) -> object:
        return object()

    async def close(self, conn: object) -> None:
        return None


def pedantic(benchmark: BenchmarkFixture, target: Callable[[], Any], *, rounds: int) -> None:
    """``benchmark.pedantic``, one iteration per round (pytest-benchmark is untyped here)."""
    run: Callable[..., Any] = benchmark.pedantic
    run(target, rounds=rounds, iterations=1, warmup_rounds=1)


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


async def bare_queue(jobs: int, workers: int) -> float:
    """Seconds for the same round trip through a bare asyncio.Queue and ``workers`` consumers."""
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
    started = time.perf_counter()
    await asyncio.gather(*(submitter(jobs // SUBMITTERS) for _ in range(SUBMITTERS)))
    elapsed = time.perf_counter() - started
    for task in consumers:
        task.cancel()
    await asyncio.gather(*consumers, return_exceptions=True)
    return elapsed


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
    ci_quick: bool,
    workers: int,
    pooled: bool,
) -> None:
    """No-op jobs per second; at least 20,000/s with 4 workers and no pool."""
    jobs = SUBMITTERS * (80 if ci_quick else 320)
    rounds = 3 if ci_quick else 7
    app = build_app(workers, pooled)
    loop.run_until_complete(app.start())
    try:
        runs: list[None] = []

        def one_round() -> None:
            loop.run_until_complete(submit_all(app, jobs))
            runs.append(None)

        pedantic(benchmark, one_round, rounds=rounds)
        assert app.workers.jobs_completed_total == jobs * len(runs)  # every job ran
    finally:
        loop.run_until_complete(app.stop())
    loop.run_until_complete(bare_queue(jobs, workers))  # warm-up, like the benchmark's
    baseline = statistics.median(
        loop.run_until_complete(bare_queue(jobs, workers)) for _ in range(rounds)
    )
    median = median_seconds(benchmark)
    if median is None:
        return
    rate, base_rate = jobs / median, jobs / baseline
    benchmark.extra_info.update(jobs_per_second=rate, bare_queue_jobs_per_second=base_rate)
    figures.append(
        f"throughput {workers:>2} worker(s) {'pool   ' if pooled else 'no pool'}: "
        f"{rate:>9,.0f} jobs/s   bare asyncio.Queue {base_rate:>9,.0f}/s   "
        f"ratio {rate / base_rate:.2f}"
    )
    if workers == 4 and not pooled:
        assert rate >= THROUGHPUT_TARGET


@pytest.mark.parametrize(
    ("size", "listed"),
    [(10, "default"), (1_000, "default"), (10_000, "default"), (10_000, "all")],
    ids=["10", "1000", "10000", "10000-unbounded"],
)
def test_get_stats_cost(
    benchmark: BenchmarkFixture,
    loop: asyncio.AbstractEventLoop,
    figures: list[str],
    ci_quick: bool,
    size: int,
    listed: str,
) -> None:
    """get_stats() with N workers and N pooled connections; under 5 ms at 1,000 + 1,000."""
    # "default" keeps stats_max_items as shipped; "all" lists every worker and connection.
    options: dict[str, Any] = {} if listed == "default" else {"stats_max_items": None}
    app = Application(workers=size, connection_factory=NullFactory(), pool_min_size=size,
                      pool_max_size=size, **options)  # fmt: skip

    @app.handler("noop")
    async def noop(job: Job) -> None:
        return None

    loop.run_until_complete(app.start())
    try:
        stats = app.get_stats()
        assert stats["pool"]["size"] == size
        assert stats["workers"]["alive"] == size
        rounds = (20 if size == 10_000 else 50) if ci_quick else (50 if size == 10_000 else 200)
        pedantic(benchmark, app.get_stats, rounds=rounds)
    finally:
        loop.run_until_complete(app.stop())
    median = median_seconds(benchmark)
    if median is None:
        return
    benchmark.extra_info["get_stats_ms"] = median * 1e3
    limit = app.settings.stats_max_items
    shown = "all" if limit is None else f"first {limit:,}"
    figures.append(
        f"get_stats() {size:>6,} workers + {size:>6,} connections, listing {shown:>11}: "
        f"{median * 1e3:7.3f} ms"
    )
    if size == 1_000:
        assert median < STATS_TARGET

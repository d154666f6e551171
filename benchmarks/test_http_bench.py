"""In-process latency of every endpoint through the full request chain.

Auth is on (requests carry the token), rate limiting is on (high enough never to reject),
and logging is configured as in production (JSON lines, info level) into /dev/null.
Each benchmark asserts median and p99 under 10 ms (the API's target) and, for /health and
a cached /stats, a median under 1 ms.
"""

from __future__ import annotations

import asyncio
import os
import statistics
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer
from pytest_benchmark.fixture import BenchmarkFixture

from orchestrator import Application, Job
from orchestrator.config import HttpSettings
from orchestrator.http import create_app
from orchestrator.log import configure_logging

TOKEN = "bench-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class NullFactory:
    """Connections that cost nothing, so the pool can hold thousands."""

    async def connect(self) -> object:
        return object()

    async def close(self, conn: object) -> None:
        return None


class Served:
    """An application of ``size`` workers and connections, its API and a client, on a loop."""

    def __init__(self, size: int, stats_ttl: float, gc_freeze: bool = False) -> None:
        self.loop = asyncio.new_event_loop()
        self.app = Application(workers=size, pool_min_size=size, pool_max_size=size,
                               connection_factory=NullFactory(), gc_freeze=gc_freeze)  # fmt: skip

        @self.app.handler("noop")
        async def noop(job: Job) -> None:
            return None

        settings = HttpSettings(http_token=(TOKEN,), rate_limit=1e9, stats_ttl=stats_ttl)
        web_app = create_app(self.app, settings)
        self.client: TestClient[Any, Any] = TestClient(TestServer(web_app), loop=self.loop)
        self.loop.run_until_complete(self.app.start())
        self.loop.run_until_complete(self.client.start_server())

    def request(self, path: str) -> None:
        async def one() -> None:
            async with self.client.get(path, headers=AUTH) as resp:
                assert resp.status == 200, resp.status
                await resp.read()

        self.loop.run_until_complete(one())

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.run_until_complete(self.app.stop(timeout=1.0))
        self.loop.close()


@pytest.fixture(autouse=True, scope="module")
def production_logging() -> Iterator[None]:
    """JSON lines at info into /dev/null, as configured in production.

    Loggers cache their output on first use, so the sink stays open for the module.
    """
    with open(os.devnull, "w") as sink:
        configure_logging("json", "info", stream=sink)
        yield
        structlog.reset_defaults()


def rounds(ci_quick: bool, full: int) -> int:
    return max(50, full // 5) if ci_quick else full


def check(
    benchmark: BenchmarkFixture,
    figures: list[str],
    label: str,
    median_limit: float,
    p99_limit: float | None = 0.010,
) -> None:
    """Record the figures and assert the latency targets (skipped under --benchmark-disable)."""
    if benchmark.stats is None:
        return
    data = sorted(benchmark.stats.stats.data)
    median = statistics.median(data)
    p99 = data[min(len(data) - 1, int(len(data) * 0.99))]
    figures.append(
        f"{label}: median {median * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms, n={len(data)}"
    )
    assert median < median_limit, f"{label}: median {median * 1000:.2f} ms"
    if p99_limit is not None:
        assert p99 < p99_limit, f"{label}: p99 {p99 * 1000:.2f} ms"


@pytest.mark.parametrize(
    ("path", "median_limit"),
    [("/health", 0.001), ("/live", 0.001), ("/ready", 0.010), ("/stats", 0.001)],
    ids=["health", "live", "ready", "stats-hit"],
)
def test_endpoint_latency(
    benchmark: BenchmarkFixture, ci_quick: bool, figures: list[str], path: str, median_limit: float
) -> None:
    """Probes and a cached /stats through the full chain with 10 workers+connections."""
    served = Served(10, stats_ttl=60.0)
    try:
        served.request(path)  # warm: snapshot built, keep-alive connection open
        benchmark.pedantic(served.request, args=(path,), rounds=rounds(ci_quick, 2000),
                           warmup_rounds=20)  # fmt: skip
        check(benchmark, figures, f"{path} (10 workers)", median_limit)
    finally:
        served.close()


@pytest.mark.parametrize(
    ("size", "gc_freeze"),
    [(10, False), (1_000, False), (10_000, True), (10_000, False)],
    ids=["10", "1k", "10k-gc-freeze", "10k"],
)
def test_stats_miss_latency(
    benchmark: BenchmarkFixture, ci_quick: bool, figures: list[str], size: int, gc_freeze: bool
) -> None:
    """/stats with caching off (TTL 0): get_stats() and serialisation on every request.

    At 10,000 workers + 10,000 connections a full garbage collection (~40 ms) lands in
    the tail; ``gc_freeze`` keeps it out, so the 10 ms p99 is asserted with it on and the
    default is measured and printed.
    """
    served = Served(size, stats_ttl=0.0, gc_freeze=gc_freeze)
    label = f"/stats miss ({size} workers+connections{', gc_freeze' if gc_freeze else ''})"
    try:
        served.request("/stats")
        benchmark.pedantic(served.request, args=("/stats",),
                           rounds=rounds(ci_quick, 2000 if size < 10_000 else 300),
                           warmup_rounds=5)  # fmt: skip
        if size == 10_000 and not gc_freeze:
            check(benchmark, figures, label, 0.010, p99_limit=None)
        else:
            check(benchmark, figures, label, 0.010)
    finally:
        served.close()


@pytest.mark.parametrize("size", [10, 1_000, 10_000], ids=["10", "1k", "10k"])
def test_health_flat_with_size(
    benchmark: BenchmarkFixture, ci_quick: bool, figures: list[str], size: int
) -> None:
    """/health latency does not grow with the number of workers."""
    served = Served(size, stats_ttl=1.0)
    try:
        served.request("/health")
        benchmark.pedantic(served.request, args=("/health",), rounds=rounds(ci_quick, 2000),
                           warmup_rounds=20)  # fmt: skip
        check(benchmark, figures, f"/health ({size} workers)", 0.001)
    finally:
        served.close()

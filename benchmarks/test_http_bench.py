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

    def __init__(self, size: int, stats_ttl: float) -> None:
        self.loop = asyncio.new_event_loop()
        self.app = Application(workers=size, pool_min_size=size, pool_max_size=size,
                               connection_factory=NullFactory())  # fmt: skip

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


def rounds(request: pytest.FixtureRequest, full: int) -> int:
    quick = bool(request.config.getoption("--ci-quick", default=False))
    return max(20, full // 10) if quick else full


def check(benchmark: BenchmarkFixture, label: str, median_limit: float) -> None:
    """Print the figures and assert the latency targets (skipped under --benchmark-disable)."""
    if benchmark.stats is None:
        return
    data = sorted(benchmark.stats.stats.data)
    median = statistics.median(data)
    p99 = data[min(len(data) - 1, int(len(data) * 0.99))]
    print(f"\n{label}: median {median * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms, n={len(data)}")
    assert median < median_limit, f"{label}: median {median * 1000:.2f} ms"
    assert p99 < 0.010, f"{label}: p99 {p99 * 1000:.2f} ms"


@pytest.mark.parametrize(
    ("path", "median_limit"),
    [("/health", 0.001), ("/live", 0.001), ("/ready", 0.010), ("/stats", 0.001)],
    ids=["health", "live", "ready", "stats-hit"],
)
def test_endpoint_latency(
    benchmark: BenchmarkFixture, request: pytest.FixtureRequest, path: str, median_limit: float
) -> None:
    """Probes and a cached /stats through the full chain with 10 workers+connections."""
    served = Served(10, stats_ttl=60.0)
    try:
        served.request(path)  # warm: snapshot built, keep-alive connection open
        benchmark.pedantic(served.request, args=(path,), rounds=rounds(request, 2000),
                           warmup_rounds=20)  # fmt: skip
        check(benchmark, f"{path} (10 workers)", median_limit)
    finally:
        served.close()


@pytest.mark.parametrize("size", [10, 1_000, 10_000], ids=["10", "1k", "10k"])
def test_stats_miss_latency(
    benchmark: BenchmarkFixture, request: pytest.FixtureRequest, size: int
) -> None:
    """/stats with caching off (TTL 0): get_stats() and serialisation on every request."""
    served = Served(size, stats_ttl=0.0)
    try:
        served.request("/stats")
        benchmark.pedantic(served.request, args=("/stats",),
                           rounds=rounds(request, 2000 if size < 10_000 else 300),
                           warmup_rounds=5)  # fmt: skip
        check(benchmark, f"/stats miss ({size} workers+connections)", 0.010)
    finally:
        served.close()


@pytest.mark.parametrize("size", [10, 1_000, 10_000], ids=["10", "1k", "10k"])
def test_health_flat_with_size(
    benchmark: BenchmarkFixture, request: pytest.FixtureRequest, size: int
) -> None:
    """/health latency does not grow with the number of workers."""
    served = Served(size, stats_ttl=1.0)
    try:
        served.request("/health")
        benchmark.pedantic(served.request, args=("/health",), rounds=rounds(request, 2000),
                           warmup_rounds=20)  # fmt: skip
        check(benchmark, f"/health ({size} workers)", 0.001)
    finally:
        served.close()

"""In-process latency of every endpoint through the full request chain.

Auth is on (requests carry the token), rate limiting is on (high enough never to reject),
and logging is configured as in production (JSON lines, info level) into /dev/null.

Before each request the same client sends one to a bare aiohttp server on the same loop
(one route answering constant bytes), and the CI gate is the median, over 5 rounds, of
the ratio of the two medians (``benchmarks/gate.py``): at most ``GATE_LIMITS[label]``.
A full run (``make bench``) also asserts median and p99 under 10 ms (the API's target)
and, for /health and a cached /stats, a median under 1 ms.
"""

from __future__ import annotations

import asyncio
import os
import statistics
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.gate import Gate, paired, paired_rounds
from orchestrator import Application, Job
from orchestrator.config import HttpSettings
from orchestrator.http import create_app
from orchestrator.log import configure_logging

TOKEN = "bench-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GATE_ROUNDS = 5
GATE_LIMITS = {
    "/health": 2.0,
    "/live": 2.0,
    "/ready": 2.0,
    "/stats": 2.5,
    "/stats miss 10": 4.0,
    "/stats miss 1000": 13.0,
    "/stats miss 10000": 13.0,
}
"""The most each endpoint's median may take, as a multiple of bare aiohttp's (measured
with both cores busy: probes 1.04-1.34, cached /stats 1.37-1.56, uncached /stats 1.8-2.4
at 10 workers and 6.9-9.9 at 1,000 and 10,000)."""


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
        self.bare: TestClient[Any, Any] = TestClient(TestServer(bare_app()), loop=self.loop)
        self.loop.run_until_complete(self.app.start())
        self.loop.run_until_complete(self.client.start_server())
        self.loop.run_until_complete(self.bare.start_server())

    def request(self, path: str, client: TestClient[Any, Any] | None = None) -> None:
        async def one() -> None:
            async with (client or self.client).get(path, headers=AUTH) as resp:
                assert resp.status == 200, resp.status
                await resp.read()

        self.loop.run_until_complete(one())

    def measure(self, benchmark: BenchmarkFixture, path: str, rounds: int) -> list[float]:
        """Benchmark ``path``, each request paired with one to bare aiohttp: gate rounds."""
        self.request(path)  # warm: snapshot built, keep-alive connections open
        self.request(path, self.bare)
        ours, base = paired(benchmark, lambda: self.request(path),
                            lambda: self.request(path, self.bare), rounds=rounds,
                            warmup_rounds=20)  # fmt: skip
        return paired_rounds(ours, base, GATE_ROUNDS) if ours else []

    def close(self) -> None:
        self.loop.run_until_complete(self.bare.close())
        self.loop.run_until_complete(self.client.close())
        self.loop.run_until_complete(self.app.stop(timeout=1.0))
        self.loop.close()


def bare_app() -> web.Application:
    """The baseline: aiohttp, no middleware, every path answered with constant bytes."""

    async def constant(request: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", constant)
    return app


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
    return 100 if ci_quick else full


def check(
    benchmark: BenchmarkFixture,
    figures: list[str],
    check_gate: Callable[[Gate], None],
    ci_quick: bool,
    label: str,
    gate: tuple[str, list[float]],
    median_limit: float,
    p99_limit: float | None = 0.010,
) -> None:
    """Print the figures and check the gate; a full run asserts the latency targets too.

    Does nothing under --benchmark-disable.
    """
    if benchmark.stats is None:
        return
    data = sorted(benchmark.stats.stats.data)
    median = statistics.median(data)
    p99 = data[min(len(data) - 1, int(len(data) * 0.99))]
    figures.append(
        f"{label}: median {median * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms, n={len(data)}"
    )
    key, ratios = gate
    check_gate(Gate(f"{label} / bare aiohttp", tuple(ratios), GATE_LIMITS[key], at_least=False))
    if ci_quick:
        return
    assert median < median_limit, f"{label}: median {median * 1000:.2f} ms"
    if p99_limit is not None:
        assert p99 < p99_limit, f"{label}: p99 {p99 * 1000:.2f} ms"


@pytest.mark.parametrize(
    ("path", "median_limit"),
    [("/health", 0.001), ("/live", 0.001), ("/ready", 0.010), ("/stats", 0.001)],
    ids=["health", "live", "ready", "stats-hit"],
)
def test_endpoint_latency(
    benchmark: BenchmarkFixture,
    ci_quick: bool,
    figures: list[str],
    check_gate: Callable[[Gate], None],
    path: str,
    median_limit: float,
) -> None:
    """Probes and a cached /stats through the full chain with 10 workers+connections."""
    served = Served(10, stats_ttl=60.0)
    try:
        ratios = served.measure(benchmark, path, rounds(ci_quick, 2000))
        check(benchmark, figures, check_gate, ci_quick, f"{path} (10 workers)",
              (path, ratios), median_limit)  # fmt: skip
    finally:
        served.close()


@pytest.mark.parametrize(
    ("size", "gc_freeze"),
    [(10, False), (1_000, False), (10_000, True), (10_000, False)],
    ids=["10", "1k", "10k-gc-freeze", "10k"],
)
def test_stats_miss_latency(
    benchmark: BenchmarkFixture,
    ci_quick: bool,
    figures: list[str],
    check_gate: Callable[[Gate], None],
    size: int,
    gc_freeze: bool,
) -> None:
    """/stats with caching off (TTL 0): get_stats() and serialisation on every request.

    At 10,000 workers + 10,000 connections a full garbage collection (~40 ms) lands in
    the tail; ``gc_freeze`` keeps it out, so the 10 ms p99 is asserted with it on and the
    default is measured and printed.
    """
    served = Served(size, stats_ttl=0.0, gc_freeze=gc_freeze)
    label = f"/stats miss ({size} workers+connections{', gc_freeze' if gc_freeze else ''})"
    try:
        ratios = served.measure(benchmark, "/stats",
                                rounds(ci_quick, 2000 if size < 10_000 else 300))  # fmt: skip
        gate = (f"/stats miss {size}", ratios)
        p99_limit = None if size == 10_000 and not gc_freeze else 0.010
        check(benchmark, figures, check_gate, ci_quick, label, gate, 0.010, p99_limit)
    finally:
        served.close()


@pytest.mark.parametrize("size", [10, 1_000, 10_000], ids=["10", "1k", "10k"])
def test_health_flat_with_size(
    benchmark: BenchmarkFixture,
    ci_quick: bool,
    figures: list[str],
    check_gate: Callable[[Gate], None],
    size: int,
) -> None:
    """/health latency does not grow with the number of workers."""
    served = Served(size, stats_ttl=1.0)
    try:
        ratios = served.measure(benchmark, "/health", rounds(ci_quick, 2000))
        check(benchmark, figures, check_gate, ci_quick, f"/health with {size} workers",
              ("/health", ratios), 0.001)  # fmt: skip
    finally:
        served.close()

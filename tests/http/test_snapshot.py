"""The stats snapshot: one build per TTL, errors never cached, conditional requests."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp.plugin import AiohttpClient

from orchestrator import FakeClock
from orchestrator.config import HttpSettings
from orchestrator.health import ComponentHealth, HealthReport
from orchestrator.http import SnapshotCache, create_app
from orchestrator.types import StatsDict


class CountingObservable:
    """An Observable that counts get_stats() calls and can be told to fail or be slow."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls = 0
        self.fail = False
        self.build_cost = 0.0

    def get_stats(self) -> StatsDict:
        self.calls += 1
        self.clock.advance(self.build_cost)
        if self.fail:
            raise RuntimeError("stats exploded: secret=hunter2")
        return {"service": {"calls_total": self.calls}}

    def health(self) -> HealthReport:
        return HealthReport(True, self.clock.wall(), {"service": ComponentHealth.ok()})


def test_one_build_per_ttl() -> None:
    """Within the TTL every get is a hit; at the TTL the next get rebuilds."""
    clock = FakeClock()
    source = CountingObservable(clock)
    cache = SnapshotCache(source.get_stats, ttl=1.0, clock=clock)
    results = [cache.get() for _ in range(100)]
    assert source.calls == 1
    assert [hit for _, hit in results] == [False] + [True] * 99
    clock.advance(0.999)
    assert cache.get()[1] is True
    clock.advance(0.001)
    snap, hit = cache.get()
    assert (hit, source.calls) == (False, 2)
    assert orjson.loads(snap.body)["service"] == {"calls_total": 2}
    assert cache.stats()["hits_total"] == 100
    assert cache.stats()["misses_total"] == 2


def test_ttl_zero_builds_every_time() -> None:
    """stats_ttl=0 disables caching."""
    clock = FakeClock()
    source = CountingObservable(clock)
    cache = SnapshotCache(source.get_stats, ttl=0.0, clock=clock)
    for _ in range(5):
        assert cache.get()[1] is False
    assert source.calls == 5


def test_error_never_cached() -> None:
    """A failing build raises to the caller, stores nothing, and the next get retries."""
    clock = FakeClock()
    source = CountingObservable(clock)
    cache = SnapshotCache(source.get_stats, ttl=10.0, clock=clock)
    source.fail = True
    for _ in range(2):
        with pytest.raises(RuntimeError):
            cache.get()
    source.fail = False
    _, hit = cache.get()
    assert hit is False
    assert source.calls == 3
    assert cache.stats()["errors_total"] == 2


def test_snapshot_content() -> None:
    """A snapshot carries generated_at, compact bytes, lazy pretty bytes and a body ETag."""
    clock = FakeClock()
    cache = SnapshotCache(CountingObservable(clock).get_stats, ttl=1.0, clock=clock)
    snap, _ = cache.get()
    assert snap.data["generated_at"] == "2025-12-05T10:30:00Z"
    assert b"\n" not in snap.body
    assert snap.pretty.startswith(b'{\n  "service"')
    assert orjson.loads(snap.pretty) == orjson.loads(snap.body)
    assert snap.pretty is snap.pretty  # built once
    other, _ = SnapshotCache(lambda: {"x": 1}, ttl=1.0, clock=clock).get()
    assert snap.etag != other.etag


def test_slow_build_warns_with_duration() -> None:
    """A build slower than the threshold logs stats_build_slow with its duration."""
    clock = FakeClock()
    source = CountingObservable(clock)
    source.build_cost = 0.2
    cache = SnapshotCache(source.get_stats, ttl=1.0, clock=clock, slow_threshold=0.05)
    with structlog.testing.capture_logs() as logs:
        cache.get()
    slow = [e for e in logs if e["event"] == "stats_build_slow"]
    assert len(slow) == 1
    assert slow[0]["log_level"] == "warning"
    assert slow[0]["duration_ms"] == pytest.approx(200.0)
    assert cache.stats()["last_build_seconds"] == pytest.approx(0.2)


async def make_client(
    aiohttp_client: AiohttpClient, clock: FakeClock, source: CountingObservable, ttl: float = 1.0
) -> TestClient[web.Request, web.Application]:
    app = create_app(source, HttpSettings(stats_ttl=ttl, rate_limit=None), clock=clock)
    return await aiohttp_client(app)


async def stats_status(client: TestClient[web.Request, web.Application]) -> int:
    """GET /stats, read the body, return the status."""
    async with client.get("/stats") as resp:
        await resp.read()
        return resp.status


async def test_concurrent_cold_requests_build_once(aiohttp_client: AiohttpClient) -> None:
    """Fifty concurrent /stats requests on a cold cache cause exactly one get_stats()."""
    clock = FakeClock()
    source = CountingObservable(clock)
    client = await make_client(aiohttp_client, clock, source)

    assert await asyncio.gather(*(stats_status(client) for _ in range(50))) == [200] * 50
    assert source.calls == 1


async def test_cancelled_requests_do_not_break_the_refresh(aiohttp_client: AiohttpClient) -> None:
    """Requests abandoned mid-flight leave the shared snapshot intact for the others."""
    clock = FakeClock()
    source = CountingObservable(clock)
    client = await make_client(aiohttp_client, clock, source)

    tasks = [asyncio.ensure_future(stats_status(client)) for _ in range(20)]
    for task in tasks[::2]:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [r for r in results[1::2]] == [200] * 10
    assert source.calls == 1
    assert await stats_status(client) == 200


async def test_conditional_get_and_cache_headers(aiohttp_client: AiohttpClient) -> None:
    """ETag + If-None-Match gives 304 without a body; headers show hit/miss and age."""
    clock = FakeClock()
    source = CountingObservable(clock)
    client = await make_client(aiohttp_client, clock, source, ttl=5.0)
    async with client.get("/stats") as resp:
        etag = resp.headers["ETag"]
        assert resp.headers["X-Cache"] == "miss"
        assert resp.headers["Cache-Control"] == "max-age=5"
        assert resp.headers["X-Snapshot-Age-Ms"] == "0"
        assert resp.headers["Server-Timing"].startswith("app;dur=")
    clock.advance(2.5)
    async with client.get("/stats", headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304
        assert await resp.read() == b""
        assert resp.headers["ETag"] == etag
        assert resp.headers["X-Cache"] == "hit"
        assert resp.headers["Cache-Control"] == "max-age=2"
        assert resp.headers["X-Snapshot-Age-Ms"] == "2500"
    async with client.get("/stats", headers={"If-None-Match": f'"other", W/{etag}'}) as resp:
        assert resp.status == 304
    async with client.get("/stats", headers={"If-None-Match": '"stale"'}) as resp:
        assert resp.status == 200
    async with client.get("/stats", headers={"If-None-Match": "*"}) as resp:
        assert resp.status == 304
    async with client.get("/stats?pretty", headers={"If-None-Match": etag}) as resp:
        assert resp.status == 200  # the indented body is other bytes, with its own ETag
        assert resp.headers["ETag"] != etag
    clock.advance(2.5)
    async with client.get("/stats", headers={"If-None-Match": etag}) as resp:
        assert resp.status == 200  # rebuilt: new generated_at, new ETag
        assert resp.headers["X-Cache"] == "miss"
    assert source.calls == 2


async def test_failing_stats_500_while_probes_answer(aiohttp_client: AiohttpClient) -> None:
    """get_stats() raising: /stats is a 500 stats_unavailable; /health and /live still 200."""
    clock = FakeClock()
    source = CountingObservable(clock)
    source.fail = True
    client = await make_client(aiohttp_client, clock, source)
    with structlog.testing.capture_logs() as logs:
        async with client.get("/stats") as resp:
            body = await resp.json()
            assert resp.status == 500
    assert body["error"] == "stats_unavailable"
    assert "hunter2" not in str(body)
    assert "hunter2" not in repr(logs)
    for path in ("/health", "/live"):
        async with client.get(path) as resp:
            assert resp.status == 200
    source.fail = False
    async with client.get("/stats") as resp:
        assert resp.status == 200  # the error was not cached

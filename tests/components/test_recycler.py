"""Recycler: periodic retirement of workers and connections, without losing jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from orchestrator import Application, FakeClock
from orchestrator.components.recycler import Recycler
from tests.fakes import BlockingHandler, FakeFactory, make_app, settle, until

STATS_KEYS = {
    "running",
    "interval_seconds",
    "sweeps_total",
    "sweep_errors_total",
    "last_sweep_at",
    "sweep_duration_seconds",
    "workers_recycled_total",
    "connections_recycled_total",
}


async def sweep(app: Application, clock: FakeClock) -> None:
    """Advance the clock by one recycle interval and wait for that sweep to finish."""
    before = app.recycler.sweeps_total
    await until(lambda: clock.sleepers >= 1)
    clock.advance(app.settings.recycle_interval)
    await until(lambda: app.recycler.sweeps_total == before + 1)
    await settle()  # retirements, closes and connects triggered by the sweep


def worker_ids(app: Application) -> list[int]:
    return [w.id for w in app.workers.workers()]


async def test_workers_are_recycled_after_max_jobs(clock: FakeClock) -> None:
    """A worker that ran max_jobs_per_worker jobs is replaced at the next sweep."""
    app = make_app(clock, workers=1, max_jobs_per_worker=2)
    async with app:
        (first,) = worker_ids(app)
        assert await app.submit("echo", 1) == 1
        await sweep(app, clock)
        assert worker_ids(app) == [first]
        assert await app.submit("echo", 2) == 2
        await sweep(app, clock)
        assert len(worker_ids(app)) == 1
        assert worker_ids(app) != [first]
        assert app.recycler.stats()["workers_recycled_total"] == {"max_jobs": 1, "max_age": 0}
        assert app.health().healthy


async def test_workers_are_recycled_after_max_age(clock: FakeClock) -> None:
    """A worker older than max_worker_age is replaced; its successor starts young."""
    app = make_app(clock, workers=2, max_worker_age=3.0)
    async with app:
        original = set(worker_ids(app))
        for _ in range(2):
            await sweep(app, clock)
        assert set(worker_ids(app)) == original
        await sweep(app, clock)
        assert not set(worker_ids(app)) & original
        assert len(worker_ids(app)) == 2
        assert app.recycler.stats()["workers_recycled_total"] == {"max_jobs": 0, "max_age": 2}
        assert all(w["age_seconds"] == 0.0 for w in app.get_stats()["workers"]["workers"])


@pytest.mark.parametrize(
    ("settings", "uses", "sweeps", "reason"),
    [
        ({"max_connection_uses": 2}, 2, 1, "max_uses"),
        ({"max_connection_age": 3.0}, 0, 3, "max_age"),
        ({"connection_idle_timeout": 2.0}, 1, 2, "idle_timeout"),
    ],
    ids=["max-uses", "max-age", "idle-timeout"],
)
async def test_connections_are_recycled_past_their_limits(
    clock: FakeClock,
    factory: FakeFactory,
    settings: dict[str, Any],
    uses: int,
    sweeps: int,
    reason: str,
) -> None:
    """A connection past max uses, max age or idle timeout is closed and replaced."""
    app = make_app(clock, factory, workers=1, pool_min_size=1, pool_max_size=1, **settings)
    async with app:
        (original,) = factory.opened
        for n in range(uses):
            assert await app.submit("echo", n) == n
        for _ in range(sweeps - 1):
            await sweep(app, clock)
            assert factory.closed == []
        await sweep(app, clock)
        assert factory.closed == [original]
        assert len(factory.live) == 1
        assert app.recycler.stats()["connections_recycled_total"] == {
            **dict.fromkeys(("max_uses", "max_age", "idle_timeout"), 0),
            reason: 1,
        }
        assert app.get_stats()["pool"]["size"] == 1
        assert await app.submit("echo", "fresh") == "fresh"


async def test_a_connection_in_use_is_closed_after_its_job(
    clock: FakeClock, factory: FakeFactory
) -> None:
    """A connection retired while a job uses it stays until the job releases it."""
    app = make_app(clock, factory, workers=1, pool_min_size=1, pool_max_size=1,
                   max_connection_age=1.0)  # fmt: skip
    blocker = BlockingHandler()
    app.handler("block")(blocker)
    async with app:
        job = asyncio.ensure_future(app.submit("block", "x"))
        await until(lambda: len(blocker.started) == 1)
        await sweep(app, clock)
        assert factory.closed == []
        assert app.recycler.stats()["connections_recycled_total"] == {
            "max_uses": 0,
            "max_age": 1,
            "idle_timeout": 0,
        }
        blocker.release_all()
        assert await job == "x"
        await until(lambda: len(factory.closed) == 1)
        await until(lambda: len(factory.live) == 1)


async def test_a_busy_worker_finishes_its_job_before_retiring(clock: FakeClock) -> None:
    """A worker recycled while busy completes its job and only then leaves."""
    app = make_app(clock, workers=1, max_worker_age=1.0)
    blocker = BlockingHandler()
    app.handler("block")(blocker)
    async with app:
        (old,) = worker_ids(app)
        job = asyncio.ensure_future(app.submit("block", "finished"))
        await until(lambda: len(blocker.started) == 1)
        await sweep(app, clock)
        states = {w["id"]: w["state"] for w in app.get_stats()["workers"]["workers"]}
        assert states[old] == "draining"
        assert len(states) == 2
        assert app.workers.health().healthy
        blocker.release_all()
        assert await job == "finished"
        await until(lambda: old not in worker_ids(app))
        assert len(worker_ids(app)) == 1


async def test_recycling_loses_no_job(clock: FakeClock, factory: FakeFactory) -> None:
    """Under constant recycling of workers and connections every submitted job gets its result."""
    app = make_app(clock, factory, workers=4, pool_min_size=2, pool_max_size=4,
                   max_jobs_per_worker=3, max_connection_uses=4, connection_idle_timeout=1.0,
                   queue_size=1000)  # fmt: skip
    async with app:
        results: list[asyncio.Future[Any]] = []
        for round_ in range(10):
            batch = [asyncio.ensure_future(app.submit("echo", (round_, i))) for i in range(30)]
            results.extend(batch)
            for _ in range(3):  # sweep while the batch is being worked off
                await settle(3)
                clock.advance(app.settings.recycle_interval)
        async with asyncio.timeout(5):
            done = await asyncio.gather(*results)
        assert done == [(r, i) for r in range(10) for i in range(30)]
        stats = app.get_stats()
        assert stats["recycler"]["workers_recycled_total"]["max_jobs"] >= 5
        assert stats["recycler"]["connections_recycled_total"]["max_uses"] >= 5
        assert stats["workers"]["jobs_completed_total"] == 300
        assert stats["workers"]["deaths_total"] == 0
        assert stats["application"]["jobs_in_flight"] == 0
        await settle()
        assert app.health().healthy
    assert factory.live == []


class FakeWorkers:
    """The worker pool as the recycler sees it, with nothing to recycle."""

    def workers(self) -> Sequence[Any]:
        return []

    def retire(self, worker_id: int, reason: str) -> bool:
        return False


class FakePool:
    """The connection pool as the recycler sees it; ``broken`` makes every sweep fail."""

    def __init__(self) -> None:
        self.broken = False
        self.maintained = 0

    def connections(self) -> Sequence[Any]:
        if self.broken:
            raise RuntimeError("pool bookkeeping broken")
        return []

    def retire(self, conn_id: int, reason: str) -> bool:
        return False

    def maintain(self) -> None:
        self.maintained += 1


async def test_health_is_unhealthy_when_stopped(clock: FakeClock) -> None:
    """The recycler is unhealthy before start and after stop, healthy while sweeping."""
    recycler = Recycler(FakeWorkers(), FakePool(), clock, interval=1.0)
    assert recycler.health().reason == "recycler sweep loop is not running"
    await recycler.start()
    assert recycler.health().healthy
    assert recycler.stats()["running"]
    await recycler.stop()
    assert not recycler.health().healthy
    assert not recycler.stats()["running"]


async def test_failing_sweeps_make_it_unhealthy_after_three_missed_intervals(
    clock: FakeClock,
) -> None:
    """Sweeps that keep failing are counted; past three intervals the recycler is unhealthy."""
    pool = FakePool()
    recycler = Recycler(FakeWorkers(), pool, clock, interval=1.0)
    await recycler.start()
    pool.broken = True
    for n in range(1, 4):
        await until(lambda: clock.sleepers == 1)
        clock.advance(1.0)
        await until(lambda n=n: recycler.sweep_errors_total == n)  # type: ignore[misc]
        assert recycler.health().healthy
    await until(lambda: clock.sleepers == 1)
    clock.advance(0.5)
    verdict = recycler.health()
    assert not verdict.healthy
    assert verdict.reason == "no sweep for 3.5s (interval 1.0s)"
    pool.broken = False
    clock.advance(0.5)
    await until(lambda: recycler.sweeps_total == 1)
    assert recycler.health().healthy
    await recycler.stop()


async def test_a_stalled_loop_is_unhealthy(clock: FakeClock) -> None:
    """If the loop has not swept for more than three intervals the recycler is unhealthy."""
    recycler = Recycler(FakeWorkers(), FakePool(), clock, interval=2.0)
    await recycler.start()
    await until(lambda: clock.sleepers == 1)
    clock.advance(6.0)
    assert recycler.health().healthy  # exactly three intervals: not yet late
    clock.advance(0.1)  # the loop has not had a turn to sweep
    assert not recycler.health().healthy
    await until(lambda: recycler.sweeps_total == 1)
    assert recycler.health().healthy
    await recycler.stop()


async def test_stats_keys_and_sweep_bookkeeping(clock: FakeClock) -> None:
    """stats() has the documented keys; each sweep tops the pool up and is timestamped."""
    pool = FakePool()
    recycler = Recycler(FakeWorkers(), pool, clock, interval=1.0)
    assert recycler.stats()["last_sweep_at"] is None
    await recycler.start()
    await until(lambda: clock.sleepers == 1)
    clock.advance(1.0)
    await until(lambda: recycler.sweeps_total == 1)
    stats = recycler.stats()
    assert set(stats) == STATS_KEYS
    assert stats == {
        "running": True,
        "interval_seconds": 1.0,
        "sweeps_total": 1,
        "sweep_errors_total": 0,
        "last_sweep_at": "2025-12-05T10:30:01Z",
        "sweep_duration_seconds": 0.0,
        "workers_recycled_total": {"max_jobs": 0, "max_age": 0},  # every reason, from 0
        "connections_recycled_total": {"max_uses": 0, "max_age": 0, "idle_timeout": 0},
    }
    assert pool.maintained == 1
    await recycler.stop()

"""Each component made unhealthy for real on a running application: /health tells, then heals.

Every test runs a real ``Application`` with its HTTP API on 127.0.0.1 (port 0) and a
``FakeClock``. Health is computed per request, so the very next request after a fault must
show it: no waiting in real time. A fault is injected the way it happens in production (a
handler raising a ``BaseException``, a factory that hangs or
fails, a check that raises); nothing of the code under test is mocked.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import structlog

from orchestrator import Application, FakeClock, Job
from orchestrator.components.lifecycle import State
from orchestrator.errors import JobFailed, QueueFull, WorkerCrashed
from orchestrator.health import ComponentHealth
from orchestrator.stats import WorkersStats
from tests.fakes import BlockingHandler, FakeFactory, make_app, until
from tests.reliability.probe import Probe

Start = Callable[[Application], Awaitable[Application]]

COMPONENTS = ["registry", "pool", "router", "workers", "lifecycle", "recycler"]


class Crash(BaseException):
    """A fault no worker handles as a job error: it escapes to the worker task itself."""


@pytest.fixture
async def running() -> AsyncIterator[Start]:
    """Start applications with HTTP on a free loopback port; stop them after the test."""
    apps: list[Application] = []

    async def start(app: Application) -> Application:
        await app.start()
        apps.append(app)
        return app

    yield start
    for app in apps:
        await app.stop(timeout=1.0)


def probe_of(app: Application, session: aiohttp.ClientSession) -> Probe:
    assert app.http_url is not None
    return Probe(session, app.http_url)


async def assert_healthy(probe: Probe) -> None:
    """/health, /ready and /live all answer 200."""
    status, body = await probe.get("/health?verbose")
    assert status == 200, body
    assert await probe.status("/ready") == 200
    assert await probe.status("/live") == 200


async def assert_failing(probe: Probe, component: str, reason: str) -> dict[str, Any]:
    """/health and /ready answer 503 naming ``component`` (with ``reason``); /live 200."""
    status, body = await probe.get("/health?verbose")
    assert status == 503, body
    assert body["components"][component] is False
    assert reason in body["checks"][component]["reason"]
    ready_status, ready = await probe.get("/ready")
    assert ready_status == 503
    assert component in ready["reason"]
    one_status, one = await probe.get(f"/health/{component}")
    assert (one_status, one["healthy"]) == (503, False)
    assert await probe.status("/live") == 200
    return dict(body)


# -- (a) workers -----------------------------------------------------------------------------


async def test_crashed_worker_fails_health_until_restarted(
    clock: FakeClock, session: aiohttp.ClientSession, running: Start
) -> None:
    """A worker task that dies makes /health 503 (workers) until the supervisor restarts it.

    The death is a handler raising a ``BaseException``; a worker cancelled from outside is
    not a death (it stops quietly, as when the loop shuts down: see test_workers.py).
    """
    app = make_app(clock, http=True, workers=2, restart_backoff=0.5)

    @app.handler("crash")
    async def crash(job: Job) -> None:
        raise Crash

    await running(app)
    probe = probe_of(app, session)
    await assert_healthy(probe)
    with pytest.raises(WorkerCrashed):
        await app.submit("crash")
    await assert_failing(probe, "workers", "1 of 2 workers alive")
    clock.advance(0.49)  # not yet: the restart waits for its backoff
    await assert_failing(probe, "workers", "1 of 2 workers alive")
    clock.advance(0.01)
    await until(lambda: app.workers.alive() == 2)
    await assert_healthy(probe)
    assert app.lifecycle.restarts_total == 1
    assert await app.submit("echo", "after") == "after"


# -- (b) pool starvation ---------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["connection-held", "connect-hangs"])
async def test_starved_pool_fails_health_for_the_starvation_window(
    clock: FakeClock,
    session: aiohttp.ClientSession,
    running: Start,
    fault: str,
) -> None:
    """An acquire that times out makes /health 503 (pool) for 10 s of clock, then 200."""
    factory = FakeFactory()
    app = make_app(
        clock, http=True, factory=factory, workers=2, pool_max_size=1, pool_acquire_timeout=0.05
    )
    hold = BlockingHandler()
    app.handler("hold", timeout=None)(hold)
    await running(app)
    probe = probe_of(app, session)
    await assert_healthy(probe)
    holder: asyncio.Future[Any] | None = None
    if fault == "connection-held":
        holder = asyncio.ensure_future(app.submit("hold", "held"))
        await until(lambda: len(hold.started) == 1)
    else:
        factory.connect_gate = asyncio.Event()
    with pytest.raises(JobFailed):  # the acquire timed out after 50 ms of real time
        await app.submit("echo", "starved")
    assert app.pool.acquire_timeouts_total == 1
    await assert_failing(probe, "pool", "a waiter timed out for a connection")
    clock.advance(9.9)
    await assert_failing(probe, "pool", "a waiter timed out for a connection")
    clock.advance(0.1)
    await assert_healthy(probe)
    if holder is not None:
        hold.release_all()
        assert await holder == "held"
    else:
        assert factory.connect_gate is not None
        factory.connect_gate.set()
    assert await app.submit("echo", "fed") == "fed"


# -- (c) connection factory failing ----------------------------------------------------------


async def test_failing_factory_fails_health_until_a_connect_succeeds(
    clock: FakeClock, session: aiohttp.ClientSession, running: Start
) -> None:
    """Three failed connects in a row make /health 503 (pool); the next good connect heals it."""
    factory = FakeFactory()
    app = await running(
        make_app(clock, http=True, factory=factory, pool_min_size=1, recycle_interval=1.0)
    )
    probe = probe_of(app, session)
    await assert_healthy(probe)
    factory.fail = True
    (conn,) = app.pool.connections()
    assert app.pool.retire(conn.id, "fault_injected")  # the replacement connect fails: #1
    await until(lambda: app.pool.consecutive_failures == 1)
    for failures in (2, 3):  # each recycler sweep tops the pool up again: #2, #3
        status, _ = await probe.get("/health")
        assert status == 200  # below the threshold of 3
        clock.advance(1.0)
        await until(lambda n=failures: app.pool.consecutive_failures == n)  # type: ignore[misc]
    body = await assert_failing(probe, "pool", "connection factory failed 3 times in a row")
    reason = body["checks"]["pool"]["reason"]
    assert "ConnectionRefusedError" in reason
    assert "secret-password" not in reason  # the error's message may carry credentials
    factory.fail = False
    clock.advance(1.0)
    await until(lambda: app.pool.consecutive_failures == 0)
    await assert_healthy(probe)
    assert len(app.pool.connections()) == 1


# -- (d) recycler ----------------------------------------------------------------------------


async def test_stopped_recycler_fails_health_until_restarted(
    clock: FakeClock, session: aiohttp.ClientSession, running: Start
) -> None:
    """A stopped recycler loop makes /health 503 (recycler); starting it again heals it."""
    app = await running(make_app(clock, http=True))
    probe = probe_of(app, session)
    await assert_healthy(probe)
    await app.recycler.stop()
    await assert_failing(probe, "recycler", "recycler sweep loop is not running")
    await app.recycler.start()
    await assert_healthy(probe)
    clock.advance(1.0)
    await until(lambda: app.recycler.sweeps_total == 1)
    await assert_healthy(probe)


async def test_recycler_missing_three_intervals_fails_health(
    clock: FakeClock, session: aiohttp.ClientSession, running: Start
) -> None:
    """Sweeps that keep failing leave no sweep for > 3 intervals: 503 (recycler), then 200."""
    app = await running(make_app(clock, http=True, recycle_interval=1.0))
    probe = probe_of(app, session)

    def broken_maintain() -> None:
        raise RuntimeError("pool bookkeeping broke")

    app.pool.maintain = broken_maintain  # type: ignore[method-assign]  # the fault
    with structlog.testing.capture_logs() as logs:
        for sweep in (1, 2, 3):
            clock.advance(1.0)
            await until(lambda n=sweep: app.recycler.sweep_errors_total == n)  # type: ignore[misc]
            assert await probe.status("/health") == 200  # 3.0 s late is not > 3 intervals yet
        clock.advance(1.0)
        await until(lambda: app.recycler.sweep_errors_total == 4)
        await assert_failing(probe, "recycler", "no sweep for 4.0s (interval 1.0s)")
        del app.pool.maintain  # the fault is gone
        clock.advance(1.0)
        await until(lambda: app.recycler.sweeps_total == 1)
    await assert_healthy(probe)
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["recycler_sweep_failed"] * 4


# -- (e) router ------------------------------------------------------------------------------


async def test_saturated_router_fails_health_after_the_grace(
    clock: FakeClock, session: aiohttp.ClientSession, running: Start
) -> None:
    """A queue full for half of saturation_grace makes /health 503 (router); draining heals."""
    app = make_app(clock, http=True, workers=1, queue_size=2, saturation_grace=5.0)
    hold = BlockingHandler()
    app.handler("hold", timeout=None)(hold)
    await running(app)
    probe = probe_of(app, session)
    jobs = [asyncio.ensure_future(app.submit("hold", n)) for n in range(3)]
    await until(lambda: len(hold.started) == 1 and len(app.router) == 2)
    with pytest.raises(QueueFull):
        await app.submit("hold", "one too many")
    await assert_healthy(probe)  # full, but not yet for half of the grace period
    clock.advance(2.4)
    await assert_healthy(probe)
    clock.advance(0.1)
    await assert_failing(probe, "router", "queue of 2 full 50% of the last 5s (1 jobs refused)")
    hold.release_all()
    assert await asyncio.gather(*jobs) == [0, 1, 2]
    clock.advance(3.5)  # no longer full for half of the window
    await assert_healthy(probe)


# -- (f) lifecycle ---------------------------------------------------------------------------


async def test_draining_application_fails_health_while_live(
    clock: FakeClock, session: aiohttp.ClientSession
) -> None:
    """During stop() /health is 503 (lifecycle draining), /ready 503, /live 200; restart heals."""
    app = make_app(clock, http=True)
    hold = BlockingHandler()
    app.handler("hold", timeout=None)(hold)
    await app.start()
    probe = probe_of(app, session)
    job = asyncio.ensure_future(app.submit("hold", "in flight"))
    await until(lambda: len(hold.started) == 1)
    stopping = asyncio.ensure_future(app.stop(timeout=30.0))
    await until(lambda: app.state is State.DRAINING)
    status, body = await probe.get("/health?verbose")
    assert status == 503
    lifecycle, router = body["checks"]["lifecycle"], body["checks"]["router"]
    assert (lifecycle["healthy"], lifecycle["reason"]) == (False, "application is draining")
    assert (router["healthy"], router["reason"]) == (False, "router is not accepting jobs")
    ready_status, ready = await probe.get("/ready")
    assert (ready_status, ready) == (503, {"ready": False, "reason": "draining"})
    assert await probe.status("/live") == 200
    hold.release_all()
    assert await job == "in flight"
    await stopping
    assert app.health().failing() == {
        "lifecycle": "application is stopped",
        "router": "router is not accepting jobs",
        "workers": "workers are not running",
        "recycler": "recycler sweep loop is not running",
    }
    await app.start()  # a stopped application can start again, and is healthy
    try:
        await assert_healthy(probe_of(app, session))
    finally:
        await app.stop(timeout=1.0)


# -- a health check that raises --------------------------------------------------------------


@pytest.mark.parametrize("component", COMPONENTS, ids=COMPONENTS)
async def test_health_follows_each_component_never_hard_wired(
    clock: FakeClock,
    session: aiohttp.ClientSession,
    running: Start,
    component: str,
) -> None:
    """A component whose health() raises is false with a reason: /health 503, never 500."""
    app = await running(make_app(clock, http=True))
    probe = probe_of(app, session)
    await assert_healthy(probe)
    target = app.components()[component]

    def broken() -> ComponentHealth:
        raise RuntimeError("check exploded")

    target.health = broken  # type: ignore[method-assign]  # the fault under test
    body = await assert_failing(probe, component, "health check raised RuntimeError")
    assert [name for name, ok in body["components"].items() if not ok] == [component]
    async with session.get(f"{app.http_url}/metrics") as resp:
        text = await resp.text()
    assert resp.status == 200
    assert f'orchestrator_component_healthy{{component="{component}"}} 0.0' in text
    assert "orchestrator_healthy 0.0" in text
    del target.health  # the fault is gone
    await assert_healthy(probe)


# -- get_stats() raising ---------------------------------------------------------------------


async def test_stats_failure_is_a_fast_500_while_health_answers(
    clock: FakeClock, session: aiohttp.ClientSession, running: Start
) -> None:
    """get_stats() raising: /stats 500 stats_unavailable in < 10 ms; /health and /live 200."""
    app = await running(make_app(clock, http=True))
    probe = probe_of(app, session)
    await assert_healthy(probe)  # also opens the keep-alive connection

    def broken() -> WorkersStats:
        raise RuntimeError("stats exploded: secret-password")

    app.workers.stats = broken  # type: ignore[method-assign]  # the fault under test
    with pytest.raises(RuntimeError):
        app.get_stats()
    durations: list[float] = []
    with structlog.testing.capture_logs() as logs:
        for _ in range(5):
            started = time.perf_counter()
            status, body = await probe.get("/stats")
            durations.append(time.perf_counter() - started)
            assert status == 500
            assert body["error"] == "stats_unavailable"
            assert "secret-password" not in str(body)
        assert (await probe.get("/metrics"))[0] == 500
        assert (await probe.get("/stats/workers"))[0] == 500
        await assert_healthy(probe)
    assert statistics.median(durations) < 0.010, durations
    print(f"/stats 500 in {[round(d * 1000, 2) for d in durations]} ms")  # for the docs
    assert "secret-password" not in repr(logs)
    assert sum(e["event"] == "stats_unavailable" for e in logs) == 7
    del app.workers.stats
    assert (await probe.get("/stats"))[0] == 200

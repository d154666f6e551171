"""Application: typed errors, lifecycle, graceful stop, stats and health aggregation."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import subprocess
import sys
import time
from typing import Any

import orjson
import pytest
import structlog

from orchestrator import (
    Application,
    ComponentHealth,
    ConfigError,
    CoreSettings,
    FakeClock,
    Job,
    JobFailed,
    JobTimeout,
    NotRunning,
    OrchestratorError,
    QueueFull,
    StartFailed,
    UnknownJobKind,
)
from orchestrator.components.lifecycle import State
from tests.fakes import BlockingHandler, FakeConnection, FakeFactory, make_app, settle, until

COMPONENTS = ["registry", "pool", "router", "workers", "lifecycle", "recycler"]
APPLICATION_KEYS = {"name", "version", "pid", "state", "started_at", "uptime_seconds",
                    "jobs_in_flight", "event_loop_lag_seconds", "event_loop_lag_max_seconds",
                    "event_loop_blocked_total", "log_level", "log_level_reverts_at",
                    "event_subscribers", "gc"}  # fmt: skip


async def test_submit_returns_the_handler_result(app: Application) -> None:
    """submit() runs the handler of the kind and returns what it returned."""
    assert await app.submit("echo", {"n": 1}) == {"n": 1}
    assert await app.submit("echo") is None


async def test_jobs_get_increasing_ids_and_their_payload(clock: FakeClock) -> None:
    """Each job carries its own id, kind, payload and first attempt number."""
    app = make_app(clock)
    seen: list[tuple[int, str, Any, int]] = []

    @app.handler("record")
    async def record(job: Job) -> None:
        seen.append((job.id, job.kind, job.payload, job.attempt))

    async with app:
        await app.submit("record", "a")
        await app.submit("record", "b")
    assert seen == [(1, "record", "a", 1), (2, "record", "b", 1)]


async def test_jobs_see_a_pooled_connection(clock: FakeClock, factory: FakeFactory) -> None:
    """With a connection factory every job gets a connection from the pool."""
    app = make_app(clock, factory, pool_min_size=1, pool_max_size=1)

    @app.handler("conn")
    async def conn(job: Job) -> Any:
        return job.connection

    async with app:
        got = await app.submit("conn")
    assert isinstance(got, FakeConnection)
    assert got is factory.opened[0]
    assert factory.live == []  # closed at stop


async def test_unknown_kind_raises_unknown_job_kind(app: Application) -> None:
    """Submitting a kind without handler raises UnknownJobKind and queues nothing."""
    with pytest.raises(UnknownJobKind, match="'missing'"):
        await app.submit("missing")
    assert app.get_stats()["router"]["routed_total"] == 0


async def test_a_full_queue_raises_queue_full(clock: FakeClock) -> None:
    """With every worker busy and the queue at capacity, submit() raises QueueFull."""
    app = make_app(clock, workers=1, queue_size=1)
    blocker = BlockingHandler()
    app.handler("block")(blocker)
    async with app:
        running = asyncio.ensure_future(app.submit("block", 1))
        await until(lambda: len(blocker.started) == 1)
        queued = asyncio.ensure_future(app.submit("block", 2))
        await until(lambda: app.get_stats()["router"]["queued"] == 1)
        with pytest.raises(QueueFull):
            await app.submit("block", 3)
        assert app.get_stats()["router"]["rejected_total"] == 1
        assert app.get_stats()["registry"]["kinds"]["block"]["submitted_total"] == 2
        blocker.release_all()
        assert list(await asyncio.gather(running, queued)) == [1, 2]


async def test_a_failing_handler_raises_job_failed_with_cause(app: Application) -> None:
    """A handler error reaches the submitter as JobFailed whose __cause__ is the error."""

    @app.handler("fail")
    async def fail(job: Job) -> None:
        raise KeyError("missing thing")

    with pytest.raises(JobFailed) as info:
        await app.submit("fail")
    assert isinstance(info.value.__cause__, KeyError)
    assert isinstance(info.value, OrchestratorError)


async def test_a_slow_handler_raises_job_timeout(app: Application) -> None:
    """A handler past its timeout reaches the submitter as JobTimeout."""
    never = asyncio.Event()

    @app.handler("slow", timeout=0.01)
    async def slow(job: Job) -> None:
        await never.wait()

    with pytest.raises(JobTimeout):
        await app.submit("slow")
    assert app.get_stats()["registry"]["kinds"]["slow"]["timed_out_total"] == 1


async def test_submit_before_start_raises_not_running(clock: FakeClock) -> None:
    """An application that was never started refuses jobs with NotRunning."""
    app = make_app(clock)
    with pytest.raises(NotRunning, match="created"):
        await app.submit("echo")


async def test_submit_after_stop_raises_not_running(clock: FakeClock) -> None:
    """A stopped application refuses jobs with NotRunning."""
    app = make_app(clock)
    await app.start()
    await app.stop()
    with pytest.raises(NotRunning, match="stopped"):
        await app.submit("echo")


@pytest.mark.parametrize(
    "settings",
    [
        {"workers": -1},
        {"workers": 0},
        {"queue_size": 0},
        {"pool_min_size": -1},
        {"pool_max_size": 0},
        {"pool_min_size": 3, "pool_max_size": 2},
        {"workers": "4"},
        {"workers": True},
        {"recycle_interval": 0},
        {"pool_acquire_timeout": float("inf")},
        {"bogus": 1},
    ],
    ids=[
        "negative-workers",
        "zero-workers",
        "zero-queue",
        "negative-pool-min",
        "zero-pool-max",
        "min-above-max",
        "string-workers",
        "bool-workers",
        "zero-interval",
        "infinite-timeout",
        "unknown-kwarg",
    ],
)
def test_invalid_settings_raise_config_error(settings: dict[str, Any]) -> None:
    """Invalid or unknown settings raise ConfigError before anything starts."""
    with pytest.raises(ConfigError):
        Application(**settings)


def test_keyword_settings_override_a_settings_object() -> None:
    """Keyword settings override the given CoreSettings; the object itself is unchanged."""
    base = CoreSettings(workers=3, queue_size=10)
    app = Application(base, workers=5)
    assert (app.settings.workers, app.settings.queue_size) == (5, 10)
    assert base.workers == 3


async def test_async_with_starts_and_stops(clock: FakeClock) -> None:
    """`async with` runs the application inside the block and stops it after."""
    app = make_app(clock)
    seen: list[tuple[State, bool]] = []
    async with app as running:
        assert running is app
        seen.append((app.state, app.is_healthy()))
    seen.append((app.state, app.is_healthy()))
    assert seen == [(State.RUNNING, True), (State.STOPPED, False)]


async def test_start_twice_raises_and_stop_is_idempotent(app: Application) -> None:
    """A running application cannot start again; stop() twice is harmless."""
    with pytest.raises(NotRunning, match="running"):
        await app.start()
    await app.stop()
    await app.stop()
    assert app.state is State.STOPPED


async def test_stop_before_start_does_nothing(clock: FakeClock) -> None:
    """stop() on an application that never started returns at once."""
    app = make_app(clock)
    await app.stop()
    assert app.state is State.CREATED


async def test_a_stopped_application_can_start_again(clock: FakeClock) -> None:
    """After stop(), start() brings the application back with its handlers."""
    app = make_app(clock)
    async with app:
        assert await app.submit("echo", 1) == 1
    async with app:
        assert await app.submit("echo", 2) == 2
        assert app.is_healthy()


async def test_concurrent_stops_share_one_stop(app: Application) -> None:
    """Two concurrent stop() calls both return once the one shared stop is done."""
    await asyncio.gather(app.stop(), app.stop())
    assert app.state is State.STOPPED


async def test_stop_waits_for_jobs_then_fails_the_rest(clock: FakeClock) -> None:
    """At stop, jobs finishing before the deadline deliver; running and queued ones fail."""
    app = make_app(clock, workers=1)
    blocker = BlockingHandler()
    app.handler("block")(blocker)
    await app.start()
    first = asyncio.ensure_future(app.submit("block", "first"))  # job 1, running
    second = asyncio.ensure_future(app.submit("block", "second"))  # job 2, runs next
    third = asyncio.ensure_future(app.submit("block", "third"))  # job 3, stays queued
    await until(lambda: blocker.started_ids == [1])
    async with asyncio.timeout(5):  # nothing hangs
        stopping = asyncio.ensure_future(app.stop(timeout=0.05))
        await until(lambda: app.state is State.DRAINING)
        with pytest.raises(NotRunning):
            await app.submit("block", "late")
        assert app.get_stats()["application"]["jobs_in_flight"] == 3
        blocker.release_job(1)
        assert await first == "first"
        await until(lambda: blocker.started_ids == [1, 2])
        await stopping
        with pytest.raises(NotRunning, match="cancelled at shutdown"):
            await second
        with pytest.raises(NotRunning, match="stopped before the job ran"):
            await third
    assert app.state is State.STOPPED
    assert app.get_stats()["application"]["jobs_in_flight"] == 0
    assert app.get_stats()["workers"]["jobs_completed_total"] == 1


async def test_stop_returns_early_when_jobs_finish(clock: FakeClock) -> None:
    """stop() with a generous timeout returns as soon as the jobs in flight are done."""
    app = make_app(clock, workers=2)
    blocker = BlockingHandler()
    app.handler("block")(blocker)
    await app.start()
    jobs = [asyncio.ensure_future(app.submit("block", n)) for n in range(4)]
    await until(lambda: len(blocker.started) == 2)
    stopping = asyncio.ensure_future(app.stop(timeout=60))
    await settle()
    assert not stopping.done()
    blocker.release_all()
    async with asyncio.timeout(5):
        assert list(await asyncio.gather(*jobs)) == [0, 1, 2, 3]
        await stopping
    assert app.state is State.STOPPED


async def test_a_failed_start_rolls_back_and_leaves_state_failed(clock: FakeClock) -> None:
    """If the pool cannot open min connections, start raises, stops what started, fails."""
    factory = FakeFactory(fail=True)
    app = make_app(clock, factory, pool_min_size=1)
    events: list[str] = []
    registry_stop = app.registry.stop

    async def recording_stop() -> None:
        events.append("stop:registry")
        await registry_stop()

    app.registry.stop = recording_stop  # type: ignore[method-assign]
    with pytest.raises(StartFailed, match="could not open 1 connections") as info:
        await app.start()
    assert isinstance(info.value.__cause__, ConnectionError)
    assert events == ["stop:registry"]
    assert app.state is State.FAILED
    states = [t["state"] for t in app.get_stats()["lifecycle"]["transitions"]]
    assert states == ["created", "starting", "failed"]
    assert app.get_stats()["workers"]["workers"] == []
    assert not app.router.accepting
    assert not app.is_healthy()
    with pytest.raises(NotRunning):
        await app.submit("echo")
    await app.stop()  # nothing to stop: harmless
    factory.fail = False
    async with app:  # a later start can succeed
        assert await app.submit("echo", "ok") == "ok"


async def test_get_stats_has_every_section_and_serialises(app: Application) -> None:
    """get_stats() has the application and component sections and is orjson-serialisable."""
    await app.submit("echo", 1)
    stats = app.get_stats()
    core = {"application", *COMPONENTS}
    assert core <= set(stats)
    assert set(stats) - core <= {"http"}  # the HTTP layer's own section, when wired in
    assert set(stats["application"]) == APPLICATION_KEYS
    assert stats["application"]["state"] == "running"
    assert stats["application"]["started_at"] == "2025-12-05T10:30:00Z"
    assert orjson.loads(orjson.dumps(stats)) == stats


async def test_get_stats_before_start_is_serialisable(clock: FakeClock) -> None:
    """An application that never started still reports complete stats."""
    stats = make_app(clock).get_stats()
    assert stats["application"]["state"] == "created"
    assert stats["application"]["started_at"] is None
    assert stats["application"]["uptime_seconds"] == 0.0
    orjson.dumps(stats)


async def test_health_reports_the_six_components(app: Application) -> None:
    """health() has exactly the six components, all healthy while running."""
    report = app.health()
    assert list(report.components) == COMPONENTS
    assert report.healthy
    assert report.failing() == {}
    assert report.timestamp == app.clock.wall()
    assert list(report.to_dict()["components"]) == COMPONENTS


async def test_health_before_start_names_the_failing_components(clock: FakeClock) -> None:
    """Before start the lifecycle, router, workers and recycler say why they are unhealthy."""
    report = make_app(clock).health()
    assert not report.healthy
    assert set(report.failing()) == {"router", "workers", "lifecycle", "recycler"}


async def test_a_raising_health_check_counts_as_unhealthy(
    app: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A component whose health() raises is unhealthy with the error as reason."""

    def broken() -> ComponentHealth:
        raise RuntimeError("probe exploded")

    monkeypatch.setattr(app.pool, "health", broken)
    report = app.health()
    assert not report.healthy
    assert report.failing() == {"pool": "health check raised RuntimeError"}
    assert all(report.components[n].healthy for n in COMPONENTS if n != "pool")
    assert app.is_healthy() is False


async def test_is_healthy_never_raises(app: Application, monkeypatch: pytest.MonkeyPatch) -> None:
    """is_healthy() answers False even when building the report itself fails."""

    def broken_wall() -> float:
        raise OSError("clock gone")

    monkeypatch.setattr(app.clock, "wall", broken_wall)
    assert app.is_healthy() is False


async def test_components_stop_even_if_the_http_server_fails_to_stop(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing HTTP server stop still stops every component before the error surfaces."""
    app = make_app(clock, enable_http=True, http_host="127.0.0.1", http_port=0)
    await app.start()
    real_stop = app.http_server.stop

    async def failing_stop() -> None:
        raise RuntimeError("cleanup failed")

    monkeypatch.setattr(app.http_server, "stop", failing_stop)
    try:
        with pytest.raises(Exception):  # noqa: B017, PT011 - any error, as long as it surfaces
            await app.stop()
        assert app.state is State.STOPPED
        assert not app.recycler.stats()["running"]
        assert app.get_stats()["workers"]["workers"] == []
    finally:  # what stop() should have done: leave no task running behind the test
        await real_stop()
        for component in reversed(app.components().values()):
            await component.stop()


async def test_a_failing_http_stop_is_logged_and_raised_with_the_others(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An HTTP server that fails to stop is logged, and its error is raised in the stop's
    group once the monitors and every component have stopped."""
    app = make_app(clock, enable_http=True, http_host="127.0.0.1", http_port=0)
    await app.start()
    real_stop = app.http_server.stop

    async def failing_stop() -> None:
        await real_stop()
        raise RuntimeError("cleanup failed")

    monkeypatch.setattr(app.http_server, "stop", failing_stop)
    with structlog.testing.capture_logs() as logs, pytest.raises(ExceptionGroup) as info:
        await app.stop()
    assert [str(e) for e in info.value.exceptions] == ["cleanup failed"]
    failed = [e for e in logs if e["event"] == "component_stop_failed"]
    assert [(e["component"], e["log_level"]) for e in failed] == [("http", "error")]
    stopped = [e["component"] for e in logs if e["event"] == "component_stopped"]
    assert stopped == ["recycler", "workers", "router", "pool", "registry"]
    assert app.monitors.gc_pauses not in gc.callbacks
    assert app.state is State.STOPPED


def test_http_disabled_imports_no_http_library() -> None:
    """`import orchestrator` and an application without HTTP load neither aiohttp nor
    prometheus_client (checked in a fresh interpreter)."""
    code = (
        "import sys, orchestrator\n"
        "app = orchestrator.Application()\n"
        "print(app.get_stats()['http'])\n"
        "print(sorted(m for m in ('aiohttp', 'prometheus_client') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.splitlines()  # fmt: skip
    assert out == ["{'state': 'disabled'}", "[]"]


async def test_gc_freeze_freezes_after_start_and_unfreezes_at_stop(clock: FakeClock) -> None:
    """gc_freeze=True moves start-up objects to the permanent generation until stop()."""
    import gc

    app = make_app(clock, gc_freeze=True)
    await app.start()
    try:
        assert gc.get_freeze_count() > 0
    finally:
        await app.stop(timeout=1.0)
    assert gc.get_freeze_count() == 0


def test_a_loop_shutting_down_without_stop_is_no_worker_death(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """asyncio.run cancelling every task after an error: workers stop quietly, none restarts.

    No ``worker_died`` at error, no restart scheduled, so no "Task was destroyed but it is
    pending" when the loop closes.
    """

    app = Application(workers=3)
    app.handler("echo")(echo_handler)

    async def main() -> None:
        await app.start()
        assert await app.submit("echo", 1) == 1
        raise RuntimeError("the program around the application failed")

    try:
        with structlog.testing.capture_logs() as logs, caplog.at_level(logging.DEBUG, "asyncio"):
            with pytest.raises(RuntimeError, match="program around"):
                asyncio.run(main())
            gc.collect()
    finally:  # the process-wide collector settings an abandoned application keeps
        app.monitors.gc_policy.undo()
        app.monitors.gc_pauses.uninstall()
    assert [e for e in logs if e["event"] in ("worker_died", "worker_restart_scheduled")] == []
    assert [e for e in logs if e["log_level"] == "error"] == []
    assert "Task was destroyed" not in caplog.text


async def echo_handler(job: Job) -> Any:
    return job.payload


async def test_stop_returns_in_time_when_a_handler_never_yields_to_cancellation(
    clock: FakeClock,
) -> None:
    """stop(timeout) returns within its timeout plus the workers' stop grace (1 s).

    The handler swallows every cancellation; stop() abandons it with a logged stack, and its
    submitter gets NotRunning.
    """
    app = make_app(clock, workers=1)
    release = asyncio.Event()
    started = asyncio.Event()

    @app.handler("stubborn", timeout=None)
    async def stubborn(job: Job) -> Any:
        started.set()
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await release.wait()
        return "never seen"

    await app.start()
    job = asyncio.ensure_future(app.submit("stubborn"))
    await started.wait()
    with structlog.testing.capture_logs() as logs:
        began = time.monotonic()
        await app.stop(timeout=0.2)
        took = time.monotonic() - began
    assert 0.2 <= took < 0.2 + 1.0 + 0.5, took
    with pytest.raises(NotRunning, match="refused to stop"):
        await job
    events = [e["event"] for e in logs]
    assert "stop_timeout_expired" in events
    assert "worker_abandoned" in events
    assert app.state is State.STOPPED
    release.set()  # let the abandoned coroutine end before the test's loop closes
    await settle()

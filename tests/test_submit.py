"""Submitting: ``submit_nowait`` gives a future or refuses at once; ``submit`` awaits it."""

from __future__ import annotations

import asyncio

import pytest
import structlog

from orchestrator import (
    Application,
    FakeClock,
    JobFailed,
    NotRunning,
    Overloaded,
    QueueFull,
    UnknownJobKind,
)
from tests.fakes import BlockingHandler, make_app, standing_queue, until


async def test_submit_nowait_gives_the_future_of_the_outcome(app: Application) -> None:
    """No await needed to submit: the future resolves to the handler's result."""
    future = app.submit_nowait("echo", {"n": 1})
    assert isinstance(future, asyncio.Future)
    assert not future.done()
    assert await future == {"n": 1}


async def test_a_failure_reaches_the_future(clock: FakeClock) -> None:
    """The handler's error is the future's, as JobFailed with the cause."""
    app = make_app(clock)

    @app.handler("boom")
    async def boom(job: object) -> None:
        raise ValueError("no")

    async with app:
        with pytest.raises(JobFailed) as failed:
            await app.submit_nowait("boom")
    assert isinstance(failed.value.__cause__, ValueError)


async def test_refusals_are_raised_at_once(clock: FakeClock) -> None:
    """Not running, an unknown kind, a full queue: raised by the call itself, before any
    job exists; a full queue's error says so, and nothing is logged for it."""
    app = make_app(clock, workers=1, queue_size=1)
    with pytest.raises(NotRunning, match="created"):
        app.submit_nowait("echo")
    hold = BlockingHandler()
    app.handler("hold", timeout=None)(hold)
    await app.start()
    try:
        with pytest.raises(UnknownJobKind):
            app.submit_nowait("nope")
        running = app.submit_nowait("hold", 1)
        await until(lambda: len(hold.started) == 1)
        queued = app.submit_nowait("hold", 2)
        with structlog.testing.capture_logs() as logs, pytest.raises(QueueFull) as refused:
            app.submit_nowait("hold", 3)
        assert refused.value.reason == "queue_full"
        assert "full (1 jobs)" in str(refused.value)
        assert logs == []
        stats = app.get_stats()
        assert stats["router"]["rejected_by_reason"] == {"queue_full": 1, "standing_wait": 0}
        assert stats["registry"]["kinds"]["hold"]["rejected_total"] == 1
        hold.release_all()
        assert list(await asyncio.gather(running, queued)) == [1, 2]
    finally:
        await app.stop(timeout=1.0)


async def test_a_standing_queue_refuses_with_overloaded(clock: FakeClock) -> None:
    """A queue standing over its target refuses with Overloaded, a QueueFull whose reason
    is standing_wait; ``await submit()`` raises the same."""
    app = make_app(clock, workers=1)
    await app.start()
    try:
        finish = await standing_queue(app, clock)
        with pytest.raises(Overloaded) as refused:
            await app.submit("hold", 100)
        assert isinstance(refused.value, QueueFull)
        assert refused.value.reason == "standing_wait"
        assert app.get_stats()["router"]["rejected_by_reason"]["standing_wait"] == 2
        await finish()
    finally:
        await app.stop(timeout=1.0)


async def test_a_job_submitted_then_stopped_gets_not_running(clock: FakeClock) -> None:
    """Nothing is lost: a queued job's future gets NotRunning when the application stops
    before it ran, and so does the running one that the stop cancelled."""
    app = make_app(clock, workers=1)
    hold = BlockingHandler()
    app.handler("hold", timeout=None)(hold)
    await app.start()
    first = app.submit_nowait("hold", 1)
    await until(lambda: len(hold.started) == 1)
    second = app.submit_nowait("hold", 2)
    stopping = asyncio.ensure_future(app.stop(timeout=0.01))
    with pytest.raises(NotRunning):
        await second
    hold.release_all()
    await stopping
    with pytest.raises(NotRunning, match="cancelled at shutdown"):
        first.result()

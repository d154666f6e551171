"""Events logged from the loop's troubles reach every output a user can have.

Each test runs under the three configurations a process meets: ``configure_logging`` in
JSON, in the console format, and structlog left unconfigured (its own console renderer).
``capture_logs`` would replace the renderers, so these tests read the rendered lines.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from orchestrator import FakeClock, JobTimeout, NotRunning
from orchestrator.log import configure_logging
from orchestrator.watchdog import LoopWatchdog
from tests.components.test_worker_timeouts import Stubborn
from tests.components.test_workers import echo, make_rig
from tests.fakes import until

WAIT = 10.0  # seconds a line may take to appear on a busy machine before the test fails


class Tap:
    """A text stream (with a ``buffer`` for bytes) that keeps what is written and tells
    waiters, from any thread, when a line naming an event has arrived."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch | None = None) -> None:
        self.text = ""
        self._changed = threading.Condition()
        self.buffer = self  # configure_logging writes JSON lines as bytes to .buffer
        self._monkeypatch = monkeypatch

    def attach(self) -> None:
        """Unconfigured, structlog prints to ``sys.stdout``: take its place. pytest sets
        ``sys.stdout`` at the start of each test phase, so this runs in the test itself."""
        if self._monkeypatch is not None:
            self._monkeypatch.setattr(sys, "stdout", self)

    def write(self, data: str | bytes) -> int:
        with self._changed:
            self.text += data.decode() if isinstance(data, bytes) else data
            self._changed.notify_all()
        return len(data)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def lines(self, event: str) -> list[str]:
        return [line for line in self.text.splitlines() if event in line]

    def wait_for(self, event: str, count: int = 1) -> bool:
        """Block this thread until ``count`` lines name ``event`` (False after WAIT s)."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.lines(event)) >= count, WAIT)


@pytest.fixture(params=["json", "console", "unconfigured"])
def output(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tap]:
    """Where the lines go, under each configuration (structlog is reset around each test)."""
    if request.param == "unconfigured":
        yield Tap(monkeypatch)
        return
    tap = Tap()
    configure_logging(request.param, "info", stream=tap)  # type: ignore[arg-type]
    yield tap


async def test_the_watchdog_logs_every_blocked_episode_and_lives_on(output: Tap) -> None:
    """Three blocked episodes: three event_loop_blocked lines, the thread alive after each."""
    output.attach()
    watchdog = LoopWatchdog(0.05)
    watchdog.start()
    thread = watchdog._thread
    assert thread is not None
    try:
        for episode in range(1, 4):
            # block the loop until the watchdog's line is out: no guess at how long it takes
            assert output.wait_for("event_loop_blocked", episode), output.text
            await until(lambda: not watchdog.blocked)  # the next heartbeat ends the episode
            assert thread.is_alive()
    finally:
        watchdog.stop()
    assert watchdog.blocked_total == 3
    assert "test_log_renderers.py" in output.lines("event_loop_blocked")[0]  # the frames


async def test_a_stuck_worker_is_logged_and_replaced(clock: FakeClock, output: Tap) -> None:
    """worker_stuck is written, and the stuck worker's replacement takes the next job."""
    output.attach()
    stubborn = Stubborn()
    rig = await make_rig(clock, count=1, stuck_grace=0.05)
    rig.register("stubborn", stubborn, timeout=0.05)
    rig.register("echo", echo)
    try:
        with pytest.raises(JobTimeout):
            await rig.submit("stubborn").future
        await until(lambda: rig.workers.stats()["stuck_total"] == 1, turns=100_000)
        assert output.lines("worker_stuck"), output.text
        assert rig.workers.stats()["alive"] == 1
        assert await rig.submit("echo", "next").future == "next"
    finally:
        stubborn.release.set()
        await rig.workers.stop()
        await rig.router.stop()


async def test_an_abandoned_handler_is_logged_and_its_submitter_answered(
    clock: FakeClock, output: Tap
) -> None:
    """stop() logs worker_abandoned, returns within its grace, and the submitter gets
    NotRunning at once (not at the handler's own 30 s timeout)."""
    output.attach()
    stubborn = Stubborn()
    rig = await make_rig(clock, count=1, stop_grace=0.1)
    rig.register("stubborn", stubborn, timeout=30.0)
    env = rig.submit("stubborn")
    await stubborn.started.wait()
    started = time.monotonic()
    try:
        await rig.workers.stop()
        with pytest.raises(NotRunning):
            await asyncio.wait_for(env.future, timeout=WAIT)
        assert time.monotonic() - started < WAIT
        assert output.lines("worker_abandoned"), output.text
        assert rig.workers.stats()["abandoned_total"] == 1
    finally:
        stubborn.release.set()
        await stubborn.returned.wait()
        await rig.router.stop()

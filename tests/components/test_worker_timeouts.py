"""Timeouts and shutdown hold even when a handler ignores its cancellation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from orchestrator import FakeClock, Job, JobTimeout, NotRunning
from tests.components.test_workers import echo, make_rig
from tests.fakes import until


@pytest.fixture
def stubborn() -> Iterator[Stubborn]:
    """A stubborn handler, released at the end whatever happened (or the loop never ends)."""
    handler = Stubborn()
    yield handler
    handler.release.set()


class Stubborn:
    """A handler that swallows every cancellation and waits until released."""

    def __init__(self, *, result: Any = "late") -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.cancellations = 0
        self.result = result
        self.returned = asyncio.Event()

    async def __call__(self, job: Job) -> Any:
        self.started.set()
        while not self.release.is_set():
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancellations += 1  # and carries on regardless
        self.returned.set()
        return self.result


async def test_the_submitter_gets_job_timeout_at_the_deadline(
    clock: FakeClock, stubborn: Stubborn
) -> None:
    """A handler that catches its cancellation and returns later: JobTimeout at the deadline.

    The job counts as timed out at once, never as a success when the handler returns.
    """
    rig = await make_rig(clock, count=1)
    rig.register("stubborn", stubborn, timeout=0.05)
    rig.register("echo", echo)
    started = time.monotonic()
    with pytest.raises(JobTimeout, match=r"timed out after 0\.05s on attempt 1"):
        await rig.submit("stubborn").future
    assert time.monotonic() - started < 1.0
    assert not stubborn.returned.is_set()  # the answer did not wait for the handler
    kind = rig.registry.stats()["kinds"]["stubborn"]
    assert (kind["timed_out_total"], kind["failed_total"], kind["succeeded_total"]) == (1, 1, 0)
    stubborn.release.set()
    await stubborn.returned.wait()
    assert await rig.submit("echo", "next").future == "next"  # the same worker goes on
    kind = rig.registry.stats()["kinds"]["stubborn"]
    assert (kind["timed_out_total"], kind["succeeded_total"]) == (1, 0)
    assert rig.workers.stats()["jobs_completed_total"] == 1  # the echo only
    await rig.workers.stop()
    await rig.router.stop()


async def test_a_worker_stuck_past_the_grace_is_replaced_and_named(
    clock: FakeClock, stubborn: Stubborn
) -> None:
    """Still running past deadline + grace: the worker shows as stuck and is replaced.

    The log names the stuck coroutine with its stack; capacity is not lost.
    """
    rig = await make_rig(clock, count=1, stuck_grace=0.05)
    rig.register("stubborn", stubborn, timeout=0.05)
    rig.register("echo", echo)
    with structlog.testing.capture_logs() as logs:
        with pytest.raises(JobTimeout):
            await rig.submit("stubborn").future
        await until(lambda: rig.workers.stats()["stuck"] == 1, turns=100_000)
    (stuck,) = [e for e in logs if e["event"] == "worker_stuck"]
    assert stuck["log_level"] == "error"
    assert stuck["kind"] == "stubborn"
    assert any(line.endswith(" __call__") and "test_worker_timeouts.py" in line
               for line in stuck["frames"])  # fmt: skip
    stats = rig.workers.stats()
    (entry,) = [w for w in stats["workers"] if w["state"] == "stuck"]
    assert entry["current_job"] is not None
    assert (entry["current_job"]["id"], entry["current_job"]["kind"]) == (1, "stubborn")
    assert (stats["alive"], stats["stuck_total"]) == (1, 1)
    assert rig.workers.health().healthy  # replaced: no capacity lost
    assert await rig.submit("echo", "on the replacement").future == "on the replacement"
    stubborn.release.set()
    await until(lambda: rig.workers.stats()["stuck"] == 0)  # it left once it returned
    assert rig.registry.stats()["kinds"]["stubborn"]["timed_out_total"] == 1
    await rig.workers.stop()
    await rig.router.stop()


async def test_a_stuck_earlier_attempt_ends_the_job_at_the_grace(
    clock: FakeClock, stubborn: Stubborn
) -> None:
    """With retries left, a handler refusing cancellation cannot be retried: JobTimeout."""
    rig = await make_rig(clock, count=1, stuck_grace=0.05)
    rig.register("stubborn", stubborn, timeout=0.05, retries=2)
    started = time.monotonic()
    with pytest.raises(JobTimeout, match="on attempt 1"):
        await rig.submit("stubborn").future
    assert time.monotonic() - started < 1.0
    assert rig.registry.stats()["kinds"]["stubborn"]["timed_out_total"] == 1
    stubborn.release.set()
    await rig.workers.stop()
    await rig.router.stop()


@pytest.mark.parametrize("timeout", [None, 30.0], ids=["no-timeout", "long-timeout"])
async def test_stop_returns_within_its_grace_and_abandons_a_stubborn_handler(
    clock: FakeClock, stubborn: Stubborn, timeout: float | None
) -> None:
    """stop() gives up on a handler that refuses to stop: logged with its stack, NotRunning."""
    rig = await make_rig(clock, count=2, stop_grace=0.1)
    rig.register("stubborn", stubborn, timeout=timeout)
    env = rig.submit("stubborn")
    await stubborn.started.wait()
    with structlog.testing.capture_logs() as logs:
        started = time.monotonic()
        await rig.workers.stop()
        took = time.monotonic() - started
    assert took < 1.0
    with pytest.raises(NotRunning, match="refused to stop"):
        await env.future
    (abandoned,) = [e for e in logs if e["event"] == "worker_abandoned"]
    assert abandoned["job_id"] == 1
    assert any("test_worker_timeouts.py" in line for line in abandoned["frames"])
    assert rig.workers.stats()["abandoned_total"] == 1
    assert stubborn.cancellations >= 1
    stubborn.release.set()  # let the test's loop end cleanly
    await stubborn.returned.wait()
    await rig.router.stop()

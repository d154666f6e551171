"""WorkerPool: running handlers, retries, timeouts, crashes, retirement and health."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog

from orchestrator import FakeClock, Job, JobFailed, JobTimeout, NotRunning, WorkerCrashed
from orchestrator.components.pool import ConnectionPool
from orchestrator.components.registry import Registry
from orchestrator.components.router import Router
from orchestrator.components.workers import WorkerPool
from orchestrator.job import Envelope, Handler
from orchestrator.log_level import LEVEL
from tests.fakes import BlockingHandler, FakeConnection, FakeFactory, make_envelope, settle, until

STATS_KEYS = {
    "count",
    "alive",
    "busy",
    "idle",
    "stuck",
    "jobs_completed_total",
    "jobs_failed_total",
    "deaths_total",
    "stuck_total",
    "abandoned_total",
    "workers",
    "workers_omitted",
    "adaptive_limit",
    "in_progress_limit",
    "in_progress",
    "limit_floor",
    "limit_keep",
    "lag_target_seconds",
    "lag_seconds",
    "loop_busy",
    "limit_lowered_total",
}
WORKER_KEYS = {"id", "state", "jobs_total", "failed_total", "current_job", "age_seconds",
               "last_error"}  # fmt: skip


class Killed(BaseException):
    """Not an Exception: kills the worker that runs the handler raising it."""


@dataclass
class Rig:
    """Real router, registry and pool around the worker pool under test."""

    clock: FakeClock
    router: Router
    registry: Registry
    pool: ConnectionPool
    workers: WorkerPool
    deaths: list[tuple[int, BaseException]] = field(default_factory=list)
    ids: int = 0

    def submit(self, kind: str, payload: Any = None) -> Envelope:
        """Queue a job of ``kind`` the way Application.submit does; return its envelope."""
        self.ids += 1
        spec = self.registry.lookup(kind)
        env = make_envelope(
            self.clock, self.ids, kind=kind, handler=spec.handler, timeout=spec.timeout,
            retries=spec.retries, payload=payload,
        )  # fmt: skip
        self.router.put(env)
        self.registry.record_submitted(kind)
        return env

    def register(self, kind: str, handler: Handler, **options: Any) -> None:
        self.registry.register(kind, handler, **options)


async def make_rig(
    clock: FakeClock,
    *,
    count: int = 2,
    factory: FakeFactory | None = None,
    stuck_grace: float = 5.0,
    stop_grace: float = 1.0,
) -> Rig:
    router = Router(100, clock)
    registry = Registry()
    pool = ConnectionPool(factory, clock, max_size=count)
    deaths: list[tuple[int, BaseException]] = []
    workers = WorkerPool(
        router, registry, pool, clock, count=count, stuck_grace=stuck_grace,
        stop_grace=stop_grace, on_death=lambda wid, exc: deaths.append((wid, exc)),
    )  # fmt: skip
    for component in (router, pool, workers):
        await component.start()
    return Rig(clock, router, registry, pool, workers, deaths)


@pytest.fixture
async def rig(clock: FakeClock) -> AsyncIterator[Rig]:
    """Two workers over a real router, registry and a pool without factory."""
    r = await make_rig(clock)
    yield r
    await r.workers.stop()
    await r.router.stop()
    await r.pool.stop()


async def echo(job: Job) -> Any:
    return job.payload


async def test_a_job_runs_and_delivers_its_result(rig: Rig) -> None:
    """A submitted job runs its handler and its result reaches the submitter."""
    rig.register("echo", echo)
    assert await rig.submit("echo", {"x": 1}).future == {"x": 1}
    stats = rig.workers.stats()
    assert stats["jobs_completed_total"] == 1
    assert rig.registry.stats()["kinds"]["echo"]["succeeded_total"] == 1


async def test_a_handler_exception_fails_the_job_not_the_worker(rig: Rig) -> None:
    """A handler error becomes JobFailed with the error as __cause__; the worker lives on."""
    boom = ValueError("boom")

    async def failing(job: Job) -> Any:
        raise boom

    rig.register("fail", failing)
    rig.register("echo", echo)
    ids_before = [w.id for w in rig.workers.workers()]
    with pytest.raises(JobFailed, match="failed on attempt 1: ValueError") as info:
        await rig.submit("fail").future
    assert info.value.__cause__ is boom
    assert await rig.submit("echo", 2).future == 2
    assert [w.id for w in rig.workers.workers()] == ids_before
    stats = rig.workers.stats()
    assert (stats["deaths_total"], stats["jobs_failed_total"], stats["alive"]) == (0, 1, 2)
    (failed,) = [w for w in stats["workers"] if w["last_error"]]
    assert failed["last_error"] is not None
    assert failed["last_error"]["type"] == "ValueError"
    assert failed["last_error"]["message"] == "boom"
    assert failed["last_error"]["job_id"] == 1
    assert failed["last_error"]["at"].endswith("Z")
    assert rig.workers.health().healthy


async def test_retries_are_attempted_and_counted(rig: Rig) -> None:
    """A job that fails twice then succeeds with retries=2 delivers its result."""
    attempts: list[int] = []

    async def flaky(job: Job) -> Any:
        attempts.append(job.attempt)
        if job.attempt < 3:
            raise RuntimeError("transient")
        return "ok"

    rig.register("flaky", flaky, retries=2)
    assert await rig.submit("flaky").future == "ok"
    assert attempts == [1, 2, 3]
    kind = rig.registry.stats()["kinds"]["flaky"]
    assert (kind["retried_total"], kind["succeeded_total"], kind["failed_total"]) == (2, 1, 0)


async def test_exhausted_retries_fail_with_the_last_error(rig: Rig) -> None:
    """When every attempt fails, JobFailed names the last attempt and chains its error."""

    async def always(job: Job) -> Any:
        raise RuntimeError(f"attempt {job.attempt}")

    rig.register("always", always, retries=1)
    with pytest.raises(JobFailed, match="on attempt 2") as info:
        await rig.submit("always").future
    assert str(info.value.__cause__) == "attempt 2"
    kind = rig.registry.stats()["kinds"]["always"]
    assert (kind["retried_total"], kind["failed_total"]) == (1, 1)


async def test_a_slow_handler_times_out_with_job_timeout(rig: Rig) -> None:
    """A handler past its timeout fails with JobTimeout (cause TimeoutError), counted."""
    never = asyncio.Event()

    async def stuck(job: Job) -> Any:
        await never.wait()

    rig.register("stuck", stuck, timeout=0.01)
    rig.register("echo", echo)
    with pytest.raises(JobTimeout, match=r"timed out after 0\.01s on attempt 1") as info:
        await rig.submit("stuck").future
    assert isinstance(info.value, JobFailed)
    assert isinstance(info.value.__cause__, TimeoutError)
    assert rig.registry.stats()["kinds"]["stuck"]["timed_out_total"] == 1
    assert await rig.submit("echo", "still alive").future == "still alive"


@pytest.mark.parametrize("timeout", [None, 5.0], ids=["no-timeout", "with-timeout"])
async def test_a_handler_raising_timeout_error_is_a_failure_not_a_timeout(
    rig: Rig, timeout: float | None
) -> None:
    """A TimeoutError the handler raises itself is JobFailed with that error as __cause__."""
    own = TimeoutError("backend timed out")

    async def raises(job: Job) -> Any:
        raise own

    rig.register("raises", raises, timeout=timeout)
    with pytest.raises(JobFailed) as info:
        await rig.submit("raises").future
    assert type(info.value) is JobFailed
    assert info.value.__cause__ is own
    assert rig.registry.stats()["kinds"]["raises"]["timed_out_total"] == 0


async def test_jobs_get_a_pooled_connection(clock: FakeClock, factory: FakeFactory) -> None:
    """With a pool, each job sees a connection in job.connection, released afterwards."""
    rig = await make_rig(clock, count=1, factory=factory)
    seen: list[Any] = []

    async def uses(job: Job) -> Any:
        seen.append(job.connection)
        return None

    rig.register("uses", uses)
    for _ in range(2):
        await rig.submit("uses").future
    assert len(seen) == 2
    assert isinstance(seen[0], FakeConnection)
    assert seen[0] is seen[1]
    assert rig.pool.stats()["idle"] == 1
    await rig.workers.stop()
    await rig.pool.stop()


async def test_a_connection_error_closes_and_replaces_the_connection(
    clock: FakeClock, factory: FakeFactory
) -> None:
    """A handler raising ConnectionError fails the job and its connection is closed."""
    rig = await make_rig(clock, count=1, factory=factory)
    used: list[Any] = []

    async def broken(job: Job) -> Any:
        used.append(job.connection)
        raise ConnectionResetError("peer reset")

    rig.register("broken", broken)
    rig.register("echo", echo)
    with pytest.raises(JobFailed) as info:
        await rig.submit("broken").future
    assert isinstance(info.value.__cause__, ConnectionResetError)
    await settle()
    assert factory.closed == used
    assert await rig.submit("echo", 1).future == 1
    assert len(factory.opened) == 2
    await rig.workers.stop()
    await rig.pool.stop()


async def test_a_killed_worker_fails_its_job_with_worker_crashed(rig: Rig) -> None:
    """A worker that dies mid-job fails that job with WorkerCrashed and reports its death."""
    killer = Killed("kill -9")

    async def kills(job: Job) -> Any:
        raise killer

    rig.register("kill", kills)
    env = rig.submit("kill")
    with pytest.raises(WorkerCrashed, match="died while running job 1") as info:
        await env.future
    assert isinstance(info.value, JobFailed)
    assert info.value.__cause__ is killer
    await until(lambda: len(rig.deaths) == 1)
    stats = rig.workers.stats()
    assert (stats["deaths_total"], stats["alive"]) == (1, 1)
    dead = [w for w in stats["workers"] if w["state"] == "dead"]
    assert len(dead) == 1
    assert dead[0]["last_error"] is not None
    assert dead[0]["last_error"]["type"] == "Killed"
    assert dead[0]["last_error"]["message"] == "the worker died"
    verdict = rig.workers.health()
    assert not verdict.healthy
    assert verdict.reason == "1 of 2 workers alive"
    rig.workers.respawn(rig.deaths[0][0])
    assert rig.workers.health().healthy
    rig.register("echo", echo)
    assert await rig.submit("echo", 3).future == 3


async def test_a_handler_raising_cancelled_error_itself_kills_its_worker(rig: Rig) -> None:
    """A CancelledError the handler raises without being cancelled is a death, restarted."""

    async def raises(job: Job) -> Any:
        raise asyncio.CancelledError

    rig.register("raises", raises)
    with pytest.raises(WorkerCrashed) as info:
        await rig.submit("raises").future
    assert isinstance(info.value.__cause__, asyncio.CancelledError)
    await until(lambda: len(rig.deaths) == 1)


async def test_a_busy_worker_cancelled_from_outside_stops_quietly(rig: Rig) -> None:
    """Cancelled from outside (as when the loop shuts down) is no death: no error, no restart.

    Its job gets NotRunning; the pool honestly reports one worker fewer.
    """
    blocker = BlockingHandler()
    rig.register("block", blocker)
    env = rig.submit("block")
    await until(lambda: len(blocker.started) == 1)
    (victim,) = [w for w in rig.workers.workers() if w.current is env]
    assert victim.task is not None
    with structlog.testing.capture_logs() as logs:
        victim.task.cancel()
        with pytest.raises(NotRunning, match="cancelled at shutdown"):
            await env.future
        await until(lambda: rig.workers.alive() == 1)
    assert [e for e in logs if e["log_level"] in ("error", "warning")] == []
    assert rig.deaths == []
    assert rig.workers.stats()["deaths_total"] == 0
    assert rig.workers.health().reason == "1 of 2 workers alive"


async def test_an_idle_worker_cancelled_from_outside_loses_no_job(rig: Rig) -> None:
    """Cancelling an idle worker leaves the next job to the surviving worker."""
    rig.register("echo", echo)
    await settle()
    victim = rig.workers.workers()[0]
    assert victim.task is not None
    victim.task.cancel()
    await until(lambda: rig.workers.alive() == 1)
    assert await rig.submit("echo", "x").future == "x"
    assert rig.deaths == []


async def test_retiring_an_idle_worker_replaces_it(rig: Rig) -> None:
    """retire() on an idle worker starts its successor and stops the old one."""
    rig.register("echo", echo)
    await settle()
    old = rig.workers.workers()[0]
    assert rig.workers.retire(old.id, "max_age")
    assert not rig.workers.retire(old.id, "again")
    await until(lambda: old.id not in [w.id for w in rig.workers.workers()])
    assert len(rig.workers.workers()) == 2
    assert rig.workers.stats()["deaths_total"] == 0
    assert rig.workers.health().healthy
    assert await rig.submit("echo", 1).future == 1


async def test_a_busy_worker_finishes_its_job_before_retiring(rig: Rig) -> None:
    """A retired busy worker drains: its job completes, then it leaves."""
    blocker = BlockingHandler()
    rig.register("block", blocker)
    env = rig.submit("block", "done")
    await until(lambda: len(blocker.started) == 1)
    (busy,) = [w for w in rig.workers.workers() if w.current is env]
    assert rig.workers.retire(busy.id, "max_jobs")
    assert busy.state == "draining"
    assert rig.workers.alive() == 2  # the successor and the other worker
    blocker.release_all()
    assert await env.future == "done"
    await until(lambda: busy.id not in [w.id for w in rig.workers.workers()])
    assert busy.jobs_total == 1


async def test_retiring_a_worker_just_handed_a_job_loses_no_job(clock: FakeClock) -> None:
    """A job handed to an idle worker that is retired before it runs goes to its successor."""
    rig = await make_rig(clock, count=1)
    rig.register("echo", echo)
    await settle()
    (only,) = rig.workers.workers()
    env = rig.submit("echo", "kept")  # handed to the waiting worker...
    assert rig.workers.retire(only.id, "max_age")  # ...retired before it resumes
    await until(env.future.done)
    assert env.future.result() == "kept"
    await rig.workers.stop()
    await rig.router.stop()


async def test_a_job_handed_to_a_worker_killed_before_it_ran_goes_to_an_idle_worker(
    rig: Rig,
) -> None:
    """A job handed to a worker that dies before resuming runs on another idle worker."""
    rig.register("echo", echo)
    await settle()
    first = rig.workers.workers()[0]
    env = rig.submit("echo", "rerouted")  # handed to the first waiting worker...
    assert first.task is not None
    first.task.cancel()  # ...cancelled before it resumes
    await until(env.future.done)
    assert env.future.result() == "rerouted"
    assert rig.deaths == []


async def test_a_retiring_worker_that_dies_is_not_respawned(rig: Rig) -> None:
    """A draining worker that dies fails its job but is not reported: its successor runs."""
    gate = asyncio.Event()

    async def dies_later(job: Job) -> Any:
        await gate.wait()
        raise Killed("late")

    rig.register("dies", dies_later)
    env = rig.submit("dies")
    await until(lambda: rig.workers.busy() == 1)
    (busy,) = [w for w in rig.workers.workers() if w.current is env]
    rig.workers.retire(busy.id, "max_jobs")
    gate.set()
    with pytest.raises(WorkerCrashed):
        await env.future
    assert rig.deaths == []
    assert len(rig.workers.workers()) == 2
    assert rig.workers.health().healthy


async def test_stop_fails_the_job_in_hand_with_not_running(rig: Rig) -> None:
    """stop() cancels workers; the job each was running gets NotRunning."""
    blocker = BlockingHandler()
    rig.register("block", blocker)
    env = rig.submit("block")
    await until(lambda: len(blocker.started) == 1)
    await rig.workers.stop()
    with pytest.raises(NotRunning, match="cancelled at shutdown"):
        await env.future
    assert rig.workers.stats()["deaths_total"] == 0
    verdict = rig.workers.health()
    assert not verdict.healthy
    assert verdict.reason == "workers are not running"


async def test_stats_describe_each_worker(rig: Rig) -> None:
    """stats() has the documented keys, and each worker reports its job and age."""
    blocker = BlockingHandler()
    rig.register("block", blocker)
    env = rig.submit("block")
    await until(lambda: len(blocker.started) == 1)
    rig.clock.advance(3.0)
    stats = rig.workers.stats()
    assert set(stats) == STATS_KEYS
    assert (stats["count"], stats["alive"], stats["busy"], stats["idle"]) == (2, 2, 1, 1)
    entries = {w["id"]: w for w in stats["workers"]}
    assert all(set(w) == WORKER_KEYS for w in entries.values())
    busy = next(w for w in entries.values() if w["current_job"] is not None)
    assert busy["current_job"] == {"id": env.job.id, "kind": "block", "attempt": 1,
                                   "running_seconds": 3.0}  # fmt: skip
    assert (busy["state"], busy["age_seconds"]) == ("busy", 3.0)
    blocker.release_all()
    await env.future
    assert (
        rig.workers.stats()["workers"][0]["jobs_total"]
        + rig.workers.stats()["workers"][1]["jobs_total"]
        == 1
    )


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO], ids=["debug", "info"])
async def test_at_debug_a_jobs_path_is_told(
    clock: FakeClock, factory: FakeFactory, level: int
) -> None:
    """At debug: the job taken, each connection leased, the retry scheduled, the outcome.
    Above debug none of it is even called."""
    LEVEL.configure(level)
    rig = await make_rig(clock, count=1, factory=factory)
    calls = 0

    async def flaky(job: Job) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("first try")
        return "ok"

    rig.register("flaky", flaky, retries=1)
    with structlog.testing.capture_logs() as logs:  # captures every level: the guard decides
        assert await rig.submit("flaky").future == "ok"
    told = [(e["event"], e.get("attempt")) for e in logs if e["log_level"] == "debug"]
    if level == logging.INFO:
        assert told == []
    else:
        assert told == [("job_taken", None), ("connection_leased", 1),
                        ("job_retry_scheduled", 1), ("connection_leased", 2),
                        ("job_finished", 2)]  # fmt: skip
        taken, leased = logs[0], next(e for e in logs if e["event"] == "connection_leased")
        assert (taken["job_id"], taken["kind"], taken["queue_wait_seconds"]) == (1, "flaky", 0)
        assert leased["connection_id"] == factory.opened[0].id
        (done,) = [e for e in logs if e["event"] == "job_finished"]
        assert done["outcome"] == "succeeded"
    await rig.workers.stop()
    await rig.router.stop()
    await rig.pool.stop()

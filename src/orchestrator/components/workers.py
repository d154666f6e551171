"""WorkerPool: N worker tasks that take jobs from the router and run their handlers."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from orchestrator.errors import JobFailed, JobTimeout, NotRunning, WorkerCrashed
from orchestrator.health import ComponentHealth
from orchestrator.job import Envelope
from orchestrator.stacks import task_stack
from orchestrator.stats import WorkersStats, bounded
from orchestrator.types import Clock

__all__ = ["STOP_GRACE", "Worker", "WorkerPool"]

log = structlog.get_logger("orchestrator.workers")

STOP_GRACE = 1.0
"""Seconds ``stop()`` waits for cancelled workers before it abandons those that refuse."""


class JobSource(Protocol):
    """Where workers take envelopes from (the router); None once it is closed and empty."""

    async def get(self) -> Envelope | None: ...


class OutcomeSink(Protocol):
    """Where workers report outcomes (the registry)."""

    def record_retry(self, kind: str) -> None: ...

    def record_outcome(self, kind: str, seconds: float, *, ok: bool, timed_out: bool) -> None: ...


class ConnectionSource(Protocol):
    """Where workers lease connections (the pool)."""

    @property
    def enabled(self) -> bool: ...

    async def acquire(self, timeout: float | None = None) -> Any: ...

    def release(self, pc: Any, *, broken: bool = False) -> None: ...


DeathListener = Callable[[int, BaseException], None]


class _DeadlineExpired(Exception):
    """An attempt ran past its own timeout."""


class Worker:
    """One worker task and its bookkeeping."""

    __slots__ = ("attempt_seq", "counted", "current", "expired", "failed_total", "id",
                 "job_started", "jobs_total", "last_error", "retiring", "settled", "started_at",
                 "state", "stop_requested", "task")  # fmt: skip

    def __init__(self, worker_id: int, now: float) -> None:
        self.id = worker_id
        self.state = "idle"
        self.jobs_total = 0
        self.failed_total = 0
        self.current: Envelope | None = None
        self.job_started = now
        self.settled = False  # the current job's outcome is delivered and counted
        self.attempt_seq = 0  # changes when an attempt starts and ends: stale timers see it
        self.expired = False  # the current attempt is past its deadline
        self.started_at = now
        self.last_error: str | None = None
        self.retiring: str | None = None
        self.stop_requested = False
        self.task: asyncio.Task[None] | None = None
        self.counted = True  # counted in WorkerPool.alive() until it dies, retires or stops


def _cancelled_from_outside() -> bool:
    """Whether the running task was cancelled (``stop()``, or the loop shutting down)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class WorkerPool:
    """Runs ``count`` workers; a handler error never kills a worker.

    Each job gets a pooled connection when the pool is enabled, runs under its timeout,
    is retried per its spec, and its outcome reaches the submitter. A timeout holds even
    when the handler ignores its cancellation: at the last attempt's deadline the submitter
    gets ``JobTimeout`` and the job counts as timed out. A handler still running
    ``stuck_grace`` seconds past its deadline marks its worker ``stuck``: the worker is
    replaced, and the stuck coroutine is logged with its stack. A worker that dies for any
    other reason fails the job in hand with ``WorkerCrashed`` and is reported to
    ``on_death`` (the lifecycle supervisor restarts it); one cancelled from outside (the
    loop shutting down) stops quietly.
    """

    def __init__(
        self,
        source: JobSource,
        outcomes: OutcomeSink,
        connections: ConnectionSource,
        clock: Clock,
        *,
        count: int,
        on_death: DeathListener | None = None,
        max_items: int | None = None,
        stuck_grace: float = 5.0,
        stop_grace: float = STOP_GRACE,
    ) -> None:
        self._source = source
        self._outcomes = outcomes
        self._connections = connections
        self._clock = clock
        self.count = count
        self.on_death = on_death
        self._ids = itertools.count(1)
        self._workers: dict[int, Worker] = {}
        self._abandoned: set[asyncio.Task[None]] = set()  # held: a dropped task is destroyed
        self._running = False
        self._alive = 0
        self._max_items = max_items
        self._stuck_grace = stuck_grace
        self._stop_grace = stop_grace
        self.jobs_completed_total = 0
        self.jobs_failed_total = 0
        self.deaths_total = 0
        self.stuck_total = 0
        self.abandoned_total = 0

    def workers(self) -> list[Worker]:
        """The current workers (including retiring, stuck and dead ones)."""
        return list(self._workers.values())

    def _spawn(self) -> Worker:
        w = Worker(next(self._ids), self._clock.now())
        self._workers[w.id] = w
        self._alive += 1
        w.task = asyncio.get_running_loop().create_task(self._run(w), name=f"worker-{w.id}")
        return w

    async def _run(self, w: Worker) -> None:
        try:
            while w.retiring is None:
                env = await self._source.get()
                if env is None:
                    break
                w.current, w.state, w.settled = env, "busy", False
                w.job_started = self._clock.now()
                await self._execute(w, env)
                w.current = None
                if w.state == "busy":
                    w.state = "draining" if w.retiring else "idle"
        except asyncio.CancelledError as exc:
            if not (w.stop_requested or _cancelled_from_outside()):
                self._died(w, exc)  # the handler raised CancelledError of its own accord
                return
            self._fail_in_hand(w, NotRunning("the job was cancelled at shutdown"))
            raise
        except BaseException as exc:
            self._died(w, exc)
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
        finally:
            if w.state != "dead":
                w.state = "stopped"
                self._uncount(w)
                self._workers.pop(w.id, None)

    def _uncount(self, w: Worker) -> None:
        if w.counted:
            w.counted = False
            self._alive -= 1

    def _fail_in_hand(self, w: Worker, exc: BaseException) -> None:
        if w.current is not None:
            w.current.reject(exc)
            w.current = None

    def _died(self, w: Worker, exc: BaseException) -> None:
        w.state = "dead"
        self._uncount(w)
        w.last_error = f"worker died: {type(exc).__name__}"
        self.deaths_total += 1
        if w.current is not None:
            crash = WorkerCrashed(f"worker {w.id} died while running job {w.current.job.id}")
            crash.__cause__ = exc
            self._fail_in_hand(w, crash)
        log.error("worker_died", worker_id=w.id, error=repr(exc))
        if w.retiring is not None:  # its successor already runs: nothing to restart
            self._workers.pop(w.id, None)
        elif self.on_death is not None and self._running:
            self.on_death(w.id, exc)

    async def _execute(self, w: Worker, env: Envelope) -> None:
        spec, job = env.spec, env.job
        attempt = 0
        while True:
            attempt += 1
            job.attempt = attempt
            last = attempt > spec.retries
            try:
                result = await self._attempt(w, env, last)
            except _DeadlineExpired:
                error: BaseException = TimeoutError()
                timed_out = True
            except Exception as exc:
                error, timed_out = exc, False
            else:
                self._settle(w, env, result=result)
                return
            if not last and not w.settled and not env.future.done():
                self._outcomes.record_retry(spec.kind)
                continue
            self._settle(w, env, error=error, timed_out=timed_out)
            return

    def _settle(
        self,
        w: Worker,
        env: Envelope,
        *,
        result: Any = None,
        error: BaseException | None = None,
        timed_out: bool = False,
    ) -> None:
        """Count the job's outcome and deliver it to the submitter, once."""
        if w.settled:
            return
        w.settled = True
        spec, job = env.spec, env.job
        w.jobs_total += 1
        seconds = self._clock.now() - w.job_started
        if error is None:
            self.jobs_completed_total += 1
            self._outcomes.record_outcome(spec.kind, seconds, ok=True, timed_out=False)
            env.resolve(result)
            return
        w.failed_total += 1
        self.jobs_failed_total += 1
        w.last_error = f"{spec.kind}: {type(error).__name__}"
        self._outcomes.record_outcome(spec.kind, seconds, ok=False, timed_out=timed_out)
        final: JobFailed
        if timed_out:
            final = JobTimeout(
                f"job {job.id} ({spec.kind}) timed out after {spec.timeout}s "
                f"on attempt {job.attempt}"
            )
        else:
            final = JobFailed(
                f"job {job.id} ({spec.kind}) failed on attempt {job.attempt}: "
                f"{type(error).__name__}"
            )
        final.__cause__ = error
        env.reject(final)

    async def _attempt(self, w: Worker, env: Envelope, last: bool) -> Any:
        """One attempt: lease a connection if pooled, run the handler under its timeout.

        Raises:
            _DeadlineExpired: when this attempt's own deadline expired, whether the handler
                obeyed the cancellation or returned later anyway; anything the handler
                raises (a ``TimeoutError`` of its own included) propagates as is.
        """
        spec, job = env.spec, env.job
        pc = await self._connections.acquire() if self._connections.enabled else None
        job.connection = pc.raw if pc is not None else None
        broken = False
        w.attempt_seq += 1
        w.expired = False
        timer = None
        task = w.task
        if spec.timeout is not None and task is not None:
            cancelling = task.cancelling()
            timer = asyncio.get_running_loop().call_later(
                spec.timeout, self._expire, w, w.attempt_seq, last
            )
        try:
            try:
                result = await spec.handler(job)
            except asyncio.CancelledError:
                if w.expired and task is not None and task.uncancel() <= cancelling:
                    raise _DeadlineExpired from None
                raise
            if w.expired and task is not None:  # it swallowed the cancellation and returned
                task.uncancel()
                raise _DeadlineExpired
            return result
        except (OSError, _DeadlineExpired):  # ConnectionError, TimeoutError are OSErrors
            broken = True  # the connection's state is unknown: close it
            raise
        finally:
            if timer is not None:
                timer.cancel()
            w.attempt_seq += 1
            job.connection = None
            if pc is not None:
                self._connections.release(pc, broken=broken)

    def _expire(self, w: Worker, seq: int, last: bool) -> None:
        """An attempt's deadline: cancel it; on the last attempt, the submitter gets its answer."""
        env = w.current
        if w.attempt_seq != seq or env is None or w.task is None:
            return
        w.expired = True
        w.task.cancel()
        if last:  # whatever the handler does with its cancellation
            self._settle(w, env, error=TimeoutError(), timed_out=True)
        asyncio.get_running_loop().call_later(self._stuck_grace, self._check_stuck, w, seq)

    def _check_stuck(self, w: Worker, seq: int) -> None:
        """Past its deadline and the grace, the attempt still runs: replace its worker."""
        env = w.current
        if w.attempt_seq != seq or env is None or w.retiring is not None:
            return
        self._settle(w, env, error=TimeoutError(), timed_out=True)
        w.state, w.retiring = "stuck", "stuck"
        self._uncount(w)
        self.stuck_total += 1
        log.error("worker_stuck", worker_id=w.id, job_id=env.job.id, kind=env.spec.kind,
                  attempt=env.job.attempt, running_seconds=self._clock.now() - w.job_started,
                  detail="the handler ignores its cancellation; the worker is replaced",
                  stack=task_stack(w.task) if w.task is not None else [])  # fmt: skip
        if self._running:
            self._spawn()

    def retire(self, worker_id: int, reason: str) -> bool:
        """Replace a worker: start its successor now, let it finish the job in hand."""
        w = self._workers.get(worker_id)
        if w is None or w.retiring is not None or w.state in ("dead", "stopped"):
            return False
        w.retiring = reason
        self._uncount(w)
        self._spawn()
        if w.current is None:
            w.stop_requested = True
            if w.task is not None:
                w.task.cancel()
        else:
            w.state = "draining"
        log.info("worker_recycled", worker_id=w.id, reason=reason, jobs=w.jobs_total)
        return True

    def respawn(self, worker_id: int) -> None:
        """Replace a dead worker with a new one (called by the supervisor)."""
        w = self._workers.get(worker_id)
        if not self._running or w is None or w.state != "dead":
            return
        del self._workers[worker_id]
        new = self._spawn()
        log.info("worker_restarted", worker_id=worker_id, new_worker_id=new.id)

    async def start(self) -> None:
        """Start ``count`` workers."""
        self._running = True
        for _ in range(self.count):
            self._spawn()

    async def stop(self) -> None:
        """Cancel every worker; a job in hand is failed with ``NotRunning``.

        Returns within ``stop_grace`` seconds: a worker whose handler refuses cancellation
        is abandoned, logged with its stack, and its submitter gets ``NotRunning``.
        """
        self._running = False
        tasks: dict[asyncio.Task[None], Worker] = {}
        for w in self._workers.values():
            w.stop_requested = True
            if w.task is not None and not w.task.done():
                w.task.cancel()
                tasks[w.task] = w
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self._stop_grace)
            for task in pending:
                self._abandon(tasks[task], task)
        self._workers.clear()
        self._alive = 0

    def _abandon(self, w: Worker, task: asyncio.Task[None]) -> None:
        self.abandoned_total += 1
        self._abandoned.add(task)
        task.add_done_callback(self._abandoned.discard)
        env = w.current
        log.error("worker_abandoned", worker_id=w.id, job_id=env.job.id if env else None,
                  detail=f"the handler refused cancellation for {self._stop_grace}s at stop",
                  stack=task_stack(task))  # fmt: skip
        w.settled = True
        self._fail_in_hand(w, NotRunning("the job's handler refused to stop at shutdown"))

    def alive(self) -> int:
        """Workers able to take new jobs (not dead, stopped, stuck or retiring); O(1)."""
        return self._alive

    def busy(self) -> int:
        """Workers running a job right now."""
        return sum(1 for w in self._workers.values() if w.current is not None)

    def stats(self) -> WorkersStats:
        """Counts, counters and one entry per worker (at most ``max_items`` of them)."""
        now = self._clock.now()
        busy = self.busy()
        listed, omitted = bounded(self._workers.values(), self._max_items)
        return {
            "count": self.count,
            "alive": self.alive(),
            "busy": busy,
            "idle": len(self._workers) - busy,
            "stuck": sum(1 for w in self._workers.values() if w.state == "stuck"),
            "jobs_completed_total": self.jobs_completed_total,
            "jobs_failed_total": self.jobs_failed_total,
            "deaths_total": self.deaths_total,
            "stuck_total": self.stuck_total,
            "abandoned_total": self.abandoned_total,
            "workers": [
                {
                    "id": w.id,
                    "state": w.state,
                    "jobs_total": w.jobs_total,
                    "failed_total": w.failed_total,
                    "current_job": w.current.job.id if w.current is not None else None,
                    "job_seconds": now - w.job_started if w.current is not None else None,
                    "age_seconds": now - w.started_at,
                    "last_error": w.last_error,
                }
                for w in listed
            ],
            "workers_omitted": omitted,
        }

    def health(self) -> ComponentHealth:
        """Unhealthy when fewer than ``count`` workers are alive."""
        if not self._running:
            return ComponentHealth.failing("workers are not running")
        alive = self.alive()
        if alive < self.count:
            return ComponentHealth.failing(f"{alive} of {self.count} workers alive")
        return ComponentHealth.ok()

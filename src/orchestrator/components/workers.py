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
from orchestrator.stats import bounded
from orchestrator.types import Clock, StatsDict

__all__ = ["Worker", "WorkerPool"]

log = structlog.get_logger("orchestrator.workers")


class JobSource(Protocol):
    """Where workers take envelopes from (the router); None once it is closed and empty."""

    async def get(self) -> Envelope | None: ...


class OutcomeSink(Protocol):
    """Where workers report outcomes (the registry)."""

    def record_retry(self, kind: str) -> None: ...

    def record_outcome(self, kind: str, seconds: float, *, ok: bool, timed_out: bool) -> None: ...


class LeasedConnection(Protocol):
    raw: Any


class ConnectionSource(Protocol):
    """Where workers lease connections (the pool)."""

    @property
    def enabled(self) -> bool: ...

    async def acquire(self, timeout: float | None = None) -> Any: ...

    def release(self, pc: Any, *, broken: bool = False) -> None: ...


DeathListener = Callable[[int, BaseException], None]


class _DeadlineExpired(Exception):
    """An attempt ran past its own timeout; ``timeout_error`` is asyncio's TimeoutError."""

    def __init__(self, timeout_error: TimeoutError) -> None:
        super().__init__("attempt deadline expired")
        self.timeout_error = timeout_error


class Worker:
    """One worker task and its bookkeeping."""

    __slots__ = ("counted", "current", "failed_total", "id", "jobs_total", "last_error",
                 "retiring", "started_at", "state", "stop_requested", "task")  # fmt: skip

    def __init__(self, worker_id: int, now: float) -> None:
        self.id = worker_id
        self.state = "idle"
        self.jobs_total = 0
        self.failed_total = 0
        self.current: Envelope | None = None
        self.started_at = now
        self.last_error: str | None = None
        self.retiring: str | None = None
        self.stop_requested = False
        self.task: asyncio.Task[None] | None = None
        self.counted = True  # counted in WorkerPool.alive() until it dies, retires or stops


class WorkerPool:
    """Runs ``count`` workers; a handler error never kills a worker.

    Each job gets a pooled connection when the pool is enabled, runs under its timeout,
    is retried per its spec, and its outcome reaches the submitter. A worker that dies
    for any other reason fails the job in hand with ``WorkerCrashed`` and is reported to
    ``on_death`` (the lifecycle supervisor restarts it).
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
    ) -> None:
        self._source = source
        self._outcomes = outcomes
        self._connections = connections
        self._clock = clock
        self.count = count
        self.on_death = on_death
        self._ids = itertools.count(1)
        self._workers: dict[int, Worker] = {}
        self._running = False
        self._alive = 0
        self._max_items = max_items
        self.jobs_completed_total = 0
        self.jobs_failed_total = 0
        self.deaths_total = 0

    def workers(self) -> list[Worker]:
        """The current workers (including retiring and dead ones)."""
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
                w.current = env
                w.state = "busy"
                await self._execute(w, env)
                w.current = None
                w.state = "draining" if w.retiring else "idle"
        except asyncio.CancelledError as exc:
            if not w.stop_requested:
                self._died(w, exc)
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
        clock = self._clock
        started = clock.now()
        attempt = 0
        while True:
            attempt += 1
            job.attempt = attempt
            error: BaseException
            timed_out = False
            try:
                result = await self._attempt(env)
            except _DeadlineExpired as exc:
                error, timed_out = exc.timeout_error, True
            except Exception as exc:
                error = exc
            else:
                w.jobs_total += 1
                self.jobs_completed_total += 1
                self._outcomes.record_outcome(
                    spec.kind, clock.now() - started, ok=True, timed_out=False
                )
                env.resolve(result)
                return
            if attempt <= spec.retries and not env.future.done():
                self._outcomes.record_retry(spec.kind)
                continue
            w.jobs_total += 1
            w.failed_total += 1
            self.jobs_failed_total += 1
            w.last_error = f"{spec.kind}: {type(error).__name__}"
            self._outcomes.record_outcome(
                spec.kind, clock.now() - started, ok=False, timed_out=timed_out
            )
            final: JobFailed
            if timed_out:
                final = JobTimeout(f"job {job.id} ({spec.kind}) timed out after {spec.timeout}s "
                                   f"on attempt {attempt}")  # fmt: skip
            else:
                final = JobFailed(f"job {job.id} ({spec.kind}) failed on attempt {attempt}: "
                                  f"{type(error).__name__}")  # fmt: skip
            final.__cause__ = error
            env.reject(final)
            return

    async def _attempt(self, env: Envelope) -> Any:
        """One attempt: lease a connection if pooled, run the handler under its timeout.

        Raises:
            _DeadlineExpired: only when this attempt's own deadline expired; anything the
                handler raises (a ``TimeoutError`` of its own included) propagates as is.
        """
        spec, job = env.spec, env.job
        pooled = self._connections.enabled
        pc = await self._connections.acquire() if pooled else None
        job.connection = pc.raw if pc is not None else None
        broken = False
        try:
            if spec.timeout is None:
                return await spec.handler(job)
            deadline = asyncio.timeout(spec.timeout)
            try:
                async with deadline:
                    return await spec.handler(job)
            except TimeoutError as exc:
                if deadline.expired():
                    raise _DeadlineExpired(exc) from exc
                raise
        except (OSError, _DeadlineExpired):  # ConnectionError, TimeoutError are OSErrors
            broken = True  # the connection's state is unknown: close it
            raise
        finally:
            job.connection = None
            if pc is not None:
                self._connections.release(pc, broken=broken)

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
        """Cancel every worker; a job in hand is failed with ``NotRunning``."""
        self._running = False
        tasks = []
        for w in self._workers.values():
            w.stop_requested = True
            if w.task is not None and not w.task.done():
                w.task.cancel()
                tasks.append(w.task)
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()
        self._alive = 0

    def alive(self) -> int:
        """Workers able to take new jobs (not dead, stopped or retiring); O(1)."""
        return self._alive

    def busy(self) -> int:
        """Workers running a job right now."""
        return sum(1 for w in self._workers.values() if w.current is not None)

    def stats(self) -> StatsDict:
        """Counts, counters and one entry per worker (at most ``max_items`` of them)."""
        now = self._clock.now()
        busy = self.busy()
        listed, omitted = bounded(self._workers.values(), self._max_items)
        return {
            "count": self.count,
            "alive": self.alive(),
            "busy": busy,
            "idle": len(self._workers) - busy,
            "jobs_completed_total": self.jobs_completed_total,
            "jobs_failed_total": self.jobs_failed_total,
            "deaths_total": self.deaths_total,
            "workers": [
                {
                    "id": w.id,
                    "state": w.state,
                    "jobs_total": w.jobs_total,
                    "failed_total": w.failed_total,
                    "current_job": w.current.job.id if w.current is not None else None,
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

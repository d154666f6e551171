"""WorkerPool: N worker tasks that take jobs from the router and run their handlers."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import structlog

from orchestrator.clock import utc_iso
from orchestrator.components.execution import JobExecution
from orchestrator.components.limit import InProgressLimit
from orchestrator.components.worker import (
    ConnectionSource,
    DeathListener,
    JobSource,
    OutcomeSink,
    Worker,
    cancelled_from_outside,
)
from orchestrator.errors import NotRunning, WorkerCrashed
from orchestrator.events import EventSink
from orchestrator.health import ComponentHealth
from orchestrator.job_events import JobEvents
from orchestrator.log_level import LEVEL
from orchestrator.stacks import task_stack
from orchestrator.stats import WorkersStats, bounded
from orchestrator.types import Clock

__all__ = ["STOP_GRACE", "Worker", "WorkerPool"]

log = structlog.get_logger("orchestrator.workers")

STOP_GRACE = 1.0
"""Seconds ``stop()`` waits for cancelled workers before it abandons those that refuse."""


class WorkerPool(JobExecution):
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
        jobs: JobEvents | None = None,
        events: EventSink | None = None,
        limit: InProgressLimit | None = None,
    ) -> None:
        self._source = source
        self.limit = limit or InProgressLimit(count, clock)
        self._jobs = jobs or JobEvents(None, clock.wall)
        self._events = events
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

    def _notify(self, name: str, **fields: Any) -> None:
        if self._events is not None:
            self._events(name, fields)

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
        gate = self.limit.gate
        try:
            while w.retiring is None:
                if not w.in_place:  # a place under the in-progress limit, first
                    if not gate.try_enter():
                        await gate.wait()
                    w.in_place = True
                env = await self._source.get()
                if env is None:
                    break
                w.current, w.state, w.settled = env, "busy", False
                w.job_started = self._clock.now()
                waited = w.job_started - env.enqueued_at
                self._outcomes.record_queue_wait(env.spec.kind, waited)
                if LEVEL.debug:
                    log.debug("job_taken", worker_id=w.id, job_id=env.job.id, kind=env.spec.kind,
                              queue_wait_seconds=round(waited, 6))  # fmt: skip
                await self._execute(w, env)
                if gate.active > gate.limit:  # the limit fell: give the place back
                    self._leave_place(w)
                w.current = None
                if w.state == "busy":
                    w.state = "draining" if w.retiring else "idle"
        except asyncio.CancelledError as exc:
            if not (w.stop_requested or cancelled_from_outside()):
                self._died(w, exc)  # the handler raised CancelledError of its own accord
                return
            self._fail_in_hand(w, NotRunning("the job was cancelled at shutdown"))
            raise
        except BaseException as exc:
            self._died(w, exc)
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
        finally:
            self._leave_place(w)
            if w.state != "dead":
                w.state = "stopped"
                self._uncount(w)
                self._workers.pop(w.id, None)

    def _leave_place(self, w: Worker) -> None:
        """Give back the worker's place under the in-progress limit (once)."""
        if w.in_place:
            w.in_place = False
            self.limit.gate.leave()

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
        w.last_error = {"type": type(exc).__name__, "message": "the worker died",
                        "at": utc_iso(self._clock.wall()),
                        "job_id": w.current.job.id if w.current is not None else None}  # fmt: skip
        self.deaths_total += 1
        if w.current is not None:
            crash = WorkerCrashed(f"worker {w.id} died while running job {w.current.job.id}")
            crash.__cause__ = exc
            self._fail_in_hand(w, crash)
        log.error("worker_died", worker_id=w.id, error=repr(exc))
        self._notify("worker_died", worker_id=w.id, error_type=type(exc).__name__)
        if w.retiring is not None:  # its successor already runs: nothing to restart
            self._workers.pop(w.id, None)
        elif self.on_death is not None and self._running:
            self.on_death(w.id, exc)

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
        self._notify("worker_recycled", worker_id=w.id, reason=reason, jobs=w.jobs_total)
        return True

    def respawn(self, worker_id: int) -> None:
        """Replace a dead worker with a new one (called by the supervisor)."""
        w = self._workers.get(worker_id)
        if not self._running or w is None or w.state != "dead":
            return
        del self._workers[worker_id]
        new = self._spawn()
        log.info("worker_restarted", worker_id=worker_id, new_worker_id=new.id)
        self._notify("worker_restarted", worker_id=worker_id, new_worker_id=new.id)

    async def start(self) -> None:
        """Start ``count`` workers (and the steering of their in-progress limit)."""
        self._running = True
        await self.limit.start()
        for _ in range(self.count):
            self._spawn()

    async def stop(self) -> None:
        """Cancel every worker; a job in hand is failed with ``NotRunning``.

        Returns within ``stop_grace`` seconds: a worker whose handler refuses cancellation
        is abandoned, logged with its stack, and its submitter gets ``NotRunning``.
        """
        self._running = False
        await self.limit.stop()
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
                  frames=task_stack(task))  # fmt: skip
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
                    "current_job": None
                    if w.current is None
                    else {
                        "id": w.current.job.id,
                        "kind": w.current.spec.kind,
                        "attempt": w.current.job.attempt,
                        "running_seconds": now - w.job_started,
                    },
                    "age_seconds": now - w.started_at,
                    "last_error": w.last_error,
                }
                for w in listed
            ],
            "workers_omitted": omitted,
            **self.limit.stats(),
        }

    def health(self) -> ComponentHealth:
        """Unhealthy when fewer than ``count`` workers are alive."""
        if not self._running:
            return ComponentHealth.failing("workers are not running")
        alive = self.alive()
        if alive < self.count:
            return ComponentHealth.failing(f"{alive} of {self.count} workers alive")
        return ComponentHealth.ok()

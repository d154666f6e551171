"""Running one job on a worker: its attempts, their deadlines, its single outcome.

A timeout holds even when the handler ignores its cancellation: at the last attempt's
deadline the submitter gets ``JobTimeout`` and the job counts as timed out; a handler still
running ``stuck_grace`` seconds later marks its worker ``stuck``, and the pool replaces it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from orchestrator.clock import utc_iso
from orchestrator.components.limit import InProgressLimit
from orchestrator.components.worker import ConnectionSource, DeadlineExpired, OutcomeSink, Worker
from orchestrator.errors import JobFailed, JobTimeout
from orchestrator.job import Envelope
from orchestrator.job_events import JobEvents, error_fields
from orchestrator.log_level import LEVEL
from orchestrator.stacks import task_stack
from orchestrator.types import Clock

__all__ = ["JobExecution"]

log = structlog.get_logger("orchestrator.workers")


class JobExecution:
    """The part of ``WorkerPool`` that runs jobs (a base class: the pool owns the state)."""

    _outcomes: OutcomeSink
    _connections: ConnectionSource
    _clock: Clock
    _jobs: JobEvents
    _stuck_grace: float
    limit: InProgressLimit
    _running: bool
    jobs_completed_total: int
    jobs_failed_total: int
    stuck_total: int

    def _spawn(self) -> Worker:
        raise NotImplementedError

    def _uncount(self, w: Worker) -> None:
        raise NotImplementedError

    def _leave_place(self, w: Worker) -> None:
        raise NotImplementedError

    def _notify(self, name: str, **fields: Any) -> None:
        raise NotImplementedError

    async def _execute(self, w: Worker, env: Envelope) -> None:
        spec, job = env.spec, env.job
        attempt = 0
        while True:
            attempt += 1
            job.attempt = attempt
            last = attempt > spec.retries
            try:
                result = await self._attempt(w, env, last)
            except DeadlineExpired:
                error: BaseException = TimeoutError()
                timed_out = True
            except Exception as exc:
                error, timed_out = exc, False
            else:
                self._settle(w, env, result=result)
                return
            if not last and not w.settled and not env.future.done():
                self._outcomes.record_retry(spec.kind)
                if LEVEL.debug:
                    log.debug("job_retry_scheduled", worker_id=w.id, job_id=job.id,
                              kind=spec.kind, attempt=attempt, next_attempt=attempt + 1,
                              error_type=type(error).__name__)  # fmt: skip
                origin = job.origin
                self._jobs.retried(job.id, spec.kind, attempt, error,
                                   self._clock.now() - w.job_started,
                                   entry_id=origin.entry_id if origin else None)  # fmt: skip
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
        self.limit.flow.finished(seconds)
        self._jobs.finished(job.id, spec.kind, job.attempt, seconds)
        if LEVEL.debug:
            outcome = "succeeded" if error is None else "timed_out" if timed_out else "failed"
            log.debug("job_finished", worker_id=w.id, job_id=job.id, kind=spec.kind,
                      attempt=job.attempt, outcome=outcome,
                      duration_seconds=round(seconds, 6))  # fmt: skip
        if error is None:
            self.jobs_completed_total += 1
            self._outcomes.record_outcome(spec.kind, seconds, ok=True, timed_out=False)
            env.resolve(result)
            return
        w.failed_total += 1
        self.jobs_failed_total += 1
        if timed_out:
            error = TimeoutError(f"timed out after {spec.timeout}s")
        fields = error_fields(error)
        w.last_error = {"type": fields["error_type"], "message": fields["message"],
                        "at": utc_iso(self._clock.wall()), "job_id": job.id}  # fmt: skip
        self._outcomes.record_outcome(spec.kind, seconds, ok=False, timed_out=timed_out)
        self._jobs.failed(job.id, spec.kind, job.attempt, error, seconds, timed_out=timed_out,
                          entry_id=job.origin.entry_id if job.origin else None)  # fmt: skip
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
            DeadlineExpired: when this attempt's own deadline expired, whether the handler
                obeyed the cancellation or returned later anyway; anything the handler
                raises (a ``TimeoutError`` of its own included) propagates as is.
        """
        spec, job = env.spec, env.job
        pc = await self._connections.acquire() if self._connections.enabled else None
        job.connection = pc.raw if pc is not None else None
        w.connection_id = pc.id if pc is not None else None
        if pc is not None and LEVEL.debug:
            log.debug("connection_leased", worker_id=w.id, job_id=job.id, kind=spec.kind,
                      attempt=job.attempt, connection_id=pc.id)  # fmt: skip
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
                    raise DeadlineExpired from None
                raise
            if w.expired and task is not None:  # it swallowed the cancellation and returned
                task.uncancel()
                raise DeadlineExpired
            return result
        except (OSError, DeadlineExpired):  # ConnectionError, TimeoutError are OSErrors
            broken = True  # the connection's state is unknown: close it
            raise
        finally:
            if timer is not None:
                timer.cancel()
            w.attempt_seq += 1
            job.connection = w.connection_id = None
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
        self._leave_place(w)  # its replacement runs in its place
        self.stuck_total += 1
        log.error("worker_stuck", worker_id=w.id, job_id=env.job.id, kind=env.spec.kind,
                  attempt=env.job.attempt, running_seconds=self._clock.now() - w.job_started,
                  detail="the handler ignores its cancellation; the worker is replaced",
                  frames=task_stack(w.task) if w.task is not None else [])  # fmt: skip
        self._notify("worker_stuck", worker_id=w.id, job_id=env.job.id, kind=env.spec.kind)
        if self._running:
            self._spawn()

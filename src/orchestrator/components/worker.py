"""One worker's bookkeeping, and what a worker pool is given to work with."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from orchestrator.job import Envelope
from orchestrator.stats import LastError

__all__ = [
    "ConnectionSource",
    "DeadlineExpired",
    "DeathListener",
    "JobSource",
    "OutcomeSink",
    "Worker",
    "cancelled_from_outside",
]


class JobSource(Protocol):
    """Where workers take envelopes from (the router); None once it is closed and empty."""

    async def get(self) -> Envelope | None: ...


class OutcomeSink(Protocol):
    """Where workers report outcomes (the registry)."""

    def record_queue_wait(self, kind: str, seconds: float) -> None: ...

    def record_retry(self, kind: str) -> None: ...

    def record_outcome(self, kind: str, seconds: float, *, ok: bool, timed_out: bool) -> None: ...


class ConnectionSource(Protocol):
    """Where workers lease connections (the pool)."""

    @property
    def enabled(self) -> bool: ...

    async def acquire(self, timeout: float | None = None) -> Any: ...

    def release(self, pc: Any, *, broken: bool = False) -> None: ...


DeathListener = Callable[[int, BaseException], None]


class DeadlineExpired(Exception):
    """An attempt ran past its own timeout."""


class Worker:
    """One worker task and its bookkeeping."""

    __slots__ = (
        "attempt_seq",
        "connection_id",
        "counted",
        "current",
        "expired",
        "failed_total",
        "id",
        "in_place",
        "job_started",
        "jobs_total",
        "last_error",
        "retiring",
        "settled",
        "started_at",
        "state",
        "stop_requested",
        "task",
    )  # fmt: skip

    def __init__(self, worker_id: int, now: float) -> None:
        self.id = worker_id
        self.state = "idle"
        self.in_place = False  # holds a place under the in-progress limit
        self.jobs_total = 0
        self.failed_total = 0
        self.current: Envelope | None = None
        self.job_started = now
        self.settled = False  # the current job's outcome is delivered and counted
        self.attempt_seq = 0  # changes when an attempt starts and ends: stale timers see it
        self.expired = False  # the current attempt is past its deadline
        self.started_at = now
        self.last_error: LastError | None = None
        self.connection_id: int | None = None  # the pooled connection of the attempt running
        self.retiring: str | None = None
        self.stop_requested = False
        self.task: asyncio.Task[None] | None = None
        self.counted = True  # counted in WorkerPool.alive() until it dies, retires or stops


def cancelled_from_outside() -> bool:
    """Whether the running task was cancelled (``stop()``, or the loop shutting down)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0

"""Recycler: a periodic sweep that retires old workers and connections and replaces them."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

import structlog

from orchestrator.clock import utc_iso
from orchestrator.events import EventSink
from orchestrator.health import ComponentHealth
from orchestrator.stats import RecyclerStats
from orchestrator.tasks import cancel_and_wait
from orchestrator.types import Clock

__all__ = ["CONNECTION_REASONS", "WORKER_REASONS", "Recycler"]

WORKER_REASONS = ("max_jobs", "max_age")
"""Why the recycler retires a worker."""

CONNECTION_REASONS = ("max_uses", "max_age", "idle_timeout")
"""Why the recycler retires a connection."""

log = structlog.get_logger("orchestrator.recycler")


class RecyclableWorkers(Protocol):
    """The worker pool as the recycler sees it."""

    def workers(self) -> Sequence[Any]: ...

    def retire(self, worker_id: int, reason: str) -> bool: ...


class RecyclablePool(Protocol):
    """The connection pool as the recycler sees it."""

    def connections(self) -> Sequence[Any]: ...

    def retire(self, conn_id: int, reason: str) -> bool: ...

    def maintain(self) -> None: ...


class Recycler:
    """Every ``interval`` seconds, retire what is past its limits; None disables a limit.

    Args:
        workers: the worker pool (``workers()``, ``retire()``).
        pool: the connection pool (``connections()``, ``retire()``, ``maintain()``).
        clock: time source for ages and the sweep schedule.
        interval: seconds between sweeps.
        missed_intervals: sweeps missed in a row before the recycler is unhealthy.
    """

    def __init__(
        self,
        workers: RecyclableWorkers,
        pool: RecyclablePool,
        clock: Clock,
        *,
        interval: float = 1.0,
        max_jobs_per_worker: int | None = None,
        max_worker_age: float | None = None,
        max_connection_uses: int | None = None,
        max_connection_age: float | None = None,
        connection_idle_timeout: float | None = None,
        missed_intervals: int = 3,
        events: EventSink | None = None,
    ) -> None:
        self._events = events
        self._workers = workers
        self._pool = pool
        self._clock = clock
        self.interval = interval
        self.max_jobs_per_worker = max_jobs_per_worker
        self.max_worker_age = max_worker_age
        self.max_connection_uses = max_connection_uses
        self.max_connection_age = max_connection_age
        self.connection_idle_timeout = connection_idle_timeout
        self._missed = missed_intervals
        self._task: asyncio.Task[None] | None = None
        self._last_sweep_mono: float | None = None
        self._last_sweep_wall: float | None = None
        self.sweeps_total = 0
        self.sweep_errors_total = 0
        self.sweep_duration_seconds = 0.0
        # every reason from the start, so that counters exist (at 0) before the first recycle
        self.workers_recycled: Counter[str] = Counter(dict.fromkeys(WORKER_REASONS, 0))
        self.connections_recycled: Counter[str] = Counter(dict.fromkeys(CONNECTION_REASONS, 0))

    def sweep(self) -> None:
        """One pass over workers and connections."""
        started = self._clock.now()
        for w in self._workers.workers():
            if w.retiring is not None or w.state not in ("idle", "busy"):
                continue
            reason = None
            if self.max_jobs_per_worker is not None and w.jobs_total >= self.max_jobs_per_worker:
                reason = "max_jobs"
            elif self.max_worker_age is not None and started - w.started_at >= self.max_worker_age:
                reason = "max_age"
            if reason is not None and self._workers.retire(w.id, reason):
                self.workers_recycled[reason] += 1
        for pc in self._pool.connections():
            if pc.retire_reason is not None:
                continue
            reason = None
            if self.max_connection_uses is not None and pc.uses >= self.max_connection_uses:
                reason = "max_uses"
            elif (
                self.max_connection_age is not None
                and started - pc.created_at >= self.max_connection_age
            ):
                reason = "max_age"
            elif (
                self.connection_idle_timeout is not None
                and pc.state == "idle"
                and started - pc.last_used_at >= self.connection_idle_timeout
            ):
                reason = "idle_timeout"
            if reason is not None and self._pool.retire(pc.id, reason):
                self.connections_recycled[reason] += 1
                log.info("connection_recycled", conn_id=pc.id, reason=reason, uses=pc.uses)
                if self._events is not None:
                    self._events("connection_recycled", {"conn_id": pc.id, "reason": reason})
        self._pool.maintain()
        self.sweeps_total += 1
        self._last_sweep_mono = self._clock.now()
        self._last_sweep_wall = self._clock.wall()
        self.sweep_duration_seconds = self._last_sweep_mono - started

    async def _loop(self) -> None:
        while True:
            await self._clock.sleep(self.interval)
            try:
                self.sweep()
            except Exception:
                self.sweep_errors_total += 1
                log.exception("recycler_sweep_failed")

    async def start(self) -> None:
        """Start the sweep loop (the first sweep comes one interval from now)."""
        self._last_sweep_mono = self._clock.now()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="recycler")

    async def stop(self) -> None:
        """Stop the sweep loop."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def stats(self) -> RecyclerStats:
        """Sweep counters, timing and what was recycled by reason."""
        return {
            "running": self._task is not None and not self._task.done(),
            "interval_seconds": self.interval,
            "sweeps_total": self.sweeps_total,
            "sweep_errors_total": self.sweep_errors_total,
            "last_sweep_at": utc_iso(self._last_sweep_wall) if self._last_sweep_wall else None,
            "sweep_duration_seconds": self.sweep_duration_seconds,
            "workers_recycled_total": dict(self.workers_recycled),
            "connections_recycled_total": dict(self.connections_recycled),
        }

    def health(self) -> ComponentHealth:
        """Unhealthy when the loop is not running or has missed ``missed_intervals`` sweeps."""
        if self._task is None or self._task.done():
            return ComponentHealth.failing("recycler sweep loop is not running")
        assert self._last_sweep_mono is not None
        late = self._clock.now() - self._last_sweep_mono
        if late > self._missed * self.interval:
            return ComponentHealth.failing(f"no sweep for {late:.1f}s (interval {self.interval}s)")
        return ComponentHealth.ok()

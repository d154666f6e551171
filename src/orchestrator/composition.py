"""Composition: the six components and what runs beside them, built from the settings.

``compose()`` is where each part gets its peers (typed by the small protocols each
declares): the router feeds the workers, the pool leases them connections, the lifecycle
supervises them, the recycler retires them, the in-progress limit reads the monitors'
loop lag. ``Application`` owns the parts and runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.clock import MonotonicClock
from orchestrator.components import (
    ConnectionPool,
    Lifecycle,
    Recycler,
    Registry,
    Router,
    State,
    WorkerPool,
)
from orchestrator.components.limit import InProgressLimit
from orchestrator.config import CoreSettings
from orchestrator.events import EventSink
from orchestrator.health import HealthReport
from orchestrator.job_events import JobEvents
from orchestrator.monitors import Monitors
from orchestrator.types import Clock, ConnectionFactory

__all__ = ["Parts", "compose"]


@dataclass(frozen=True, slots=True)
class Parts:
    """The components and the monitors of one application."""

    registry: Registry
    pool: ConnectionPool
    router: Router
    lifecycle: Lifecycle
    monitors: Monitors
    workers: WorkerPool
    recycler: Recycler


def compose(
    s: CoreSettings,
    clock: Clock,
    factory: ConnectionFactory | None,
    *,
    events: EventSink,
    jobs: JobEvents,
    health: Callable[[], HealthReport],
    registry: Registry | None = None,
) -> Parts:
    """Build every part from the settings, each wired to its peers (``registry``: the one
    whose handlers to keep, else a new one)."""
    registry = registry if registry is not None else Registry()
    pool = ConnectionPool(factory, clock, min_size=s.pool_min_size, max_size=s.pool_max_size,
                          acquire_timeout=s.pool_acquire_timeout,
                          max_items=s.stats_max_items)  # fmt: skip
    router = Router(s.queue_size, clock, saturation_grace=s.saturation_grace,
                    queue_target=s.queue_target, queue_interval=s.queue_interval)  # fmt: skip
    jobs.count_refusals(router.refused_by_reason)
    lifecycle = Lifecycle(clock, restart_backoff=s.restart_backoff)
    stopping = (State.DRAINING, State.STOPPING)
    monitors = Monitors(s, health, clock, events=events, tick=jobs.flush,
                        stopping=lambda: lifecycle.state in stopping)  # fmt: skip
    limit = InProgressLimit(  # steered in real time: the loop's lag is real
        s.workers, MonotonicClock(), target=s.lag_target, floor=max(1, s.workers // 20),
        lag=monitors.loop_lag if s.adaptive_limit else None,
    )  # fmt: skip
    workers = WorkerPool(
        router, registry, pool, clock, count=s.workers, on_death=lifecycle.report_death,
        max_items=s.stats_max_items, stuck_grace=s.handler_stuck_grace, jobs=jobs,
        events=events, limit=limit,
    )  # fmt: skip
    lifecycle.supervise(workers)
    recycler = Recycler(
        workers, pool, clock, interval=s.recycle_interval,
        max_jobs_per_worker=s.max_jobs_per_worker, max_worker_age=s.max_worker_age,
        max_connection_uses=s.max_connection_uses, max_connection_age=s.max_connection_age,
        connection_idle_timeout=s.connection_idle_timeout, events=events,
    )  # fmt: skip
    return Parts(registry, pool, router, lifecycle, monitors, workers, recycler)

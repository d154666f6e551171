"""The shapes of the stats sections, and a helper for bounded per-item listings.

Each component's ``stats()`` returns one of these TypedDicts, so a key renamed in a
component is a type error there, and ``tests/test_stats.py`` holds the metrics table and
the OpenAPI schemas against the same keys.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence
from typing import TypedDict, TypeVar

__all__ = [
    "cumulative",
    "ApplicationStats",
    "ConnectError",
    "ConnectionEntry",
    "CurrentJob",
    "GcStats",
    "HistogramStats",
    "JobKindStats",
    "LastError",
    "LatencyStats",
    "LimitStats",
    "LifecycleStats",
    "SourceStats",
    "MonitorStats",
    "PoolStats",
    "RecyclerStats",
    "RegistryStats",
    "RouterStats",
    "TransitionEntry",
    "WorkerEntry",
    "WorkersStats",
    "bounded",
]

T = TypeVar("T")


def cumulative(bounds: Sequence[float], counts: Sequence[int]) -> dict[str, int]:
    """Prometheus-style buckets: the running count at each upper bound (``repr``), ``+Inf``
    last; ``counts`` has one entry per bound plus the overflow."""
    out: dict[str, int] = {}
    running = 0
    for bound, n in zip((*map(repr, bounds), "+Inf"), counts, strict=True):
        running += n
        out[bound] = running
    return out


def bounded(items: Collection[T], limit: int | None) -> tuple[Collection[T], int]:
    """The first ``limit`` items (all when None) and how many were left out."""
    if limit is None or len(items) <= limit:
        return items, 0
    return list(itertools.islice(items, limit)), len(items) - limit


class HistogramStats(TypedDict):
    buckets: dict[str, int]
    sum: float
    count: int


class GcStats(TypedDict):
    frozen_objects: int
    collections_total: dict[str, int]
    pause_seconds: dict[str, HistogramStats]
    longest_pause_seconds: float


class MonitorStats(TypedDict):
    event_loop_lag_seconds: float
    event_loop_lag_max_seconds: float
    event_loop_blocked_total: int
    gc: GcStats


class ApplicationStats(MonitorStats):
    name: str
    version: str
    pid: int
    state: str
    started_at: str | None
    uptime_seconds: float
    jobs_in_flight: int
    log_level: str
    log_level_reverts_at: str | None
    event_subscribers: int


class LatencyStats(TypedDict):
    buckets: dict[str, int]
    sum: float
    count: int
    p50: float | None
    p99: float | None


class JobKindStats(TypedDict):
    timeout_seconds: float | None
    retries: int
    submitted_total: int
    succeeded_total: int
    failed_total: int
    retried_total: int
    timed_out_total: int
    rejected_total: int
    latency_seconds: LatencyStats
    queue_wait_seconds: LatencyStats


class RegistryStats(TypedDict):
    handlers: int
    kinds: dict[str, JobKindStats]


class ConnectionEntry(TypedDict):
    id: int
    state: str
    uses: int
    age_seconds: float
    idle_seconds: float


class ConnectError(TypedDict):
    type: str
    message: str
    at: str


class PoolStats(TypedDict):
    enabled: bool
    size: int
    idle: int
    in_use: int
    connecting: int
    waiting: int
    min_size: int
    max_size: int
    created_total: int
    closed_total: int
    connect_failures_total: int
    acquire_timeouts_total: int
    last_connect_error: ConnectError | None
    connections: list[ConnectionEntry]
    connections_omitted: int


class RouterStats(TypedDict):
    accepting: bool
    queued: int
    capacity: int
    routed_total: int
    rejected_total: int
    rejected_by_reason: dict[str, int]
    standing: bool
    queue_target_seconds: float | None
    oldest_queued_age_seconds: float
    full_ratio: float
    saturated: bool


class SourceStats(TypedDict):
    stream: str
    group: str
    consumer: str
    state: str
    group_lag: int | None
    group_pending: int | None
    consumer_pending: int | None
    in_flight: int
    delivered_total: int
    acked_total: int
    claimed_total: int
    dead_lettered_total: int
    deliveries_exceeded_total: int
    given_back_total: int
    touched_total: int
    paused_for_room_total: int
    read_round_trip_p50_seconds: float
    read_round_trip_p99_seconds: float
    disconnected_seconds: float
    last_error: str | None


class CurrentJob(TypedDict):
    id: int
    kind: str
    attempt: int
    running_seconds: float


class LastError(TypedDict):
    type: str
    message: str
    at: str
    job_id: int | None


class WorkerEntry(TypedDict):
    id: int
    state: str
    jobs_total: int
    failed_total: int
    current_job: CurrentJob | None
    age_seconds: float
    last_error: LastError | None


class LimitStats(TypedDict):
    adaptive_limit: bool
    in_progress_limit: int
    in_progress: int
    limit_floor: int
    limit_keep: float
    lag_target_seconds: float
    lag_seconds: float
    loop_busy: float
    limit_lowered_total: int


class WorkersStats(LimitStats):
    count: int
    alive: int
    busy: int
    idle: int
    stuck: int
    jobs_completed_total: int
    jobs_failed_total: int
    deaths_total: int
    stuck_total: int
    abandoned_total: int
    workers: list[WorkerEntry]
    workers_omitted: int


class TransitionEntry(TypedDict):
    state: str
    at: str


class LifecycleStats(TypedDict):
    state: str
    started_at: str | None
    uptime_seconds: float
    restarts_total: int
    pending_restarts: int
    transitions: list[TransitionEntry]


class RecyclerStats(TypedDict):
    running: bool
    interval_seconds: float
    sweeps_total: int
    sweep_errors_total: int
    last_sweep_at: str | None
    sweep_duration_seconds: float
    workers_recycled_total: dict[str, int]
    connections_recycled_total: dict[str, int]

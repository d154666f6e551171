"""The metrics, as a table: name, type, help and where each value is in the stats snapshot.

Read strictly: a path that the snapshot does not have raises ``KeyError`` (a renamed stats
key fails a test, never exports a silent zero). A section absent altogether, or disabled
(``{"state": "disabled"}``: the application's own HTTP server is off while another serves
it), is skipped, so an ``Observable`` with other stats exports what it has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "KIND_COUNTERS",
    "LABELLED",
    "PER_ITEM",
    "SCALARS",
    "SOURCE_FIELDS",
    "Labelled",
    "PerItem",
    "Scalar",
]

Kind = Literal["gauge", "counter"]


@dataclass(frozen=True, slots=True)
class Scalar:
    """One sample: the number at ``path``."""

    name: str
    kind: Kind
    help: str
    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Labelled:
    """One sample per key of the mapping at ``path`` (``keys``: those keys of the section).

    With ``field``, each value is a mapping and the sample is its ``field``; with a second
    label, each value is a mapping of ``label2`` → number.
    """

    name: str
    kind: Kind
    help: str
    path: tuple[str, ...]
    label: str
    field: str | None = None
    label2: str | None = None
    keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PerItem:
    """One sample per entry of the list at ``path`` (``metrics_per_item`` only)."""

    name: str
    kind: Kind
    help: str
    path: tuple[str, ...]
    label: str
    field: str


def _c(name: str, help: str, *path: str) -> Scalar:
    return Scalar(name, "counter", help, path)


def _g(name: str, help: str, *path: str) -> Scalar:
    return Scalar(name, "gauge", help, path)


SCALARS: tuple[Scalar, ...] = (
    _g("uptime_seconds", "Seconds since the application became running.",
       "application", "uptime_seconds"),
    _g("jobs_in_flight", "Jobs submitted and not yet finished.", "application", "jobs_in_flight"),
    _g("event_loop_lag_seconds", "Worst lateness of the event loop's timer over the last 10 s.",
       "application", "event_loop_lag_seconds"),
    _g("event_loop_lag_max_seconds", "Worst lateness of the event loop's timer since start.",
       "application", "event_loop_lag_max_seconds"),
    _g("gc_frozen_objects", "Objects moved out of the garbage collector's reach at start.",
       "application", "gc", "frozen_objects"),
    _c("event_loop_blocked_total", "Episodes of an event loop blocked past the threshold.",
       "application", "event_loop_blocked_total"),
    _g("job_handlers", "Registered job kinds.", "registry", "handlers"),
    _g("pool_max_connections", "Most connections the pool opens.", "pool", "max_size"),
    _g("pool_waiting", "Jobs waiting for a connection.", "pool", "waiting"),
    _c("pool_connections_created_total", "Connections opened.", "pool", "created_total"),
    _c("pool_connections_closed_total", "Connections closed.", "pool", "closed_total"),
    _c("pool_connect_failures_total", "Failed connects.", "pool", "connect_failures_total"),
    _c("pool_acquire_timeouts_total", "Waits that timed out.", "pool", "acquire_timeouts_total"),
    _g("queue_depth", "Jobs waiting in the router queue.", "router", "queued"),
    _g("queue_capacity", "Router queue capacity.", "router", "capacity"),
    _g("queue_oldest_age_seconds", "Age of the oldest queued job.",
       "router", "oldest_queued_age_seconds"),
    _c("queue_routed_total", "Jobs handed to workers.", "router", "routed_total"),
    _c("queue_rejected_total", "Submissions refused because the queue was full.",
       "router", "rejected_total"),
    _g("queue_full_ratio", "Share of the last saturation_grace seconds the queue was full.",
       "router", "full_ratio"),
    _g("queue_saturated", "1 while the router is saturated (unhealthy).", "router", "saturated"),
    _g("queue_standing", "1 while the queue is standing: submissions that would wait over "
       "queue_target are refused.", "router", "standing"),
    _g("workers_configured", "Workers the application should run.", "workers", "count"),
    _g("workers_alive", "Workers able to take jobs.", "workers", "alive"),
    _g("workers_busy", "Workers running a job.", "workers", "busy"),
    _g("workers_stuck", "Workers whose handler ignores its cancellation.", "workers", "stuck"),
    _c("worker_deaths_total", "Workers that died unexpectedly.", "workers", "deaths_total"),
    _g("workers_in_progress_limit", "Jobs that may be taken or run at once now (the adaptive "
       "limit, or workers when it is off).", "workers", "in_progress_limit"),
    _g("workers_in_progress", "Workers holding a place under the limit (taking or running a "
       "job).", "workers", "in_progress"),
    _g("workers_limit_lag_seconds", "The loop's own lag the limit last read (mean over its "
       "interval).", "workers", "lag_seconds"),
    _g("event_loop_busy_ratio", "Share of its CPU time the event loop used (1: saturated), "
       "as the in-progress limit last read it.", "workers", "loop_busy"),
    _g("workers_limit_lag_target_seconds", "The lag the adaptive limit steers towards.",
       "workers", "lag_target_seconds"),
    _c("workers_limit_lowered_total", "Times the adaptive limit was lowered.",
       "workers", "limit_lowered_total"),
    _c("workers_stuck_total", "Workers replaced because their handler was stuck.",
       "workers", "stuck_total"),
    _c("workers_abandoned_total",
       "Workers abandoned at stop because their handler refused to stop.",
       "workers", "abandoned_total"),
    _c("worker_restarts_total", "Dead workers restarted by the supervisor.",
       "lifecycle", "restarts_total"),
    _c("recycler_sweeps_total", "Recycler sweeps.", "recycler", "sweeps_total"),
    _c("recycler_sweep_errors_total", "Recycler sweeps that raised.",
       "recycler", "sweep_errors_total"),
    _g("recycler_sweep_duration_seconds", "Duration of the last sweep.",
       "recycler", "sweep_duration_seconds"),
    _c("http_rate_limited_total", "Requests answered 429.", "http", "rate_limit", "rejected_total"),
    _g("http_rate_limit_clients", "Clients with a rate-limit bucket.",
       "http", "rate_limit", "clients"),
    _c("http_fast_probes_total", "Probes answered on the fast path, as their bytes arrived.",
       "http", "fast_probes_total"),
    _c("http_auth_failures_total", "Requests answered 401.", "http", "auth", "failures_total"),
    _g("http_draining", "1 while readiness is turned off (draining).", "http", "draining"),
    _g("http_connections", "Open HTTP connections.", "http", "connections", "active"),
    _c("http_connections_rejected_total", "Connections closed at once: the cap was reached.",
       "http", "connections", "rejected_total"),
    _c("http_connections_evicted_total", "Slow connections closed to make room at the cap.",
       "http", "connections", "evicted_total"),
    _c("http_connections_header_timeouts_total", "Connections closed for a slow request head.",
       "http", "connections", "header_timeouts_total"),
    _c("http_bad_requests_total", "Malformed requests answered 400, 414 or 431.",
       "http", "connections", "bad_requests_total"),
)  # fmt: skip
"""Families of one sample."""

KIND_COUNTERS: tuple[tuple[str, str], ...] = (
    ("submitted", "Jobs accepted"),
    ("succeeded", "Jobs that succeeded"),
    ("failed", "Jobs that failed on their last attempt"),
    ("retried", "Retry attempts"),
    ("timed_out", "Jobs whose last attempt timed out"),
    ("rejected", "Submissions refused because the queue was full"),
)

SOURCE_FIELDS: tuple[tuple[str, Kind, str], ...] = (
    ("delivered_total", "counter", "Entries the source received (read or taken over)"),
    ("acked_total", "counter", "Entries acknowledged after their outcome"),
    ("claimed_total", "counter", "Entries taken over from idle consumers"),
    ("dead_lettered_total", "counter", "Entries copied to the dead-letter stream"),
    ("deliveries_exceeded_total", "counter", "Entries dead-lettered past max_deliveries"),
    ("in_flight", "gauge", "Entries of the source queued or running here"),
    ("group_lag", "gauge", "Entries of the stream not yet delivered to the group"),
    ("group_pending", "gauge", "Entries delivered to the group and not acknowledged"),
    ("consumer_pending", "gauge", "Entries delivered to this consumer and not acknowledged"),
    ("read_round_trip_p99_seconds", "gauge", "99th percentile of a read's round trip"),
    ("disconnected_seconds", "gauge", "Seconds the broker has been out of reach (0: reached)"),
)
"""The figures of a job source's stats exported as ``orchestrator_source_<field>``."""

LABELLED: tuple[Labelled, ...] = (
    *(
        Labelled(f"jobs_{stat}_total", "counter", f"{doc}, by job kind.", ("registry", "kinds"),
                 "kind", field=f"{stat}_total")
        for stat, doc in KIND_COUNTERS
    ),
    Labelled("jobs_refused_total", "counter", "Submissions refused at once, by reason "
             "(queue_full, standing_wait).", ("router", "rejected_by_reason"), "reason"),
    Labelled("pool_connections", "gauge", "Pooled connections by state.", ("pool",), "state",
             keys=("idle", "in_use", "connecting")),
    Labelled("recycled_workers_total", "counter", "Workers retired and replaced, by reason.",
             ("recycler", "workers_recycled_total"), "reason"),
    Labelled("recycled_connections_total", "counter",
             "Connections retired and replaced, by reason.",
             ("recycler", "connections_recycled_total"), "reason"),
    Labelled("http_requests_total", "counter", "HTTP responses by route and status class.",
             ("http", "requests_by_route"), "route", label2="status_class"),
    *(
        Labelled(f"source_{field}", kind, f"{doc}, by job source (stream/group).",
                 ("sources",), "source", field=field)
        for field, kind, doc in SOURCE_FIELDS
    ),
)  # fmt: skip
"""Families of one sample per key."""

PER_ITEM: tuple[PerItem, ...] = (
    PerItem("worker_jobs_total", "counter", "Jobs run by each worker.", ("workers", "workers"),
            "worker", "jobs_total"),
    PerItem("connection_uses_total", "counter", "Uses of each connection.",
            ("pool", "connections"), "connection", "uses"),
    PerItem("connection_age_seconds", "gauge", "Age of each connection.",
            ("pool", "connections"), "connection", "age_seconds"),
)  # fmt: skip
"""Families of one sample per listed worker or connection."""

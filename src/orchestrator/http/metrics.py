"""Prometheus exposition: the stats snapshot turned into metric families, rendered once.

A custom collector on a dedicated ``CollectorRegistry`` reads the current snapshot (so a
scrape never calls ``get_stats()`` a second time) and the health report; the process
collector adds CPU, memory and file descriptors. The exposition is rendered once per
snapshot and per negotiated format (text, OpenMetrics; gzip or not) and served as bytes:
rendering blocks the loop, so it must not happen on every scrape.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from orchestrator.http.snapshot import Snapshot
from orchestrator.state import State
from orchestrator.types import Observable

__all__ = ["MetricsRenderer", "StatsCollector"]

STATES = tuple(State)
P = "orchestrator_"


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(P + name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(P + name, doc, value=value)


def _labelled(
    kind: type[GaugeMetricFamily] | type[CounterMetricFamily],
    name: str,
    doc: str,
    label: str,
    values: dict[str, Any],
) -> GaugeMetricFamily | CounterMetricFamily:
    family = kind(P + name, doc, labels=[label])
    for key, value in values.items():
        family.add_metric([str(key)], float(value))
    return family


class StatsCollector(Collector):
    """Metric families from a stats snapshot (``Snapshot.data``) and a health report.

    Args:
        observable: gives the health report (component health is not part of the stats).
        per_item: also export one series per worker and per connection.
    """

    def __init__(self, observable: Observable, *, per_item: bool = False) -> None:
        self._observable = observable
        self._per_item = per_item
        self.snapshot: Snapshot | None = None

    def describe(self) -> list[Any]:
        """Nothing: registering must not call ``collect()``."""
        return []

    def collect(self) -> Iterator[Any]:
        """Every family, from the snapshot set by the renderer."""
        if self.snapshot is None:
            return
        stats = self.snapshot.data
        yield from self._application(stats.get("application", {}))
        yield from self._health()
        yield from self._registry(stats.get("registry", {}))
        yield from self._pool(stats.get("pool", {}))
        yield from self._router(stats.get("router", {}))
        yield from self._workers(stats.get("workers", {}))
        yield from self._lifecycle(stats.get("lifecycle", {}))
        yield from self._recycler(stats.get("recycler", {}))
        yield from self._http(stats.get("http", {}))
        yield _gauge("stats_build_duration_seconds",
                     "How long the last get_stats() snapshot took to build.",
                     self.snapshot.build_seconds)  # fmt: skip

    def _application(self, app: dict[str, Any]) -> Iterator[Any]:
        info = GaugeMetricFamily(P + "build_info", "Application name and version (always 1).",
                                 labels=["name", "version"])  # fmt: skip
        info.add_metric([str(app.get("name", "")), str(app.get("version", ""))], 1)
        yield info
        state = GaugeMetricFamily(P + "application_state",
                                  "1 for the application's current lifecycle state.",
                                  labels=["state"])  # fmt: skip
        for name in STATES:
            state.add_metric([name], 1.0 if app.get("state") == name else 0.0)
        yield state
        yield _gauge("uptime_seconds", "Seconds since the application became running.",
                     app.get("uptime_seconds", 0.0))  # fmt: skip
        yield _gauge("jobs_in_flight", "Jobs submitted and not yet finished.",
                     app.get("jobs_in_flight", 0))  # fmt: skip
        if "event_loop_lag_seconds" in app:
            yield _gauge("event_loop_lag_seconds",
                         "Worst lateness of the event loop's timer over the last 10 s.",
                         app["event_loop_lag_seconds"])  # fmt: skip

    def _health(self) -> Iterator[Any]:
        report = self._observable.health()
        family = GaugeMetricFamily(P + "component_healthy",
                                   "1 when the component is healthy, 0 when not.",
                                   labels=["component"])  # fmt: skip
        for name, check in report.components.items():
            family.add_metric([name], 1.0 if check.healthy else 0.0)
        yield family
        yield _gauge("healthy", "1 when every component is healthy.", report.healthy)

    def _registry(self, registry: dict[str, Any]) -> Iterator[Any]:
        kinds: dict[str, Any] = registry.get("kinds", {})
        for stat, doc in (("submitted", "Jobs accepted"), ("succeeded", "Jobs that succeeded"),
                          ("failed", "Jobs that failed on their last attempt"),
                          ("retried", "Retry attempts"),
                          ("timed_out", "Jobs whose last attempt timed out")):  # fmt: skip
            family = CounterMetricFamily(P + f"jobs_{stat}_total", f"{doc}, by job kind.",
                                         labels=["kind"])  # fmt: skip
            for kind, k in kinds.items():
                family.add_metric([kind], k.get(f"{stat}_total", 0))
            yield family
        histogram = HistogramMetricFamily(P + "job_duration_seconds",
                                          "Job latency from dequeue to outcome, all attempts.",
                                          labels=["kind"])  # fmt: skip
        for kind, k in kinds.items():
            latency = k.get("latency_seconds", {})
            buckets = [(le, float(n)) for le, n in latency.get("buckets", {}).items()]
            if buckets:
                histogram.add_metric([kind], buckets, sum_value=latency.get("sum", 0.0))
        yield histogram
        yield _gauge("job_handlers", "Registered job kinds.", registry.get("handlers", 0))

    def _pool(self, pool: dict[str, Any]) -> Iterator[Any]:
        yield _labelled(GaugeMetricFamily, "pool_connections", "Pooled connections by state.",
                        "state", {"idle": pool.get("idle", 0), "in_use": pool.get("in_use", 0),
                                  "connecting": pool.get("connecting", 0)})  # fmt: skip
        yield _gauge("pool_max_connections", "Most connections the pool opens.",
                     pool.get("max_size", 0))  # fmt: skip
        yield _gauge("pool_waiting", "Jobs waiting for a connection.", pool.get("waiting", 0))
        for name, stat, doc in (
            ("pool_connections_created_total", "created_total", "Connections opened."),
            ("pool_connections_closed_total", "closed_total", "Connections closed."),
            ("pool_connect_failures_total", "connect_failures_total", "Failed connects."),
            ("pool_acquire_timeouts_total", "acquire_timeouts_total", "Waits that timed out."),
        ):  # fmt: skip
            yield _counter(name, doc, pool.get(stat, 0))
        if self._per_item:
            uses = CounterMetricFamily(P + "connection_uses_total", "Uses of each connection.",
                                       labels=["connection"])  # fmt: skip
            age = GaugeMetricFamily(P + "connection_age_seconds", "Age of each connection.",
                                    labels=["connection"])  # fmt: skip
            for conn in pool.get("connections", []):
                uses.add_metric([str(conn["id"])], conn["uses"])
                age.add_metric([str(conn["id"])], conn["age_seconds"])
            yield uses
            yield age

    def _router(self, router: dict[str, Any]) -> Iterator[Any]:
        yield _gauge("queue_depth", "Jobs waiting in the router queue.", router.get("queued", 0))
        yield _gauge("queue_capacity", "Router queue capacity.", router.get("capacity", 0))
        yield _gauge("queue_oldest_age_seconds", "Age of the oldest queued job.",
                     router.get("oldest_queued_age_seconds", 0.0))  # fmt: skip
        yield _counter("queue_routed_total", "Jobs handed to workers.",
                       router.get("routed_total", 0))  # fmt: skip
        yield _counter("queue_rejected_total", "Submissions refused because the queue was full.",
                       router.get("rejected_total", 0))  # fmt: skip
        yield _gauge("queue_full_ratio",
                     "Share of the last saturation_grace seconds the queue was full.",
                     router.get("full_ratio", 0.0))  # fmt: skip
        yield _gauge("queue_saturated", "1 while the router is saturated (unhealthy).",
                     router.get("saturated", False))  # fmt: skip

    def _workers(self, workers: dict[str, Any]) -> Iterator[Any]:
        yield _gauge("workers_configured", "Workers the application should run.",
                     workers.get("count", 0))  # fmt: skip
        yield _gauge("workers_alive", "Workers able to take jobs.", workers.get("alive", 0))
        yield _gauge("workers_busy", "Workers running a job.", workers.get("busy", 0))
        yield _counter("worker_deaths_total", "Workers that died unexpectedly.",
                       workers.get("deaths_total", 0))  # fmt: skip
        yield _gauge("workers_stuck", "Workers whose handler ignores its cancellation.",
                     workers.get("stuck", 0))  # fmt: skip
        yield _counter("workers_stuck_total", "Workers replaced because their handler was stuck.",
                       workers.get("stuck_total", 0))  # fmt: skip
        yield _counter("workers_abandoned_total",
                       "Workers abandoned at stop because their handler refused to stop.",
                       workers.get("abandoned_total", 0))  # fmt: skip
        if self._per_item:
            jobs = CounterMetricFamily(P + "worker_jobs_total", "Jobs run by each worker.",
                                       labels=["worker"])  # fmt: skip
            for worker in workers.get("workers", []):
                jobs.add_metric([str(worker["id"])], worker["jobs_total"])
            yield jobs

    def _lifecycle(self, lifecycle: dict[str, Any]) -> Iterator[Any]:
        yield _counter("worker_restarts_total", "Dead workers restarted by the supervisor.",
                       lifecycle.get("restarts_total", 0))  # fmt: skip

    def _recycler(self, recycler: dict[str, Any]) -> Iterator[Any]:
        yield _counter("recycler_sweeps_total", "Recycler sweeps.",
                       recycler.get("sweeps_total", 0))  # fmt: skip
        yield _counter("recycler_sweep_errors_total", "Recycler sweeps that raised.",
                       recycler.get("sweep_errors_total", 0))  # fmt: skip
        yield _gauge("recycler_sweep_duration_seconds", "Duration of the last sweep.",
                     recycler.get("sweep_duration_seconds", 0.0))  # fmt: skip
        yield _labelled(CounterMetricFamily, "recycled_workers_total",
                        "Workers retired and replaced, by reason.", "reason",
                        recycler.get("workers_recycled_total", {}))  # fmt: skip
        yield _labelled(CounterMetricFamily, "recycled_connections_total",
                        "Connections retired and replaced, by reason.", "reason",
                        recycler.get("connections_recycled_total", {}))  # fmt: skip

    def _http(self, http: dict[str, Any]) -> Iterator[Any]:
        requests = CounterMetricFamily(P + "http_requests_total",
                                       "HTTP responses by route and status class.",
                                       labels=["route", "status_class"])  # fmt: skip
        for route, classes in http.get("requests_by_route", {}).items():
            for cls, n in classes.items():
                requests.add_metric([route, cls], n)
        yield requests
        limit = http.get("rate_limit", {})
        yield _counter("http_rate_limited_total", "Requests answered 429.",
                       limit.get("rejected_total", 0))  # fmt: skip
        yield _gauge("http_rate_limit_clients", "Clients with a rate-limit bucket.",
                     limit.get("clients", 0))  # fmt: skip
        yield _counter("http_auth_failures_total", "Requests answered 401.",
                       http.get("auth", {}).get("failures_total", 0))  # fmt: skip
        yield _gauge("http_draining", "1 while readiness is turned off (draining).",
                     bool(http.get("draining")))  # fmt: skip
        conns = http.get("connections", {})
        yield _gauge("http_connections", "Open HTTP connections.", conns.get("active", 0))
        for stat, doc in (("rejected", "Connections closed at once: the cap was reached"),
                          ("evicted", "Slow connections closed to make room at the cap"),
                          ("header_timeouts", "Connections closed for a slow request head"),
                          ("bad_requests", "Malformed requests answered 400/431")):  # fmt: skip
            yield _counter(f"http_connections_{stat}_total" if stat != "bad_requests"
                           else "http_bad_requests_total", f"{doc}.",
                           conns.get(f"{stat}_total", 0))  # fmt: skip


class MetricsRenderer:
    """Renders the exposition once per snapshot and format, then serves cached bytes.

    Args:
        observable: source of the health report.
        per_item: export per-worker and per-connection series.
        process: include the process collector (CPU, memory, file descriptors).
    """

    def __init__(self, observable: Observable, *, per_item: bool = False, process: bool = True):
        self.registry = CollectorRegistry(auto_describe=False)
        self._collector = StatsCollector(observable, per_item=per_item)
        self.registry.register(self._collector)
        if process:
            ProcessCollector(namespace="", registry=self.registry)
        self._for: Snapshot | None = None
        self._rendered: dict[tuple[str, bool], tuple[bytes, str]] = {}
        self.renders_total = 0

    def render(self, snap: Snapshot, accept: str, gzip_ok: bool) -> tuple[bytes, str]:
        """The exposition bytes for ``snap`` in the format ``accept`` negotiates, and its type."""
        encoder, content_type = choose_encoder(accept)
        key = (content_type, gzip_ok)
        if snap is not self._for:
            self._for, self._rendered = snap, {}
        cached = self._rendered.get(key)
        if cached is None:
            plain = self._rendered.get((content_type, False))
            if plain is None:
                self._collector.snapshot = snap
                body = encoder(self.registry)
                self.renders_total += 1
                plain = self._rendered[content_type, False] = (body, content_type)
            cached = plain if not gzip_ok else (gzip.compress(plain[0], 6), content_type)
            self._rendered[key] = cached
        return cached

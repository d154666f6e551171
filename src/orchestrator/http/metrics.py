"""Prometheus exposition: the stats snapshot turned into metric families, rendered once.

A custom collector on a dedicated ``CollectorRegistry`` reads the current snapshot (so a
scrape never calls ``get_stats()`` a second time) and the health report; the process
collector adds CPU, memory and file descriptors. The exposition is rendered once per
snapshot and per negotiated format (text, OpenMetrics; gzip or not) and served as bytes:
rendering blocks the loop, so it must not happen on every scrape.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from orchestrator.http.metric_table import LABELLED, PER_ITEM, SCALARS, Kind, Labelled
from orchestrator.http.snapshot import Snapshot
from orchestrator.state import State
from orchestrator.types import Observable

__all__ = ["MetricsRenderer", "StatsCollector", "read"]

P = "orchestrator_"

Family = GaugeMetricFamily | CounterMetricFamily


def read(stats: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path``; ``KeyError`` (naming the path) when it is not there."""
    value: Any = stats
    for i, key in enumerate(path):
        try:
            value = value[key]
        except KeyError:
            raise KeyError(f"stats have no {'.'.join(path[: i + 1])}") from None
    return value


def _family(kind: Kind, name: str, doc: str, labels: list[str] | None = None) -> Family:
    cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
    return cls(P + name, doc, labels=labels)


class StatsCollector(Collector):
    """Metric families from a stats snapshot (``Snapshot.data``) and a health report.

    Everything but health, build info and the latency histogram comes from the tables of
    ``metric_table``; a section the snapshot lacks is skipped, a key it lacks is an error.

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
        stats = {
            name: section
            for name, section in self.snapshot.data.items()
            if not (isinstance(section, Mapping) and section.get("state") == "disabled")
        }
        if "application" in stats:
            yield from self._application(stats["application"])
        yield from self._health()
        for scalar in SCALARS:
            if scalar.path[0] in stats:
                family = _family(scalar.kind, scalar.name, scalar.help)
                family.add_metric([], float(read(stats, scalar.path)))
                yield family
        for spec in LABELLED:
            if spec.path[0] in stats:
                yield self._labelled(stats, spec)
        if "registry" in stats:
            kinds = stats["registry"]["kinds"]
            yield _histogram(
                "job_duration_seconds",
                "Job latency from dequeue to outcome, all attempts.",
                "kind",
                {kind: k["latency_seconds"] for kind, k in kinds.items()},
            )
            yield _histogram(
                "job_queue_wait_seconds",
                "Time jobs waited in the queue, enqueue to dequeue.",
                "kind",
                {kind: k["queue_wait_seconds"] for kind, k in kinds.items()},
            )
        if "application" in stats:
            yield _histogram(
                "gc_pause_seconds",
                "Event loop pauses for garbage collection, by generation.",
                "generation",
                stats["application"]["gc"]["pause_seconds"],
            )
        if self._per_item:
            for item in PER_ITEM:
                if item.path[0] in stats:
                    family = _family(item.kind, item.name, item.help, [item.label])
                    for entry in read(stats, item.path):
                        family.add_metric([str(entry["id"])], float(entry[item.field]))
                    yield family
        yield GaugeMetricFamily(
            P + "stats_build_duration_seconds",
            "How long the last get_stats() snapshot took to build.",
            value=self.snapshot.build_seconds,
        )

    def _labelled(self, stats: Mapping[str, Any], spec: Labelled) -> Family:
        labels = [spec.label] if spec.label2 is None else [spec.label, spec.label2]
        family = _family(spec.kind, spec.name, spec.help, labels)
        source = read(stats, spec.path)
        keys = spec.keys or tuple(source)
        for key in keys:
            value = source[key]
            if spec.label2 is not None:
                for inner, n in value.items():
                    family.add_metric([str(key), str(inner)], float(n))
            else:
                number = value if spec.field is None else value[spec.field]
                if number is not None:  # not known yet (a source's group figures)
                    family.add_metric([str(key)], float(number))
        return family

    def _application(self, app: Mapping[str, Any]) -> Iterator[Any]:
        info = GaugeMetricFamily(
            P + "build_info", "Application name and version (always 1).", labels=["name", "version"]
        )
        info.add_metric([str(app["name"]), str(app["version"])], 1)
        yield info
        state = GaugeMetricFamily(
            P + "application_state",
            "1 for the application's current lifecycle state.",
            labels=["state"],
        )
        for name in State:
            state.add_metric([name.value], 1.0 if app["state"] == name.value else 0.0)
        yield state

    def _health(self) -> Iterator[Any]:
        report = self._observable.health()
        family = GaugeMetricFamily(
            P + "component_healthy",
            "1 when the component is healthy, 0 when not.",
            labels=["component"],
        )
        for name, check in report.components.items():
            family.add_metric([name], 1.0 if check.healthy else 0.0)
        yield family
        healthy = GaugeMetricFamily(P + "healthy", "1 when every component is healthy.")
        healthy.add_metric([], 1.0 if report.healthy else 0.0)
        yield healthy


def _histogram(
    name: str, doc: str, label: str, series: Mapping[str, Mapping[str, Any]]
) -> HistogramMetricFamily:
    """One histogram family: a series per ``label`` value, each shaped like the stats'
    histograms (cumulative ``buckets``, ``sum``)."""
    histogram = HistogramMetricFamily(P + name, doc, labels=[label])
    for value, data in series.items():
        buckets = [(le, float(n)) for le, n in data["buckets"].items()]
        histogram.add_metric([value], buckets, sum_value=data["sum"])
    return histogram


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

"""Registry: handler registration, lookup, outcome counters and the latency histogram."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import ConfigError, Job, UnknownJobKind
from orchestrator.components.registry import LATENCY_BUCKETS, LatencyHistogram, Registry

KIND_KEYS = {
    "timeout_seconds",
    "retries",
    "submitted_total",
    "succeeded_total",
    "failed_total",
    "retried_total",
    "timed_out_total",
    "rejected_total",
    "latency_seconds",
    "queue_wait_seconds",
}


async def handler(job: Job) -> Any:
    return job.payload


def test_lookup_returns_the_registered_spec() -> None:
    """lookup() returns the spec registered for a kind, with its timeout and retries."""
    registry = Registry()
    registry.register("echo", handler, timeout=2.5, retries=3)
    spec = registry.lookup("echo")
    assert (spec.kind, spec.handler, spec.timeout, spec.retries) == ("echo", handler, 2.5, 3)
    assert registry.kinds == ["echo"]


def test_lookup_of_an_unknown_kind_raises_unknown_job_kind() -> None:
    """An unregistered kind raises UnknownJobKind, which is also a LookupError."""
    registry = Registry()
    with pytest.raises(UnknownJobKind, match="'nope'") as info:
        registry.lookup("nope")
    assert isinstance(info.value, LookupError)


def test_register_replaces_a_handler_and_keeps_its_counters() -> None:
    """Registering a kind again replaces its spec but keeps the counters gathered so far."""
    registry = Registry()
    registry.register("echo", handler)
    registry.record_submitted("echo")
    registry.register("echo", handler, retries=2)
    kind = registry.stats()["kinds"]["echo"]
    assert (kind["retries"], kind["submitted_total"]) == (2, 1)


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("", {}),
        ("k", {"timeout": 0}),
        ("k", {"timeout": -1.0}),
        ("k", {"timeout": float("nan")}),
        ("k", {"retries": -1}),
        ("k", {"retries": True}),
        ("k", {"retries": 1.5}),
    ],
    ids=[
        "empty-kind",
        "zero-timeout",
        "negative-timeout",
        "nan-timeout",
        "negative-retries",
        "bool-retries",
        "float-retries",
    ],
)
def test_register_rejects_invalid_specs(kind: str, options: dict[str, Any]) -> None:
    """An empty kind, a timeout that is not > 0 or retries that are not an int >= 0 fail."""
    with pytest.raises(ConfigError):
        Registry().register(kind, handler, **options)


def test_stats_have_per_kind_counters() -> None:
    """stats() counts handlers and, per kind, every outcome with the documented keys."""
    registry = Registry()
    registry.register("a", handler, timeout=1.0, retries=1)
    registry.register("b", handler)
    for _ in range(3):
        registry.record_submitted("a")
    registry.record_retry("a")
    registry.record_outcome("a", 0.01, ok=True, timed_out=False)
    registry.record_outcome("a", 0.02, ok=False, timed_out=False)
    registry.record_outcome("a", 1.0, ok=False, timed_out=True)
    registry.record_rejected("a")
    registry.record_queue_wait("a", 0.003)
    stats = registry.stats()
    assert set(stats) == {"handlers", "kinds"}
    assert stats["handlers"] == 2
    a = stats["kinds"]["a"]
    assert set(a) == KIND_KEYS
    histograms = {"latency_seconds", "queue_wait_seconds"}
    assert {k: v for k, v in a.items() if k not in histograms} == {
        "timeout_seconds": 1.0,
        "retries": 1,
        "submitted_total": 3,
        "succeeded_total": 1,
        "failed_total": 2,
        "retried_total": 1,
        "timed_out_total": 1,
        "rejected_total": 1,
    }
    assert a["latency_seconds"]["count"] == 3
    assert (a["queue_wait_seconds"]["count"], a["queue_wait_seconds"]["sum"]) == (1, 0.003)
    assert stats["kinds"]["b"]["submitted_total"] == 0


def test_health_needs_at_least_one_handler() -> None:
    """The registry is unhealthy with no handler and healthy once one is registered."""
    registry = Registry()
    verdict = registry.health()
    assert not verdict.healthy
    assert verdict.reason == "no job handlers registered"
    registry.register("echo", handler)
    assert registry.health().healthy


async def test_start_and_stop_keep_handlers() -> None:
    """start() and stop() change nothing: handlers stay registered for a restart."""
    registry = Registry()
    registry.register("echo", handler)
    await registry.start()
    await registry.stop()
    assert registry.lookup("echo").handler is handler


def test_histogram_buckets_are_cumulative_with_inclusive_upper_bounds() -> None:
    """A value on a bound counts in that bucket (le), counts are cumulative, +Inf is last."""
    hist = LatencyHistogram()
    for seconds in (0.0005, 0.0007, 0.001, 0.003, 100.0):
        hist.observe(seconds)
    out = hist.to_dict()
    buckets = out["buckets"]
    assert list(buckets) == [*(repr(b) for b in LATENCY_BUCKETS), "+Inf"]
    assert buckets["0.0005"] == 1
    assert buckets["0.001"] == 3
    assert buckets["0.0025"] == 3
    assert buckets["0.005"] == 4
    assert buckets["30.0"] == 4
    assert buckets["+Inf"] == 5
    assert out["count"] == 5
    assert out["sum"] == pytest.approx(100.0052)


def test_histogram_quantiles_interpolate_inside_the_bucket() -> None:
    """p50 and p99 interpolate linearly between the bounds of the bucket holding the rank."""
    hist = LatencyHistogram()
    for _ in range(100):
        hist.observe(0.003)  # all in the (0.0025, 0.005] bucket
    out = hist.to_dict()
    assert out["p50"] == pytest.approx(0.0025 + 0.0025 * 0.50)
    assert out["p99"] == pytest.approx(0.0025 + 0.0025 * 0.99)


def test_histogram_quantiles_across_buckets() -> None:
    """With 90 fast and 10 slow jobs, p50 lies in the fast bucket and p99 in the slow one."""
    hist = LatencyHistogram()
    for _ in range(90):
        hist.observe(0.0008)  # (0.0005, 0.001]
    for _ in range(10):
        hist.observe(0.7)  # (0.5, 1.0]
    out = hist.to_dict()
    assert out["p50"] is not None
    assert 0.0005 < out["p50"] <= 0.001
    assert out["p99"] == pytest.approx(0.5 + 0.5 * (99 - 90) / 10)


def test_histogram_quantiles_of_empty_and_overflow() -> None:
    """An empty histogram has no quantiles; values past the last bound report that bound."""
    hist = LatencyHistogram()
    assert (hist.to_dict()["p50"], hist.to_dict()["p99"]) == (None, None)
    hist.observe(45.0)
    assert hist.quantile(0.5) == LATENCY_BUCKETS[-1]
    assert hist.to_dict()["buckets"]["30.0"] == 0

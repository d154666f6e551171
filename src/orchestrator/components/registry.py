"""Registry: job kinds mapped to handlers, with per-kind outcome counters and latency."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from orchestrator.errors import ConfigError, UnknownJobKind
from orchestrator.health import ComponentHealth
from orchestrator.job import Handler, JobSpec
from orchestrator.stats import JobKindStats, LatencyStats, RegistryStats, cumulative

__all__ = ["LATENCY_BUCKETS", "LatencyHistogram", "Registry"]

LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
"""Upper bounds (seconds) of the job latency histogram; a final +Inf bucket is implied."""


@dataclass(slots=True)
class LatencyHistogram:
    """A fixed-bucket histogram of durations, shaped like a Prometheus histogram."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    sum: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        """Record one duration."""
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.sum += seconds
        self.count += 1

    def quantile(self, q: float) -> float | None:
        """Estimate a quantile by linear interpolation inside its bucket (None when empty)."""
        if self.count == 0:
            return None
        rank = q * self.count
        seen = 0
        for i, n in enumerate(self.counts):
            if n and seen + n >= rank:
                lower = LATENCY_BUCKETS[i - 1] if i > 0 else 0.0
                if i == len(LATENCY_BUCKETS):  # +Inf bucket: the best bound we have
                    return lower
                return lower + (LATENCY_BUCKETS[i] - lower) * (rank - seen) / n
            seen += n
        return LATENCY_BUCKETS[-1]

    def to_dict(self) -> LatencyStats:
        """Cumulative bucket counts keyed by upper bound (``+Inf`` last), sum, count, p50, p99."""
        return {
            "buckets": cumulative(LATENCY_BUCKETS, self.counts),
            "sum": self.sum,
            "count": self.count,
            "p50": self.quantile(0.5),
            "p99": self.quantile(0.99),
        }


@dataclass(slots=True)
class KindStats:
    """Outcome counters of one job kind."""

    submitted: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    timed_out: int = 0
    rejected: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    queue_wait: LatencyHistogram = field(default_factory=LatencyHistogram)


class Registry:
    """Maps job kinds to handlers and counts what happens to each kind's jobs."""

    def __init__(self) -> None:
        self._specs: dict[str, JobSpec] = {}
        self._stats: dict[str, KindStats] = {}

    def register(
        self, kind: str, handler: Handler, *, timeout: float | None = None, retries: int = 0
    ) -> JobSpec:
        """Register (or replace) the handler of ``kind``.

        Raises:
            ConfigError: on an empty kind, a non-positive timeout or negative retries.
        """
        if not isinstance(kind, str) or not kind:
            raise ConfigError("job kind must be a non-empty string")
        if timeout is not None and not timeout > 0:
            raise ConfigError(f"timeout for {kind!r} must be > 0 or None, got {timeout!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"retries for {kind!r} must be an integer >= 0, got {retries!r}")
        spec = JobSpec(kind, handler, timeout, retries)
        self._specs[kind] = spec
        self._stats.setdefault(kind, KindStats())
        return spec

    def lookup(self, kind: str) -> JobSpec:
        """The spec of ``kind``.

        Raises:
            UnknownJobKind: when nothing is registered under ``kind``.
        """
        try:
            return self._specs[kind]
        except KeyError:
            raise UnknownJobKind(f"no handler registered for job kind {kind!r}") from None

    @property
    def kinds(self) -> list[str]:
        """The registered kinds."""
        return list(self._specs)

    def record_submitted(self, kind: str) -> None:
        """Count an accepted submission."""
        self._stats[kind].submitted += 1

    def record_rejected(self, kind: str) -> None:
        """Count a submission refused because the queue was full."""
        self._stats[kind].rejected += 1

    def record_queue_wait(self, kind: str, seconds: float) -> None:
        """Record how long a job waited in the queue (enqueue to dequeue)."""
        self._stats[kind].queue_wait.observe(seconds)

    def record_retry(self, kind: str) -> None:
        """Count a retry (a further attempt after a failure)."""
        self._stats[kind].retried += 1

    def record_outcome(self, kind: str, seconds: float, *, ok: bool, timed_out: bool) -> None:
        """Count a final outcome and its latency (from dequeue to result, all attempts)."""
        st = self._stats[kind]
        if ok:
            st.succeeded += 1
        else:
            st.failed += 1
            if timed_out:
                st.timed_out += 1
        st.latency.observe(seconds)

    async def start(self) -> None:
        """Nothing to start: the registry is plain data."""

    async def stop(self) -> None:
        """Nothing to stop; handlers stay registered for a restart."""

    def stats(self) -> RegistryStats:
        """Per-kind counters, run latency and queue-wait histograms."""
        kinds: dict[str, JobKindStats] = {}
        for kind, st in self._stats.items():
            spec = self._specs[kind]
            kinds[kind] = {
                "timeout_seconds": spec.timeout,
                "retries": spec.retries,
                "submitted_total": st.submitted,
                "succeeded_total": st.succeeded,
                "failed_total": st.failed,
                "retried_total": st.retried,
                "timed_out_total": st.timed_out,
                "rejected_total": st.rejected,
                "latency_seconds": st.latency.to_dict(),
                "queue_wait_seconds": st.queue_wait.to_dict(),
            }
        return {"handlers": len(self._specs), "kinds": kinds}

    def health(self) -> ComponentHealth:
        """Healthy when at least one handler is registered."""
        if not self._specs:
            return ComponentHealth.failing("no job handlers registered")
        return ComponentHealth.ok()

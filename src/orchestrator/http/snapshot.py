"""SnapshotCache: the serialised stats, rebuilt at most once per TTL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import structlog

from orchestrator.clock import utc_iso
from orchestrator.http.etag import etag_of
from orchestrator.types import Clock, StatsDict

__all__ = ["Snapshot", "SnapshotCache"]

log = structlog.get_logger("orchestrator.http.snapshot")


class Snapshot:
    """One build of the stats: the dict, its compact JSON bytes, and (lazily) indented bytes."""

    __slots__ = ("_pretty", "body", "build_seconds", "created", "data", "etag", "generated_at")

    def __init__(self, data: StatsDict, created: float, generated_at: float, build_seconds: float):
        self.data = data
        self.body = orjson.dumps(data)
        self.etag = etag_of(self.body)
        self.created = created
        self.generated_at = generated_at
        self.build_seconds = build_seconds
        self._pretty: bytes | None = None

    @property
    def pretty(self) -> bytes:
        """The same JSON, indented, with a trailing newline (built on first use)."""
        if self._pretty is None:
            self._pretty = orjson.dumps(
                self.data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
            )
        return self._pretty


class SnapshotCache:
    """Serves the latest snapshot while it is younger than ``ttl``.

    ``get_stats()`` is synchronous, so a refresh runs to completion without yielding: any
    number of concurrent requests on an expired cache cause exactly one build, no request
    can cancel it half-way, and a build that raises stores nothing (the next call retries).

    Args:
        source: the stats provider (``Observable.get_stats``).
        ttl: seconds a snapshot is served; 0 rebuilds on every call.
        clock: time source for expiry and the ``generated_at`` stamp.
        slow_threshold: a build slower than this logs ``stats_build_slow``.
    """

    def __init__(
        self,
        source: Callable[[], StatsDict],
        *,
        ttl: float,
        clock: Clock,
        slow_threshold: float = 0.05,
    ) -> None:
        self._source = source
        self.ttl = ttl
        self._clock = clock
        self._slow = slow_threshold
        self._current: Snapshot | None = None
        self.hits_total = 0
        self.misses_total = 0
        self.errors_total = 0
        self.last_build_seconds = 0.0

    def get(self) -> tuple[Snapshot, bool]:
        """The current snapshot and whether it came from the cache.

        Raises:
            Exception: whatever ``source`` raised (nothing is cached then).
        """
        snap = self._current
        if snap is not None and self._clock.now() - snap.created < self.ttl:
            self.hits_total += 1
            return snap, True
        self.misses_total += 1
        return self._build(), False

    def _build(self) -> Snapshot:
        started = self._clock.now()
        try:
            data = self._source()
            data["generated_at"] = utc_iso(self._clock.wall())
            snap = Snapshot(data, started, self._clock.wall(), 0.0)
        except Exception:
            self.errors_total += 1
            raise
        snap.build_seconds = self.last_build_seconds = self._clock.now() - started
        if snap.build_seconds > self._slow:
            log.warning("stats_build_slow", duration_ms=round(snap.build_seconds * 1000, 3),
                        threshold_ms=round(self._slow * 1000, 3))  # fmt: skip
        self._current = snap
        return snap

    def remaining(self, snap: Snapshot) -> float:
        """Seconds until ``snap`` expires (0 when already stale)."""
        return max(0.0, snap.created + self.ttl - self._clock.now())

    def stats(self) -> dict[str, Any]:
        """Cache counters and the last build duration."""
        return {
            "ttl_seconds": self.ttl,
            "hits_total": self.hits_total,
            "misses_total": self.misses_total,
            "errors_total": self.errors_total,
            "last_build_seconds": self.last_build_seconds,
        }

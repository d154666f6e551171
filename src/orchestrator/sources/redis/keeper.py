"""What a Redis stream source keeps beside its reading: the running entries touched so no
other consumer takes them over, the group's figures, the connection's state, its stats
and health."""

from __future__ import annotations

import contextlib
import random
from collections import deque
from typing import Any

import redis.asyncio as aredis
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from orchestrator.health import ComponentHealth
from orchestrator.stats import SourceStats
from orchestrator.types import Clock

__all__ = ["OUTAGE", "Keeper", "backoff"]

log = structlog.get_logger("orchestrator.sources.redis")

OUTAGE = (RedisConnectionError, RedisTimeoutError, OSError)
"""Errors of a broker out of reach: retried with backoff, never fatal."""


class Keeper:
    """The source's state, counters, health and its keeping loop (a base of the source)."""

    client: aredis.Redis
    stream: str
    group: str
    consumer: str
    claim_idle: float
    round_trips: deque[float]
    _in_flight: dict[str, Any]

    def __init__(self, clock: Clock, unhealthy_after: float) -> None:
        self.clock = clock
        self.unhealthy_after = unhealthy_after
        self.state = "stopped"
        self.delivered_total = self.acked_total = self.claimed_total = 0
        self.dead_lettered_total = self.deliveries_exceeded_total = 0
        self.given_back_total = self.touched_total = self.paused_total = 0
        self.last_error: str | None = None
        self._down_since: float | None = None
        self.group_lag: int | None = None
        self.group_pending: int | None = None
        self.consumer_pending: int | None = None

    def connected(self) -> None:
        """A command reached the broker."""
        if self._down_since is not None:
            log.info("source_reconnected", stream=self.stream,
                     outage_seconds=round(self.clock.now() - self._down_since, 3))  # fmt: skip
            self._down_since = None
            if self.state == "disconnected":
                self.state = "reading"

    async def disconnected(self, exc: BaseException) -> None:
        """A command failed for want of the broker (retried with backoff). The idle
        connections are dropped too: after a restart of the broker each would fail once."""
        self.last_error = type(exc).__name__
        with contextlib.suppress(Exception):
            await self.client.connection_pool.disconnect(inuse_connections=False)
        if self._down_since is None:
            self._down_since = self.clock.now()
            log.warning("source_disconnected", stream=self.stream, error=type(exc).__name__)
        if self.state not in ("draining", "stopped"):
            self.state = "disconnected"

    async def _keep_loop(self) -> None:
        """Every third of ``claim_idle`` (at most 1 s apart) touch the running entries, so
        that no other consumer takes them over; every second read the group's figures."""
        touch_every = self.claim_idle / 3
        tick = min(1.0, touch_every)
        touched = self.clock.now()
        while True:
            await self.clock.sleep(tick)
            try:
                if self.clock.now() - touched >= touch_every - tick / 2:
                    touched = self.clock.now()
                    await self._touch()
                await self._read_figures()
            except OUTAGE as exc:
                await self.disconnected(exc)

    async def _touch(self) -> None:
        """``XCLAIM ... JUSTID`` by their own consumer: the running entries' idle time back
        to 0, their delivery counts unchanged."""
        ids: list[Any] = list(self._in_flight)
        if ids:
            await self.client.xclaim(self.stream, self.group, self.consumer, 0, ids,
                                     justid=True)  # fmt: skip
            self.touched_total += len(ids)

    async def _read_figures(self) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.xinfo_groups(self.stream)
        pipe.xpending(self.stream, self.group)
        groups, pending = await pipe.execute()
        self.connected()
        for group in groups:
            if group["name"].decode() == self.group:
                self.group_lag, self.group_pending = group.get("lag"), group["pending"]
        mine = [c for c in pending.get("consumers") or () if c["name"].decode() == self.consumer]
        self.consumer_pending = int(mine[0]["pending"]) if mine else 0

    def stats(self) -> SourceStats:
        """Stream, group, consumer, state, the group's figures, counters, read round trips."""
        trips = sorted(self.round_trips)
        return {
            "stream": self.stream,
            "group": self.group,
            "consumer": self.consumer,
            "state": self.state,
            "group_lag": self.group_lag,
            "group_pending": self.group_pending,
            "consumer_pending": self.consumer_pending,
            "in_flight": len(self._in_flight),
            "delivered_total": self.delivered_total,
            "acked_total": self.acked_total,
            "claimed_total": self.claimed_total,
            "dead_lettered_total": self.dead_lettered_total,
            "deliveries_exceeded_total": self.deliveries_exceeded_total,
            "given_back_total": self.given_back_total,
            "touched_total": self.touched_total,
            "paused_for_room_total": self.paused_total,
            "read_round_trip_p50_seconds": _quantile(trips, 0.5),
            "read_round_trip_p99_seconds": _quantile(trips, 0.99),
            "disconnected_seconds": (
                self.clock.now() - self._down_since if self._down_since is not None else 0.0
            ),
            "last_error": self.last_error,
        }

    def health(self) -> ComponentHealth:
        """Failing once the broker has been out of reach for ``unhealthy_after`` seconds."""
        if self._down_since is not None:
            down = self.clock.now() - self._down_since
            if down >= self.unhealthy_after:
                return ComponentHealth.failing(
                    f"broker out of reach for {down:.1f}s ({self.last_error})"
                )
        return ComponentHealth.ok()


def _quantile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def backoff(failures: int) -> float:
    """Seconds before the next try: 0.1 s doubling to 5 s, with full jitter (half to all)."""
    return float(min(5.0, 0.1 * 2 ** min(failures - 1, 6)) * random.uniform(0.5, 1.0))

"""Router: a bounded queue of submitted jobs, handed to idle workers in order."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque

import structlog

from orchestrator.components.saturation import FullTime
from orchestrator.errors import NotRunning, QueueFull
from orchestrator.health import ComponentHealth
from orchestrator.job import Envelope
from orchestrator.stats import RouterStats
from orchestrator.types import Clock

__all__ = ["SATURATED_RATIO", "Router"]

log = structlog.get_logger("orchestrator.router")

SATURATED_RATIO = 0.5
"""Share of the last ``saturation_grace`` seconds the queue may be full, or refusing
submissions, while healthy."""


class Router:
    """A bounded FIFO between submitters and workers.

    ``put`` never waits: a full queue raises ``QueueFull`` (backpressure). ``get`` hands the
    oldest envelope to a worker, or waits for one. A waiter that is cancelled after an
    envelope was handed to it puts the envelope back at the front, so nothing is lost.

    The router is saturated, and unhealthy, when its queue was full for at least half of
    the last ``saturation_grace`` seconds, or refused submissions through at least half of
    them: a queue that a worker frees one slot of now and then, only for the next
    submission to fill it again, is as saturated as one that never moves, and so is one
    that the workers empty in every loop turn and the submitters overfill in the next.
    ``router_saturated`` is logged once when an episode starts and
    ``router_recovered`` once when it ends, each with the jobs refused.

    Args:
        capacity: the most envelopes queued at once.
        clock: time source for queue ages and saturation.
        saturation_grace: the window saturation is judged over, in seconds (0: full is
            saturated at once).
    """

    def __init__(self, capacity: int, clock: Clock, *, saturation_grace: float = 5.0) -> None:
        self._capacity = capacity
        self._clock = clock
        self._grace = saturation_grace
        self._queue: deque[Envelope] = deque()
        self._waiters: deque[asyncio.Future[Envelope | None]] = deque()
        self._accepting = False
        self._closed = False
        self._full = FullTime(saturation_grace)
        self._episode: tuple[float, int] | None = None  # saturated since, rejected_total then
        self.routed_total = 0
        self.rejected_total = 0

    @property
    def accepting(self) -> bool:
        """Whether ``put`` takes new envelopes."""
        return self._accepting

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, env: Envelope) -> None:
        """Queue an envelope or hand it straight to a waiting worker.

        Raises:
            NotRunning: when the router is not accepting.
            QueueFull: when ``capacity`` envelopes are already queued.
        """
        if not self._accepting:
            raise NotRunning("the application is not accepting jobs")
        if self._hand_to_waiter(env):
            return
        if len(self._queue) >= self._capacity:
            self.rejected_total += 1
            now = self._clock.now()
            self._full.full(now)
            self._full.refusal(now)
            self._judge(now)
            raise QueueFull(f"router queue is full ({self._capacity} jobs)")
        self._queue.append(env)
        if len(self._queue) >= self._capacity:
            self._full.full(self._clock.now())

    def _hand_to_waiter(self, env: Envelope) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.routed_total += 1
                waiter.set_result(env)
                return True
        return False

    async def get(self) -> Envelope | None:
        """The oldest envelope, waiting for one if the queue is empty; None once closed."""
        if self._queue:
            return self._pop()
        if self._closed:
            return None
        waiter: asyncio.Future[Envelope | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                handed = waiter.result()
                if handed is not None:  # handed over but never taken: route it again
                    self.routed_total -= 1
                    if not self._hand_to_waiter(handed):  # else idle workers would miss it
                        self._queue.appendleft(handed)
            raise

    def _pop(self) -> Envelope:
        env = self._queue.popleft()
        self.routed_total += 1
        if self._full.is_full:
            now = self._clock.now()
            self._full.not_full(now)
            if self._episode is not None:
                self._judge(now)
        return env

    def drain_queued(self) -> list[Envelope]:
        """Remove and return every queued envelope (used at shutdown to fail them)."""
        items = list(self._queue)
        self._queue.clear()
        self._full.not_full(self._clock.now())
        return items

    def queued(self, limit: int) -> list[Envelope]:
        """The oldest ``limit`` queued envelopes, oldest first."""
        return list(itertools.islice(self._queue, limit))

    def _saturated(self, now: float) -> bool:
        full = self._full
        return (
            full.fraction(now) >= SATURATED_RATIO
            or full.refusing(now) >= SATURATED_RATIO
            or (self._grace <= 0 and len(self._queue) >= self._capacity)
        )

    def _judge(self, now: float) -> bool:
        """Whether the router is saturated now; logs the start and the end of an episode."""
        saturated = self._saturated(now)
        if saturated and self._episode is None:
            # refusals count from the window that tipped it into saturation
            self._episode = (now, self.rejected_total - self._full.refusals(now))
            log.warning(
                "router_saturated",
                capacity=self._capacity,
                full_ratio=round(self._full.fraction(now), 3),
                refused=self._full.refusals(now),
                window_seconds=self._grace,
            )
        elif not saturated and self._episode is not None:
            since, rejected = self._episode
            self._episode = None
            log.info(
                "router_recovered",
                duration_seconds=round(now - since, 3),
                refused=self.rejected_total - rejected,
            )
        return saturated

    async def start(self) -> None:
        """Open for submissions."""
        self._closed = False
        self._accepting = True

    def stop_intake(self) -> None:
        """Refuse new submissions; queued envelopes stay for the workers."""
        self._accepting = False

    async def stop(self) -> None:
        """Refuse submissions, wake idle workers with None and fail what is left."""
        self._accepting = False
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        for env in self.drain_queued():
            env.reject(NotRunning("the application stopped before the job ran"))

    def stats(self) -> RouterStats:
        """Queue depth, capacity, counters and the age of the oldest queued job."""
        oldest = self._clock.now() - self._queue[0].enqueued_at if self._queue else 0.0
        return {
            "accepting": self._accepting,
            "queued": len(self._queue),
            "capacity": self._capacity,
            "routed_total": self.routed_total,
            "rejected_total": self.rejected_total,
            "oldest_queued_age_seconds": oldest,
            "full_ratio": self._full.fraction(self._clock.now()),
            "saturated": self._episode is not None,
        }

    def health(self) -> ComponentHealth:
        """Unhealthy when not accepting, or full (or refusing) for most of the last
        ``saturation_grace``."""
        if not self._accepting:
            return ComponentHealth.failing("router is not accepting jobs")
        now = self._clock.now()
        if self._judge(now):
            fraction, refusing = self._full.fraction(now), self._full.refusing(now)
            also = f", refusing jobs through {refusing:.0%} of it" if fraction < refusing else ""
            return ComponentHealth.failing(
                f"queue of {self._capacity} full {fraction:.0%} of the last {self._grace:g}s"
                f"{also} ({self._full.refusals(now)} jobs refused)"
            )
        return ComponentHealth.ok()

"""Router: a bounded queue of submitted jobs, handed to idle workers in order."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import deque

import structlog

from orchestrator.components.saturation import FullTime
from orchestrator.errors import NotRunning, OrchestratorError, Overloaded, QueueFull
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

    The queue is bounded by time as well as by length, after CoDel: once every job leaving
    it for ``queue_interval`` seconds had waited over ``queue_target``, the queue is
    *standing*, and a submission is refused with ``Overloaded`` while the oldest queued job
    has waited over ``queue_target``: the queue is held near the target instead of growing
    to ``capacity``. It stops standing when a job leaves having waited under the target
    and nothing was refused for ``queue_interval``. A burst shorter than the interval is
    absorbed.

    Args:
        capacity: the most envelopes queued at once.
        clock: time source for queue ages and saturation.
        saturation_grace: the window saturation is judged over, in seconds (0: full is
            saturated at once).
        queue_target: the wait (seconds) over which a standing queue refuses; None: the
            queue is bounded by length only.
        queue_interval: how long every job must have waited over the target before the
            queue counts as standing.
    """

    def __init__(
        self,
        capacity: int,
        clock: Clock,
        *,
        saturation_grace: float = 5.0,
        queue_target: float | None = 0.005,
        queue_interval: float = 0.1,
    ) -> None:
        self._capacity = capacity
        self._full_message = f"router queue is full ({capacity} jobs)"
        self._clock = clock
        self._grace = saturation_grace
        self._target = queue_target if queue_target is not None else float("inf")
        self.queue_target = queue_target
        self.queue_interval = queue_interval
        self._above_since: float | None = None  # since when every job left over the target
        self._refused_at = -math.inf  # when a standing queue last refused
        self.standing = False
        self._queue: deque[Envelope] = deque()
        self._waiters: deque[asyncio.Future[Envelope | None]] = deque()
        self._accepting = False
        self._closed = False
        self._reserved = 0  # places promised to a job source (reserve), not yet filled
        self._full = FullTime(saturation_grace)
        self._episode: tuple[float, int] | None = None  # saturated since, rejected_total then
        self.routed_total = 0
        self.rejected_total = 0
        self._told = 0  # refusals already told to the saturation window
        self.overloaded_total = 0  # of which refused for a standing queue

    @property
    def accepting(self) -> bool:
        """Whether ``put`` takes new envelopes."""
        return self._accepting

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def reserved(self) -> int:
        """Places promised to job sources and not filled yet."""
        return self._reserved

    def refusal(self) -> OrchestratorError | None:
        """The error a submission would be refused with now (counted as refused), or None:
        the cheap check made before a job is even built.

        ``NotRunning`` when the router is not accepting, ``QueueFull`` when ``capacity``
        envelopes are queued, ``Overloaded`` when the queue is standing and its oldest job
        has waited over the target.
        """
        if not self._accepting:
            return NotRunning("the application is not accepting jobs")
        queue = self._queue
        if len(queue) + self._reserved >= self._capacity:
            self.rejected_total += 1  # told to the saturation window at the next pop or look
            return QueueFull(self._full_message)
        if self.standing and queue:
            now = self._clock.now()
            if now - queue[0].enqueued_at <= self._target:
                return None
            self._refused_at = now
            self.rejected_total += 1
            self.overloaded_total += 1
            return Overloaded("jobs wait over the queue target in a standing queue")
        return None

    def put(self, env: Envelope) -> None:
        """Queue an envelope or hand it straight to a waiting worker.

        Raises:
            NotRunning: when the router is not accepting.
            QueueFull: when ``capacity`` envelopes are already queued.
            Overloaded: when the queue is standing and its oldest job waited over the target.
        """
        if self._waiters and self._accepting and self._hand_to_waiter(env):
            if self.standing:  # a job that waits not at all tells the queue is short
                self._left(0.0, self._clock.now())
            return
        refusal = self.refusal()
        if refusal is not None:
            raise refusal
        self._queue.append(env)
        if len(self._queue) >= self._capacity:
            self._full.full(self._clock.now())

    def reserve(self, wanted: int) -> int:
        """Promise up to ``wanted`` places (a job source, before it reads): the number
        granted, each filled by :meth:`put_reserved` or given back by :meth:`release`."""
        if not self._accepting:
            return 0
        granted = max(0, min(wanted, self._capacity - len(self._queue) - self._reserved))
        self._reserved += granted
        return granted

    def release(self, places: int) -> None:
        """Give back places :meth:`reserve` granted and no job filled."""
        self._reserved -= places

    def put_reserved(self, env: Envelope) -> None:
        """Fill a reserved place: never refused, even by a standing queue."""
        self._reserved -= 1
        if self._waiters and self._hand_to_waiter(env):
            return
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
        now = self._clock.now()
        self._left(now - env.enqueued_at, now)
        if self.rejected_total != self._told:
            self._tell_refusals(now)
        if self._full.is_full:
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

    def _left(self, waited: float, now: float) -> None:
        """A job left the queue after ``waited`` seconds: is the queue standing (CoDel)?"""
        if waited >= self._target:
            if self._above_since is None:
                self._above_since = now
            elif now - self._above_since >= self.queue_interval:
                self.standing = True
        else:
            self._above_since = None
            if self.standing and now - self._refused_at >= self.queue_interval:
                self.standing = False

    def _tell_refusals(self, now: float) -> None:
        """Count a full queue's refusals since the last time into the saturation window
        (off the refusal path, which needs no clock). A standing queue's are not
        saturation: they keep the queue short, and the instance keeps serving."""
        full = self.rejected_total - self.overloaded_total
        self._full.refusal(now, full - self._told)
        self._told = full

    def _saturated(self, now: float) -> bool:
        full = self._full
        return (
            full.fraction(now) >= SATURATED_RATIO
            or full.refusing(now) >= SATURATED_RATIO
            or (self._grace <= 0 and len(self._queue) >= self._capacity)
        )

    def _judge(self, now: float) -> bool:
        """Whether the router is saturated now; logs the start and the end of an episode."""
        self._tell_refusals(now)
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

    def refused_by_reason(self) -> dict[str, int]:
        """Submissions refused so far, by the reason of their error."""
        return {QueueFull.reason: self.rejected_total - self.overloaded_total,
                Overloaded.reason: self.overloaded_total}  # fmt: skip

    def stats(self) -> RouterStats:
        """Queue depth, capacity, counters and the age of the oldest queued job."""
        oldest = self._clock.now() - self._queue[0].enqueued_at if self._queue else 0.0
        return {
            "accepting": self._accepting,
            "queued": len(self._queue),
            "capacity": self._capacity,
            "routed_total": self.routed_total,
            "rejected_total": self.rejected_total,
            "rejected_by_reason": self.refused_by_reason(),
            "standing": self.standing,
            "queue_target_seconds": self.queue_target,
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

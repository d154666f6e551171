"""The in-progress limit: how many jobs may run at once, steered by the event loop's lag.

One event loop runs the jobs and answers the probes. Past the core's capacity, a loop turn
runs a step of every busy worker, so the more jobs run at once, the longer every turn, and
every probe waits for one; yet fewer jobs at once than the core can keep busy (Little's
law: the await time of a job times the rate) leaves it idle and loses throughput.

``GradientLimit`` steers between the two, after Envoy's adaptive concurrency filter and
Netflix's Gradient2, with BBR's rule of never trading throughput for delay: each interval,
``limit *= target / lag`` (the gradient, bounded, smoothed) while the loop is saturated;
while it has idle time, the limit is never lowered, and rises by ``1 / busy``, what the
idle share says the core could still take. Below capacity the lag stays under the target
and the limit at its ceiling, the configured ``workers``, so it never binds.
``InProgressGate`` applies it: a worker takes a job only while fewer than ``limit`` are
taken or running.

The lag the controller reads is the loop's, not only the jobs': callers retrying refused
submissions at once, or a flood of requests, lengthen the turns as well, and a cut does not
shorten those. So a cut never goes below what the recent peak throughput needs, BBR's
bandwidth-delay product (``JobFlow``): the most jobs finished per second in the last
``FLOW_WINDOW`` seconds times the shortest mean duration of a job over the same window.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import Protocol

from orchestrator.loop_lag import LoopSample
from orchestrator.stats import LimitStats
from orchestrator.tasks import cancel_and_wait
from orchestrator.types import Clock

__all__ = ["GradientLimit", "InProgressGate", "InProgressLimit", "JobFlow", "LagSource"]

STEER_INTERVAL = 0.1
"""Seconds between two updates of an adaptive limit."""

MIN_GRADIENT = 0.5
"""The most one interval may cut the limit by (a factor, before smoothing: a quarter with
the default smoothing), so that a burst of load is met within a few intervals."""
GENTLE_GRADIENT = 0.8
"""The most a cut may be right after the loop had idle time: the limit is then near the
knee (just enough jobs to keep the core busy), and a deep cut would idle it again."""
MAX_GRADIENT = 2.0
"""The most one interval may raise it by."""
SATURATED = 0.95
"""The share of its CPU time the loop must use for the limit to be lowered."""
PROBE_BELOW_KEEP = 0.8
"""How far under the bandwidth-delay product a cut may go: enough to see whether the jobs
get quicker (then the product falls with the limit, and the next cut may go on), not
enough to lose more than a fifth of the throughput when they do not."""
FLOW_WINDOW = 10.0
"""Seconds over which the peak job rate and the shortest job duration are remembered."""


class GradientLimit:
    """A pure controller: an interval's lag and busy share in, a limit out. No clock and no
    loop of its own.

    Args:
        ceiling: the highest limit (the number of workers).
        floor: the lowest limit.
        target: the loop lag (seconds) the limit steers towards.
        smoothing: the weight (0..1] of each new estimate against the current limit.
    """

    __slots__ = ("_idled", "ceiling", "floor", "limit", "smoothing", "target")

    def __init__(
        self, ceiling: int, *, floor: int = 1, target: float = 0.002, smoothing: float = 0.5
    ) -> None:
        if not 1 <= floor <= ceiling:
            raise ValueError(f"need 1 <= floor ({floor}) <= ceiling ({ceiling})")
        if target <= 0 or not 0 < smoothing <= 1:
            raise ValueError("target must be > 0 and smoothing within (0, 1]")
        self.ceiling = ceiling
        self.floor = floor
        self.target = target
        self.smoothing = smoothing
        self.limit = float(ceiling)  # open at start: below capacity the limit never binds
        self._idled = False  # the last interval had idle time

    def update(self, lag: float, busy: float = 1.0, keep: float = 0.0) -> int:
        """Take one interval's lag (seconds) and busy share (0..1); return the new limit.

        ``keep``: the fewest jobs at once the recent throughput needs; a cut stops there.
        """
        gradient = self.target / lag if lag > 0 else MAX_GRADIENT
        if busy < SATURATED:  # idle time: the limit holds throughput back, or nothing
            gradient = max(gradient, 1.0 / busy if busy > 0 else MAX_GRADIENT)
        floor = GENTLE_GRADIENT if self._idled else MIN_GRADIENT
        self._idled = busy < SATURATED
        gradient = min(MAX_GRADIENT, max(floor, gradient))
        estimate = self.limit * gradient
        limit = self.limit + self.smoothing * (estimate - self.limit)
        if limit < self.limit:  # a cut: never far below what the throughput needs
            limit = max(limit, min(self.limit, PROBE_BELOW_KEEP * keep))
        self.limit = min(float(self.ceiling), max(float(self.floor), limit))
        return self.current

    @property
    def current(self) -> int:
        """The limit as a whole number of jobs."""
        return max(self.floor, round(self.limit))


class InProgressGate:
    """At most ``limit`` workers hold a place (waiting for a job, or running one).

    ``try_enter()`` takes a place without waiting when there is one; otherwise ``wait()``
    parks the worker until ``leave()`` or a higher limit frees one. A lower limit takes
    effect as places are left: no job is interrupted.
    """

    __slots__ = ("_parked", "active", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self._parked: deque[asyncio.Future[None]] = deque()

    @property
    def parked(self) -> int:
        """Workers waiting for a place."""
        return sum(1 for f in self._parked if not f.done())

    def try_enter(self) -> bool:
        """Take a place if there is one (no await)."""
        if self.active < self.limit:
            self.active += 1
            return True
        return False

    async def wait(self) -> None:
        """Wait for a place; it is held on return."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._parked.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # given a place, never taken
                self.leave()
            raise

    def leave(self) -> None:
        """Give a place back."""
        self.active -= 1
        self._wake()

    def set_limit(self, limit: int) -> None:
        """Change the limit; a higher one wakes parked workers at once."""
        self.limit = limit
        self._wake()

    def _wake(self) -> None:
        parked = self._parked
        while parked and self.active < self.limit:
            future = parked.popleft()
            if not future.done():
                self.active += 1
                future.set_result(None)


class JobFlow:
    """Jobs finished and their durations, per steering interval: the bandwidth-delay
    product (BBR) of the jobs, what a cut of the limit must keep.

    The workers call ``finished()`` once per settled job (two additions); the steering
    calls ``product()`` once per interval.
    """

    __slots__ = ("_durations", "_rates", "count", "seconds")

    def __init__(self, intervals: int) -> None:
        self.count = 0
        self.seconds = 0.0
        self._rates: deque[float] = deque(maxlen=intervals)
        self._durations: deque[float] = deque(maxlen=intervals)

    def finished(self, seconds: float) -> None:
        """A job settled after ``seconds`` in progress."""
        self.count += 1
        self.seconds += seconds

    def product(self, elapsed: float) -> float:
        """Close an interval of ``elapsed`` seconds: the peak rate (jobs/s) of the window
        times its shortest mean job duration; 0 before any job finished."""
        count = self.count
        self._rates.append(count / elapsed if count and elapsed > 0 else 0.0)
        self._durations.append(self.seconds / count if count else math.inf)
        self.count, self.seconds = 0, 0.0
        shortest = min(self._durations)
        return max(self._rates) * shortest if shortest < math.inf else 0.0

    def clear(self) -> None:
        """Forget the window (a start)."""
        self.count, self.seconds = 0, 0.0
        self._rates.clear()
        self._durations.clear()


class LagSource(Protocol):
    """The event loop's lag and busy share, as the loop-lag monitor measures them."""

    def take(self) -> LoopSample | None:
        """The loop since the last call; None when nothing was sampled."""
        ...


class InProgressLimit:
    """The workers' gate and, when adaptive, what steers it every ``interval`` seconds.

    Args:
        ceiling: the number of workers: the limit when not adaptive, its top when it is.
        clock: times the steering (a ``FakeClock`` in tests).
        lag: where the loop's lag is read; None for a fixed limit (``adaptive_limit=False``).
        target: the lag the limit steers towards.
        floor: the lowest limit.
        interval: seconds between updates.
    """

    def __init__(
        self,
        ceiling: int,
        clock: Clock,
        *,
        lag: LagSource | None = None,
        target: float = 0.002,
        floor: int = 1,
        interval: float = STEER_INTERVAL,
    ) -> None:
        self.gate = InProgressGate(ceiling)
        self.controller = (
            GradientLimit(ceiling, floor=min(floor, ceiling), target=target)
            if lag is not None
            else None
        )
        self._lag = lag
        self.target = target
        self._clock = clock
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self.flow = JobFlow(max(1, round(FLOW_WINDOW / interval)))
        self.last_lag = 0.0
        self.last_busy = 0.0
        self.keep = 0.0
        self.lowered_total = 0

    async def _steer(self) -> None:
        assert self.controller is not None
        assert self._lag is not None
        clock, last = self._clock, self._clock.now()
        while True:
            await clock.sleep(self._interval)
            now = clock.now()
            self.keep = self.flow.product(now - last)
            last = now
            sample = self._lag.take()
            if sample is None:
                continue
            self.last_lag, self.last_busy = sample
            limit = self.controller.update(*sample, keep=self.keep)
            if limit < self.gate.limit:
                self.lowered_total += 1
            self.gate.set_limit(limit)

    async def start(self) -> None:
        """Start steering (when adaptive), from the ceiling."""
        if self.controller is not None:
            self.controller.limit = float(self.controller.ceiling)
            self.flow.clear()
            self.gate.set_limit(self.controller.ceiling)
            self._task = asyncio.get_running_loop().create_task(
                self._steer(), name="in-progress-limit"
            )

    async def stop(self) -> None:
        """Stop steering."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def stats(self) -> LimitStats:
        """The limit now, its floor and target, the lag it last read, how often it fell."""
        controller = self.controller
        return {
            "adaptive_limit": controller is not None,
            "in_progress_limit": self.gate.limit,
            "in_progress": self.gate.active,
            "limit_floor": controller.floor if controller is not None else self.gate.limit,
            "limit_keep": round(self.keep, 1),
            "lag_target_seconds": self.target,
            "lag_seconds": self.last_lag,
            "loop_busy": self.last_busy,
            "limit_lowered_total": self.lowered_total,
        }

"""Clocks: the real one and a manual one for deterministic tests."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime

__all__ = ["FakeClock", "MonotonicClock", "utc_iso"]


_last_iso: tuple[int, str] = (-1, "")


def utc_iso(epoch: float) -> str:
    """Format an epoch timestamp as ISO 8601 UTC with a ``Z`` suffix, to the second."""
    global _last_iso
    second = int(epoch)
    if second != _last_iso[0]:  # probes ask many times a second: format once per second
        _last_iso = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _last_iso[1]


class MonotonicClock:
    """The real clock: ``time.monotonic``, ``time.time`` and ``asyncio.sleep``."""

    __slots__ = ()

    def now(self) -> float:
        """Seconds on a monotonic clock."""
        return time.monotonic()

    def wall(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Suspend for ``seconds``."""
        await asyncio.sleep(seconds)


class FakeClock:
    """A clock that moves only when ``advance()`` is called.

    ``sleep()`` suspends until the clock has been advanced past its deadline, so tests
    drive periodic loops and backoffs without waiting in real time.
    """

    def __init__(self, start: float = 1000.0, wall_start: float = 1_764_930_600.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        """The current fake monotonic time."""
        return self._now

    def wall(self) -> float:
        """The current fake epoch time (moves with ``now``)."""
        return self._now + self._wall_offset

    @property
    def sleepers(self) -> int:
        """How many ``sleep()`` calls are waiting."""
        return sum(1 for _, _, fut in self._sleepers if not fut.done())

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock is advanced by at least ``seconds``."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + max(seconds, 0.0), next(self._seq), fut))
        if seconds <= 0:
            self._wake()
        await fut

    def advance(self, seconds: float) -> None:
        """Move the clock forward and wake every sleeper whose deadline has passed."""
        self._now += seconds
        self._wake()

    def _wake(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

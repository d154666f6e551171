"""LoopLagMonitor: how late the event loop runs a timer (a blocked loop shows here first)."""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from typing import NamedTuple

from orchestrator.tasks import cancel_and_wait

__all__ = ["LoopLagMonitor", "LoopSample", "RunQueueDelay"]


class LoopSample(NamedTuple):
    """What the loop did over an interval."""

    lag: float
    """Mean lateness of its timers, less the waits for a CPU (seconds)."""
    busy: float
    """Share (0..1) of the time its thread had a CPU that it spent running (not idle in
    the selector): 1 when the loop is saturated."""


class LoopLagMonitor:
    """Sleeps ``interval`` seconds again and again and records how late each wake-up was.

    ``lag`` is the worst lateness over the last ``window`` seconds of samples: a
    ``get_stats()`` or a handler that blocks the loop for 200 ms shows as 0.15 to 0.2 s
    (a block shorter than ``interval`` may be seen only in part). It measures the real
    loop (``loop.time()``), whatever clock the application was given.

    ``take()`` gives the mean lateness since its last call less the time the loop's thread
    waited for a CPU meanwhile (Linux's run-queue delay, ``/proc/thread-self/schedstat``;
    elsewhere the plain lateness): the lag the loop's own work causes, which is what the
    adaptive in-progress limit steers by. Fewer jobs at once cannot shorten a wait for a
    CPU that another process holds. With it comes how busy the loop's thread was: its CPU
    time over the time it had a CPU.

    Args:
        interval: seconds between wake-ups.
        window: seconds of samples over which the worst lateness is kept.
    """

    def __init__(self, *, interval: float = 0.01, window: float = 10.0) -> None:
        self._interval = interval
        self._samples: deque[float] = deque(maxlen=max(1, round(window / interval)))
        self._sum = 0.0  # lateness summed since the last take()
        self._count = 0
        self._waited = RunQueueDelay()
        self._mark = (time.perf_counter(), time.thread_time(), 0.0)
        self._task: asyncio.Task[None] | None = None
        self.max = 0.0
        """Worst lateness since this monitor was made."""

    @property
    def lag(self) -> float:
        """Worst lateness (seconds) in the window; 0 before the first sample."""
        return max(self._samples, default=0.0)

    def record(self, late: float, own: float | None = None) -> None:
        """Keep one sample of lateness (negative values count as 0); ``own`` is the part of
        it not spent waiting for a CPU (all of it when None)."""
        late = max(0.0, late)
        self._samples.append(late)
        self._sum += late if own is None else min(late, max(0.0, own))
        self._count += 1
        self.max = max(self.max, late)

    def take(self) -> LoopSample | None:
        """The loop since the last call: the mean own lag of its samples, and how busy its
        thread was (call it on the loop's thread). None when nothing was sampled since."""
        wall, cpu, waited = time.perf_counter(), time.thread_time(), self._waited()
        (wall0, cpu0, waited0), self._mark = self._mark, (wall, cpu, waited)
        if not self._count:
            return None
        mean = self._sum / self._count
        self._sum, self._count = 0.0, 0
        had_cpu = (wall - wall0) - (waited - waited0)
        busy = (cpu - cpu0) / had_cpu if had_cpu > 0 else 1.0
        return LoopSample(mean, min(1.0, max(0.0, busy)))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        waited = self._waited
        before = waited()
        while True:
            expected = loop.time() + self._interval
            await asyncio.sleep(self._interval)
            late, after = loop.time() - expected, waited()
            self.record(late, late - (after - before))
            before = after

    def start(self) -> None:
        """Begin sampling (idempotent)."""
        if self._task is None or self._task.done():
            self._waited.open()  # the loop's own thread
            self._mark = (time.perf_counter(), time.thread_time(), self._waited())
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        """Stop sampling."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        self._waited.close()


class RunQueueDelay:
    """Seconds the calling thread has waited for a CPU since it started (0.0 where the
    kernel does not say: not Linux). About 1.5 µs a read."""

    def __init__(self) -> None:
        self._fd: int | None = None

    def open(self) -> None:
        """Read the calling thread's figures from now on (idempotent)."""
        if self._fd is None:
            try:
                self._fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
            except OSError:
                self._fd = None

    def __call__(self) -> float:
        if self._fd is None:
            return 0.0
        try:
            return int(os.pread(self._fd, 64, 0).split()[1]) * 1e-9
        except (OSError, IndexError, ValueError):
            return 0.0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

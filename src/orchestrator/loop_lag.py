"""LoopLagMonitor: how late the event loop runs a timer (a blocked loop shows here first)."""

from __future__ import annotations

import asyncio
from collections import deque

from orchestrator.tasks import cancel_and_wait

__all__ = ["LoopLagMonitor"]


class LoopLagMonitor:
    """Sleeps ``interval`` seconds again and again and records how late each wake-up was.

    ``lag`` is the worst lateness over the last ``window`` seconds of samples: a
    ``get_stats()`` or a handler that blocks the loop for 200 ms shows as 0.15 to 0.2 s
    (a block shorter than ``interval`` may be seen only in part). It measures the real
    loop (``loop.time()``), whatever clock the application was given.

    Args:
        interval: seconds between wake-ups.
        window: seconds of samples over which the worst lateness is kept.
    """

    def __init__(self, *, interval: float = 0.05, window: float = 10.0) -> None:
        self._interval = interval
        self._samples: deque[float] = deque(maxlen=max(1, round(window / interval)))
        self._task: asyncio.Task[None] | None = None
        self.max = 0.0
        """Worst lateness since this monitor was made."""

    @property
    def lag(self) -> float:
        """Worst lateness (seconds) in the window; 0 before the first sample."""
        return max(self._samples, default=0.0)

    def record(self, late: float) -> None:
        """Keep one sample of lateness (negative values count as 0)."""
        late = max(0.0, late)
        self._samples.append(late)
        self.max = max(self.max, late)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + self._interval
            await asyncio.sleep(self._interval)
            self.record(loop.time() - expected)

    def start(self) -> None:
        """Begin sampling (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        """Stop sampling."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

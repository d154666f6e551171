"""Event-loop lag: a blocked loop shows up as lag, then ages out of the window."""

from __future__ import annotations

import asyncio
import time

from orchestrator.loop_lag import LoopLagMonitor


def test_lag_is_worst_sample_in_window() -> None:
    """lag is the worst of the last window/interval samples; negatives count as 0."""
    monitor = LoopLagMonitor(interval=1.0, window=3.0)
    assert monitor.lag == 0.0
    for late in (0.01, 0.2, -0.5):
        monitor.record(late)
    assert monitor.lag == 0.2
    for _ in range(3):
        monitor.record(0.001)
    assert monitor.lag == 0.001


class Recording(LoopLagMonitor):
    """Signals the first sample that shows the loop was blocked."""

    def __init__(self) -> None:
        super().__init__(interval=0.01)
        self.blocked_seen = asyncio.Event()

    def record(self, late: float, own: float | None = None) -> None:
        super().record(late, own)
        if late >= 0.05:
            self.blocked_seen.set()


async def test_blocking_the_loop_is_measured() -> None:
    """Blocking the loop for 100 ms makes the next wake-up at least that late."""
    monitor = Recording()
    monitor.start()
    try:
        await asyncio.sleep(0)
        time.sleep(0.1)  # noqa: ASYNC251  # sleep-ok: the fault under test is a blocked loop
        async with asyncio.timeout(5):
            await monitor.blocked_seen.wait()
        assert monitor.lag >= 0.08
    finally:
        await monitor.stop()
    await monitor.stop()


def test_take_is_the_mean_own_lag_since_the_last_take() -> None:
    """take() averages what the loop's own work made late (not the waits for a CPU), then
    starts over; None when nothing was sampled since."""
    monitor = LoopLagMonitor(interval=1.0, window=10.0)
    assert monitor.take() is None
    monitor.record(0.004, 0.001)  # 3 ms of the 4 waiting for a CPU
    monitor.record(0.002)  # all of it the loop's own
    monitor.record(0.001, -0.002)  # a CPU wait longer than the lateness: none of it own
    sample = monitor.take()
    assert sample is not None
    assert sample.lag == (0.001 + 0.002 + 0.0) / 3
    assert 0.0 <= sample.busy <= 1.0
    assert monitor.take() is None
    assert monitor.lag == 0.004  # the window keeps the whole lateness: what a probe sees

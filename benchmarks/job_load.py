"""The job load of ``under_load_server.py``: how its commands offer jobs, and what they count.

- ``capacity``: a closed loop of ``SUBMITTERS`` submitters, each awaiting its job's outcome
  (after a refusal it waits ``REFUSED_BACKOFF`` before the next submission);
- ``paced``: ``rate(t)`` jobs/s on a schedule, without catch-up bursts (slots missed by
  more than ``MAX_BEHIND`` are skipped and counted) unless asked to catch up; ``ramp``
  gives a 0 → peak → 0 rate;
- ``trace``: the run's counts and the application's limit, every ``TRACE_EVERY`` s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from orchestrator import QueueFull

SUBMITTERS = 400
MAX_BEHIND = 0.005
"""Seconds of schedule the paced generator may catch up in one turn; older slots are skipped."""
REFUSED_BACKOFF = 0.001
"""Seconds a closed-loop submitter waits after a refusal before it submits again."""
TRACE_EVERY = 0.25
"""Seconds between two points of a ramp's trace."""


class Load:
    """Counts of one run's jobs, and the queue waits of those that ran."""

    def __init__(self) -> None:
        self.done = self.refused = self.failed = self.skipped = self.outstanding = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.queue_waits: list[float] = []

    def _begin(self) -> None:
        self.outstanding += 1
        self.idle.clear()

    def _end(self) -> None:
        self.outstanding -= 1
        if self.outstanding == 0:
            self.idle.set()

    async def one(self, submit: Submit) -> bool:
        """One job through an awaited submission (the caller's task); False if refused."""
        self._begin()
        try:
            await submit()
            self.done += 1
        except QueueFull:
            self.refused += 1
            return False
        except Exception:
            self.failed += 1
        finally:
            self._end()
        return True

    def offer(self, submit: Offer) -> None:
        """One job through ``submit_nowait``: no task of the caller's."""
        try:
            future = submit()
        except QueueFull:
            self.refused += 1
            return
        self._begin()
        future.add_done_callback(self._settled)

    async def _one(self, submit: Submit) -> None:
        await self.one(submit)

    def _settled(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            self.failed += 1
        else:
            self.done += 1
        self._end()

    def submit_one(self, how: Offers) -> None:
        """Submit one job the way the run asks: ``submit_nowait`` or a task per submit."""
        offer, submit, nowait = how
        if nowait:
            self.offer(offer)
            return
        task = asyncio.get_running_loop().create_task(self._one(submit))
        self.tasks.add(task)  # its outcome is counted by the load
        task.add_done_callback(self.tasks.discard)


Submit = Callable[[], Awaitable[Any]]
Offer = Callable[[], "asyncio.Future[Any]"]
Offers = tuple[Offer, Submit, bool]


async def capacity(submit: Submit, load: Load, seconds: float) -> None:
    deadline = time.perf_counter() + seconds

    async def submitter() -> None:
        while time.perf_counter() < deadline:
            if not await load.one(submit):
                await asyncio.sleep(REFUSED_BACKOFF)  # a refusal is immediate: no hot loop

    await asyncio.gather(*(submitter() for _ in range(SUBMITTERS)))


async def paced(how: Offers, load: Load, rate: Callable[[float], float], seconds: float,
                catch_up: bool = False) -> None:  # fmt: skip
    """Submit at ``rate(t)`` jobs/s for ``seconds``, on schedule, without catch-up bursts
    (``catch_up``: every slot is submitted, late ones at once, as requests that queued
    while the process waited for a CPU would arrive)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    due, end = started, started + seconds
    while (now := loop.time()) < end:
        interval = 1.0 / max(1.0, rate(now - started))
        if not catch_up and now - due > MAX_BEHIND:  # the loop was late: skip, do not burst
            missed = int((now - due - MAX_BEHIND) / interval)
            load.skipped += missed
            due += missed * interval
        while due <= now and due < end:
            load.submit_one(how)
            due += interval
        await asyncio.sleep(max(0.0, min(due, end) - loop.time()))


async def trace(load: Load, seconds: float, probe: Callable[[], dict[str, Any]]) -> list[Any]:
    """Every ``TRACE_EVERY`` s: jobs done and refused so far, and what ``probe`` reads."""
    loop, out = asyncio.get_running_loop(), []
    started = loop.time()
    while (t := loop.time() - started) < seconds:
        out.append({"t": round(t, 3), "done": load.done, "refused": load.refused, **probe()})
        await asyncio.sleep(TRACE_EVERY)
    return out


def ramp(peak: float, seconds: float) -> Callable[[float], float]:
    """0 → ``peak`` → 0 jobs/s over ``seconds``, linearly (``seconds`` 0: ``peak`` always)."""
    if seconds <= 0:
        return lambda _: peak
    return lambda t: peak * max(0.0, 1.0 - abs(2.0 * t / seconds - 1.0))

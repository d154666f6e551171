"""Health watched in the background: each change logged within a tick, whoever polls.

Every ``interval`` seconds the watcher runs the checks and compares each component's
verdict with the last one. A change logs ``health_changed`` (warning when a component turns
unhealthy, info when it recovers) with the component, from, to and reason, publishes it as
an event, and records since when the component has been in its state. While a stop that was
asked for runs, a component turning unhealthy is expected: it is told at info, with
``during="stop"``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from orchestrator.events import EventSink
from orchestrator.health import HealthReport
from orchestrator.tasks import cancel_and_wait
from orchestrator.types import Clock

__all__ = ["HealthWatcher"]

log = structlog.get_logger("orchestrator.health")


def _word(healthy: bool) -> str:
    return "healthy" if healthy else "unhealthy"


class HealthWatcher:
    """Runs ``check`` every ``interval`` seconds and reports each change of a verdict.

    Args:
        check: the health report (``Application.health``).
        clock: time source of the ``since`` times (its wall clock); the ticks are the
            event loop's own time, so that a change is told within ``interval`` seconds.
        interval: seconds between checks.
        events: where changes are published.
        tick: also called on every tick (periodic housekeeping, such as flushing summaries).
        stopping: whether a requested stop is under way (changes are then no incident).
    """

    def __init__(
        self,
        check: Callable[[], HealthReport],
        clock: Clock,
        *,
        interval: float = 0.5,
        events: EventSink | None = None,
        tick: Callable[[], None] | None = None,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self._check = check
        self._clock = clock
        self.interval = interval
        self._events = events
        self._tick = tick
        self._stopping = stopping
        self._verdicts: dict[str, tuple[bool, str | None]] = {}
        self.since: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def observe(self, report: HealthReport) -> None:
        """Compare ``report`` with the last verdicts; log and publish what changed."""
        now = self._clock.wall()
        for name, verdict in report.components.items():
            previous = self._verdicts.get(name)
            self._verdicts[name] = (verdict.healthy, verdict.reason)
            if previous is None:
                self.since[name] = now
                if verdict.healthy:
                    continue  # a healthy start is no change worth telling
            elif previous[0] == verdict.healthy:
                continue
            else:
                self.since[name] = now
            before = "unknown" if previous is None else _word(previous[0])
            fields: dict[str, str | None] = {"component": name, "from": before,
                                             "to": _word(verdict.healthy),
                                             "reason": verdict.reason}  # fmt: skip
            if verdict.healthy:
                log.info("health_changed", **fields)
            elif self._stopping():
                fields["during"] = "stop"
                log.info("health_changed", **fields)
            else:
                log.warning("health_changed", **fields)
            if self._events is not None:
                self._events("health_changed", fields)

    async def _run(self) -> None:
        while True:
            try:
                self.observe(self._check())
                if self._tick is not None:
                    self._tick()
            except Exception:
                log.exception("health_watch_failed")
            await asyncio.sleep(self.interval)  # real time: changes are told within a tick

    def start(self) -> None:
        """Start watching (idempotent); the first check runs at once."""
        if self._task is None or self._task.done():
            self._verdicts.clear()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="health-watch")

    async def stop(self) -> None:
        """Stop watching."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

"""Monitors: what watches a running application beside its components.

The garbage collector's pauses and policy (``gc_pauses.py``), the event loop's lag
(``loop_lag.py``), the health watcher (``health_watch.py``) and the blocked-loop watchdog
(``watchdog.py``) start together after the components and stop together before them.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.config import CoreSettings
from orchestrator.events import EventSink
from orchestrator.gc_pauses import GcPauses, GcPolicy
from orchestrator.health import HealthReport
from orchestrator.health_watch import HealthWatcher
from orchestrator.loop_lag import LoopLagMonitor
from orchestrator.stats import MonitorStats
from orchestrator.types import Clock
from orchestrator.watchdog import LoopWatchdog

__all__ = ["Monitors"]


class Monitors:
    """The GC policy, loop lag, health watcher and watchdog of one application.

    Args:
        settings: where ``blocked_loop_threshold`` (None: no watchdog), ``gc_freeze`` and
            ``gc_gen0_threshold`` come from.
        check: the health report the watcher runs (``Application.health``).
        clock: the application's clock (the watcher's ``since`` times).
        events: where health changes and blocked loops are published.
        tick: periodic housekeeping run on every watcher tick and once more at stop
            (flushing the job summaries).
        stopping: whether a requested stop is under way (health changes are then expected).
    """

    def __init__(
        self,
        settings: CoreSettings,
        check: Callable[[], HealthReport],
        clock: Clock,
        *,
        events: EventSink,
        tick: Callable[[], None],
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self._tick = tick
        self.loop_lag = LoopLagMonitor()
        self.gc_pauses = GcPauses()
        self.gc_policy = GcPolicy(self.gc_pauses, freeze=settings.gc_freeze,
                                  threshold0=settings.gc_gen0_threshold)  # fmt: skip
        threshold = settings.blocked_loop_threshold
        self.watchdog = LoopWatchdog(threshold, events=events) if threshold is not None else None
        self.health_watch = HealthWatcher(check, clock, events=events, tick=tick, stopping=stopping)

    async def start(self) -> None:
        """Time collections, sample the loop lag, watch health and the loop (idempotent)."""
        self.gc_pauses.install()
        self.loop_lag.start()
        self.health_watch.start()
        if self.watchdog is not None:
            self.watchdog.start()

    def apply_gc_policy(self) -> None:
        """Apply the collector's policy (see ``gc_pauses.py``): once everything runs, so that
        what start-up created is frozen."""
        self.gc_policy.apply()

    async def stop(self) -> None:
        """Stop every monitor, run the housekeeping once more and give the collector's
        settings back."""
        try:
            if self.watchdog is not None:
                self.watchdog.stop()
            await self.health_watch.stop()
            self._tick()
            await self.loop_lag.stop()
        finally:
            self.gc_pauses.uninstall()
            self.gc_policy.undo()

    def stats(self) -> MonitorStats:
        """The loop lag (now and worst), the blocked-loop episodes and the collector's pauses."""
        return {
            "event_loop_lag_seconds": self.loop_lag.lag,
            "event_loop_lag_max_seconds": self.loop_lag.max,
            "event_loop_blocked_total": self.watchdog.blocked_total if self.watchdog else 0,
            "gc": self.gc_pauses.stats(),
        }

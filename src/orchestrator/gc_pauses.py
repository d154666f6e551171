"""Garbage collection: the pauses it makes the event loop take, and the policy that keeps
them short.

A full (generation 2) collection walks every tracked object of the process: with the
workers, tasks and connections of a running application that paused the loop 15 to 24 ms
under job load (docs/performance.md). :func:`freeze_startup_objects` moves what start-up
created out of the collector's reach (``gc.freeze``), which bounds those pauses by what
was allocated since, and :class:`GcPolicy` also raises the youngest generation's threshold
(fewer collections, each of more objects); :class:`GcPauses` times every collection from
``gc.callbacks``.
"""

from __future__ import annotations

import bisect
import gc
import time
from collections.abc import Callable
from typing import Any

from orchestrator.stats import GcStats, HistogramStats, cumulative

__all__ = ["GC_PAUSE_BUCKETS", "GcPauses", "GcPolicy", "freeze_startup_objects", "thaw"]

GC_PAUSE_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
)  # fmt: skip
"""Upper bounds (seconds) of the pause histogram; a final +Inf bucket is implied."""

GENERATIONS = (0, 1, 2)


def freeze_startup_objects() -> int:
    """Freeze every object alive now; returns how many are frozen.

    The youngest generation is collected first; a full collection is not (it costs time in
    proportion to the whole heap, and what little garbage the older generations hold at
    start-up is given back at :func:`thaw`).
    """
    gc.collect(0)
    gc.freeze()
    return gc.get_freeze_count()


def thaw() -> None:
    """Give the frozen objects back to the collector."""
    gc.unfreeze()


class GcPauses:
    """Counts and times every collection while installed (a ``gc.callbacks`` entry).

    Costs two clock reads per collection. Timed with ``clock`` (``time.perf_counter``):
    a pause is real time, whatever clock the application runs on.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._started = 0.0
        self._counts = {g: [0] * (len(GC_PAUSE_BUCKETS) + 1) for g in GENERATIONS}
        self._sums = dict.fromkeys(GENERATIONS, 0.0)
        self.longest = 0.0
        self.frozen = 0
        """Objects frozen at start (``gc.get_freeze_count()`` walks them all: read it once)."""

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = self._clock()
            return
        self.observe(info["generation"], self._clock() - self._started)

    def observe(self, generation: int, seconds: float) -> None:
        """Record one collection of ``generation`` that paused for ``seconds``."""
        self._counts[generation][bisect.bisect_left(GC_PAUSE_BUCKETS, seconds)] += 1
        self._sums[generation] += seconds
        self.longest = max(self.longest, seconds)

    def install(self) -> None:
        """Start timing collections (idempotent)."""
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def uninstall(self) -> None:
        """Stop timing collections."""
        if self in gc.callbacks:
            gc.callbacks.remove(self)

    def _histogram(self, generation: int) -> HistogramStats:
        counts = self._counts[generation]
        buckets = cumulative(GC_PAUSE_BUCKETS, counts)
        return {"buckets": buckets, "sum": self._sums[generation], "count": sum(counts)}

    def stats(self) -> GcStats:
        """Pauses per generation (a histogram each), the longest, and the frozen objects."""
        return {
            "frozen_objects": self.frozen,
            "collections_total": {str(g): sum(self._counts[g]) for g in GENERATIONS},
            "pause_seconds": {str(g): self._histogram(g) for g in GENERATIONS},
            "longest_pause_seconds": self.longest,
        }


class GcPolicy:
    """The collector's settings while an application runs, undone when the last
    application of the process that applied them stops (the collector is process-wide).

    Args:
        pauses: where the count of frozen objects goes.
        freeze: freeze the objects alive at :meth:`apply` (``gc_freeze``).
        threshold0: the youngest generation's threshold (``gc_gen0_threshold``; None:
            leave the interpreter's, 700 by default).
    """

    _freezers = 0  # applications of this process that froze, still running
    _tuners = 0  # applications that set the threshold, still running
    _original: tuple[int, int, int] | None = None  # the thresholds before the first one

    def __init__(self, pauses: GcPauses, *, freeze: bool, threshold0: int | None) -> None:
        self._pauses = pauses
        self._freeze = freeze
        self._threshold0 = threshold0
        self._froze = self._tuned = False

    def apply(self) -> None:
        """Freeze (when asked) and set the threshold, once everything runs."""
        cls = GcPolicy
        if self._threshold0 is not None and not self._tuned:
            if cls._tuners == 0:
                cls._original = gc.get_threshold()
            cls._tuners += 1
            self._tuned = True
            _, gen1, gen2 = gc.get_threshold()
            gc.set_threshold(self._threshold0, gen1, gen2)
        if self._freeze and not self._froze:
            cls._freezers += 1
            self._froze = True
            self._pauses.frozen = freeze_startup_objects()

    def undo(self) -> None:
        """Give back what :meth:`apply` changed, once no other application needs it."""
        cls = GcPolicy
        if self._froze:
            self._froze, self._pauses.frozen = False, 0
            cls._freezers -= 1
            if cls._freezers == 0:
                thaw()
        if self._tuned:
            self._tuned = False
            cls._tuners -= 1
            if cls._tuners == 0 and cls._original is not None:
                gc.set_threshold(*cls._original)

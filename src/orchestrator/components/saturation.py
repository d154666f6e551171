"""Saturation: how much of a recent window a queue spent full, from its transitions, and
how much of it refusing submissions."""

from __future__ import annotations

import math

__all__ = ["FullTime"]


class FullTime:
    """Seconds spent full over the last ``window`` seconds, in ``slots`` slots.

    ``full(now)`` and ``not_full(now)`` record transitions; ``fraction(now)`` is the share of
    the last ``window`` seconds spent full, to within one slot's width. Each call costs
    O(slots) at most, whatever the rate of transitions, and the memory is fixed.

    Args:
        window: seconds looked back over (0: ``fraction`` is 1 while full, else 0).
        slots: the resolution.
    """

    __slots__ = ("_full_since", "_seconds", "_slot_ids", "_width", "refused", "window")

    def __init__(self, window: float, slots: int = 10) -> None:
        self.window = window
        self._width = window / slots if window > 0 else 1.0
        n = slots + 2
        self._slot_ids = [-1] * n
        self._seconds = [0.0] * n
        self.refused = [0] * n  # refusals per slot, same ring
        self._full_since: float | None = None

    @property
    def is_full(self) -> bool:
        """Whether the last transition recorded was into ``full``."""
        return self._full_since is not None

    def _slot(self, k: int) -> int:
        i = k % len(self._slot_ids)
        if self._slot_ids[i] != k:  # a slot from an earlier lap of the ring: start it over
            self._slot_ids[i], self._seconds[i], self.refused[i] = k, 0.0, 0
        return i

    def full(self, now: float) -> None:
        """The queue became full at ``now``."""
        if self._full_since is None:
            self._full_since = now

    def not_full(self, now: float) -> None:
        """The queue stopped being full at ``now``."""
        since, self._full_since = self._full_since, None
        if since is not None:
            self._add(since, now)

    def refusal(self, now: float, count: int = 1) -> None:
        """Count ``count`` refused submissions at ``now``."""
        if count:
            self.refused[self._slot(math.floor(now / self._width))] += count

    def _add(self, start: float, end: float) -> None:
        width = self._width
        start = max(start, end - self.window - width)  # older time is never looked at
        k = math.floor(start / width)
        while k * width < end:
            overlap = min(end, (k + 1) * width) - max(start, k * width)
            if overlap > 0:
                self._seconds[self._slot(k)] += overlap
            k += 1

    def _window(self, now: float) -> range:
        first = math.floor((now - self.window) / self._width)
        return range(first, math.floor(now / self._width) + 1)

    def fraction(self, now: float) -> float:
        """Share (0..1) of the last ``window`` seconds spent full, the current stretch included."""
        if self.window <= 0:
            return 1.0 if self._full_since is not None else 0.0
        total = sum(
            self._seconds[i]
            for k in self._window(now)
            if self._slot_ids[i := k % len(self._slot_ids)] == k
        )
        if self._full_since is not None:
            total += now - max(self._full_since, now - self.window)
        return min(1.0, total / self.window)

    def refusing(self, now: float) -> float:
        """Share (0..1) of the last ``window`` seconds' slots in which a submission was
        refused: a queue refilled within every loop turn is seldom full when looked at, yet
        refuses work all the time."""
        if self.window <= 0:
            return 0.0
        ids, refused = self._slot_ids, self.refused
        busy = sum(1 for k in self._window(now) if ids[i := k % len(ids)] == k and refused[i])
        return min(1.0, busy / (len(ids) - 2))

    def refusals(self, now: float) -> int:
        """Submissions refused over the last ``window`` seconds (to within one slot)."""
        ids = self._slot_ids
        return sum(self.refused[i] for k in self._window(now) if ids[i := k % len(ids)] == k)

"""FullTime: the share of a window a queue spent full, at fixed cost."""

from __future__ import annotations

import pytest

from orchestrator.components.saturation import FullTime


def test_fraction_of_a_window_with_many_short_stretches() -> None:
    """Full 70 ms of every 100 ms for 20 s reads 0.7 (within one slot) over a 5 s window."""
    full = FullTime(5.0)
    t = 100.0
    for _ in range(200):
        full.full(t)
        t += 0.07
        full.not_full(t)
        t += 0.03
    assert full.fraction(t) == pytest.approx(0.7, abs=0.1)
    assert len(full._seconds) == 12  # fixed memory, whatever the number of transitions


def test_old_time_leaves_the_window() -> None:
    """A full stretch counts while in the window and is forgotten after it."""
    full = FullTime(2.0)
    full.full(10.0)
    full.not_full(11.0)
    assert full.fraction(11.0) == pytest.approx(0.5, abs=0.1)
    assert full.fraction(12.5) == pytest.approx(0.25, abs=0.1)
    assert full.fraction(13.5) == 0.0


def test_the_current_stretch_counts_up_to_the_whole_window() -> None:
    """A stretch still going counts from its start, capped at the window."""
    full = FullTime(1.0)
    full.full(5.0)
    assert full.fraction(5.5) == pytest.approx(0.5)
    assert full.fraction(60.0) == 1.0
    assert full.is_full


def test_refusals_are_counted_over_the_window() -> None:
    """Refusals in the window are summed; older ones drop out."""
    full = FullTime(1.0)
    for i in range(10):
        full.refusal(3.0 + i * 0.05)
    assert full.refusals(3.5) == 10
    assert full.refusals(10.0) == 0


def test_zero_window_is_full_or_not() -> None:
    """With no window the fraction is 1 while full and 0 otherwise."""
    full = FullTime(0.0)
    assert full.fraction(1.0) == 0.0
    full.full(1.0)
    assert full.fraction(1.0) == 1.0
    full.not_full(2.0)
    assert full.fraction(2.0) == 0.0

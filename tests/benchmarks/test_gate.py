"""The CI gates' arithmetic and clock (benchmarks/gate.py), and the line ci_repeat.py reads."""

from __future__ import annotations

import os
import time

import pytest
from benchmarks.ci_repeat import GATE_LINE
from benchmarks.gate import Gate, Mark, UncontendedClock, paired_rounds, process_cpu_seconds


@pytest.mark.parametrize(
    ("rounds", "at_least", "passed"),
    [
        ((0.5, 0.1, 0.3), True, True),  # median 0.3 >= 0.2: one bad round does not decide
        ((0.1, 0.15, 0.9), True, False),  # median 0.15 < 0.2: one good round does not save
        ((0.1, 0.3, 0.1), False, True),  # median 0.1 <= 0.2
        ((0.3, 0.25, 0.1), False, False),  # median 0.25 > 0.2
    ],
    ids=["floor-kept", "floor-missed", "ceiling-kept", "ceiling-missed"],
)
def test_gate_decides_on_the_median(
    rounds: tuple[float, ...], at_least: bool, passed: bool
) -> None:
    """A gate passes or fails on the median of its rounds against its limit."""
    gate = Gate("g", rounds, 0.2, at_least=at_least)
    assert gate.passed is passed
    assert gate.line().endswith("ok" if passed else "FAILED")


@pytest.mark.parametrize(
    "gate",
    [
        Gate("/health (10 workers) / bare aiohttp", (1.2, 1.25, 1.18), 2.0, at_least=False),
        Gate(
            "watchers' cost, share of a core",
            (-0.03, 0.01, 0.07),
            0.1,
            at_least=False,
            unit="of a core",
        ),
        Gate("jobs/s 4 worker(s) no pool / bare asyncio.Queue", (0.2, 0.05), 0.1, at_least=True),
    ],
    ids=["ratio", "negative-round-and-unit", "failed"],
)
def test_ci_repeat_reads_every_gate_line(gate: Gate) -> None:
    """The table of ci_repeat.py is built from Gate.line(): the two formats agree."""
    match = GATE_LINE.match(gate.line())
    assert match is not None, gate.line()
    assert match["name"] == gate.name
    assert float(match["figure"]) == pytest.approx(gate.figure, abs=1e-3)
    assert float(match["lo"]) == pytest.approx(min(gate.rounds), abs=1e-3)
    assert float(match["limit"]) == gate.limit
    assert match["verdict"] == ("ok" if gate.passed else "FAILED")


def test_paired_rounds_are_ratios_of_medians() -> None:
    """Pairs are cut into consecutive rounds; each round is median(ours) / median(base)."""
    ours = [2.0, 4.0, 100.0, 3.0, 3.0, 3.0]
    base = [1.0, 1.0, 1.0, 1.0, 1.0, 2.0]
    assert paired_rounds(ours, base, 2) == [4.0, 3.0]
    with pytest.raises(ValueError, match="samples"):
        paired_rounds(ours, base[:-1], 2)


def test_a_blocking_sleep_counts_in_full() -> None:
    """Time the thread spends blocked (not waiting for a CPU) is part of the interval."""
    clock = UncontendedClock()
    try:
        started = clock.now()
        time.sleep(0.02)  # sleep-ok: the interval measured is a blocking sleep
        elapsed = clock.since(started)
    finally:
        clock.close()
    assert 0.02 <= elapsed <= time.perf_counter() - started.wall


@pytest.mark.parametrize(
    ("end", "expected"),
    [(Mark(1.0, 0.25), 0.75), (Mark(1.0, 2.0), 1.0), (Mark(1.0, -1.0), 1.0)],
    ids=["waits-left-out", "waits-over-the-interval", "waits-going-back"],
)
def test_an_impossible_wait_counts_the_whole_interval(
    monkeypatch: pytest.MonkeyPatch, end: Mark, expected: float
) -> None:
    """Kernel wait counters that do not fit in the interval are ignored, never trusted."""
    clock = UncontendedClock()
    try:
        monkeypatch.setattr(clock, "now", lambda: end)  # the kernel's counters, as read
        assert clock.since(Mark(0.0, 0.0)) == expected
    finally:
        clock.close()


def test_process_cpu_seconds_counts_work_done() -> None:
    """The CPU time of a process grows by at least the work its threads did."""
    before = process_cpu_seconds(os.getpid())
    spent = time.thread_time() + 0.05
    while time.thread_time() < spent:
        pass
    assert process_cpu_seconds(os.getpid()) - before >= 0.045

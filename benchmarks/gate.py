"""The CI gates of ``make bench-ci``: figures that a busy machine cannot push over a limit.

A gate never compares one run's wall-clock figure with an absolute target: on a shared
2-core machine a neighbour can take the CPU in the middle of any run. Instead:

- every figure is a **ratio to a baseline measured in the same round** (bare aiohttp, a
  bare ``asyncio.Queue``, a plain-Python listing, the same code with a feature off), so a
  slower machine or a busier one moves both sides alike;
- time is read with :class:`UncontendedClock`, wall time minus the time the thread waited
  for a CPU (Linux's ``/proc/thread-self/schedstat``): a preemption by another process is
  not counted, while time the code itself spends blocked (a ``time.sleep``, a lock) is;
- the gate's figure is the **median of several short rounds**, so one disturbed round
  cannot decide it, and the line printed gives the rounds' range next to it.

The absolute targets (10 ms p99 and the like) stay in ``make bench``, where a person reads
them.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["Gate", "Mark", "UncontendedClock", "paired", "paired_rounds", "process_cpu_seconds"]


class Mark(NamedTuple):
    wall: float
    waited: float


class UncontendedClock:
    """Intervals of wall time that leave out the calling thread's waits for a CPU.

    Reads the run-queue delay of the thread that created it (``/proc/thread-self/
    schedstat``, about 1.4 µs a read). Where that file is absent (not Linux), intervals
    are plain wall time, as noisy as the machine.

    On this 2-vCPU virtual machine about one interval in 3,000 came out negative or longer
    than its wall time (the kernel's clocks of the two CPUs disagree by up to ~30 ms when
    a waiting thread moves between them); such an interval counts its whole wall time.
    """

    def __init__(self) -> None:
        try:
            self._fd: int | None = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        except OSError:
            self._fd = None

    def now(self) -> Mark:
        waited = 0 if self._fd is None else int(os.pread(self._fd, 64, 0).split()[1])
        return Mark(time.perf_counter(), waited * 1e-9)

    def since(self, mark: Mark) -> float:
        """Seconds since ``mark`` without the waits for a CPU."""
        now = self.now()
        wall = now.wall - mark.wall
        uncontended = wall - (now.waited - mark.waited)
        return uncontended if 0.0 <= uncontended <= wall else wall

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds every live thread of process ``pid`` has run (``/proc/PID/task``)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
            continue
    return total * 1e-9


def paired(
    benchmark: Any,
    ours: Callable[[], object],
    base: Callable[[], object],
    *,
    rounds: int,
    warmup_rounds: int,
) -> tuple[list[float], list[float]]:
    """``benchmark.pedantic`` over ``ours``, with ``base`` run just before each call.

    pytest-benchmark times ``ours`` as usual (its figures and JSON); both are also timed
    with an :class:`UncontendedClock`, and those samples, warm-up left out, are returned
    in pairs: ``(ours, base)``. Both lists are empty under ``--benchmark-disable``.
    """
    clock = UncontendedClock()
    ours_s: list[float] = []
    base_s: list[float] = []

    def setup() -> None:
        started = clock.now()
        base()
        base_s.append(clock.since(started))

    def target() -> None:
        started = clock.now()
        ours()
        ours_s.append(clock.since(started))

    try:
        benchmark.pedantic(target, setup=setup, rounds=rounds, warmup_rounds=warmup_rounds)
    finally:
        clock.close()
    if benchmark.stats is None:
        return [], []
    return ours_s[warmup_rounds:], base_s[warmup_rounds:]


def paired_rounds(ours: Sequence[float], base: Sequence[float], rounds: int) -> list[float]:
    """Per-round ratios ``median(ours) / median(base)`` of samples taken in pairs.

    ``ours[i]`` and ``base[i]`` were measured back to back; the pairs are cut into
    ``rounds`` consecutive rounds.
    """
    if len(ours) != len(base) or len(ours) < rounds:
        raise ValueError(f"{len(ours)} and {len(base)} samples for {rounds} rounds")
    size = len(ours) // rounds
    return [
        statistics.median(ours[i * size : (i + 1) * size])
        / statistics.median(base[i * size : (i + 1) * size])
        for i in range(rounds)
    ]


@dataclass(frozen=True)
class Gate:
    """One CI gate: the rounds' figures, and the limit their median must keep.

    Args:
        name: what is measured, as printed.
        rounds: one figure per round (a ratio unless ``unit`` says otherwise).
        limit: the median's bound.
        at_least: True when the median must be >= ``limit``, False for <= ``limit``.
        unit: printed after the figures.
    """

    name: str
    rounds: tuple[float, ...]
    limit: float
    at_least: bool
    unit: str = "x"

    @property
    def figure(self) -> float:
        return statistics.median(self.rounds)

    @property
    def passed(self) -> bool:
        return self.figure >= self.limit if self.at_least else self.figure <= self.limit

    def line(self) -> str:
        """``GATE name: figure (median of N rounds, range lo-hi); limit: ok|FAILED``."""
        op = ">=" if self.at_least else "<="
        return (
            f"GATE {self.name}: {self.figure:.3f} {self.unit} (median of {len(self.rounds)} "
            f"rounds, range {min(self.rounds):.3f} to {max(self.rounds):.3f}); limit {op} "
            f"{self.limit:g}: {'ok' if self.passed else 'FAILED'}"
        )

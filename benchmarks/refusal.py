"""What a refused submission costs the event loop, in µs per refusal.

    python benchmarks/refusal.py            # make bench: the figures and the 1 µs target
    python benchmarks/refusal.py --gates    # make bench-ci: the ratio gate

One worker held by a job that never ends and a queue of one, so every further submission
is refused (``QueueFull``). Timed per refusal, loop time without the waits for a CPU
(``benchmarks.gate.UncontendedClock``), each way a caller can submit:

- ``submit_nowait``: the call raises at once;
- ``await submit()``: the caller awaits it directly;
- a task per ``await submit()``: what a caller pays that gives each submission its task.

The baseline, measured in the same round, is a bare ``raise`` and ``except`` of an
exception made with a message: the least any refusal by exception can cost in Python. The
CI gate is ``submit_nowait``'s cost over it, median of ``ROUNDS`` rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))  # run as a script from anywhere
from benchmarks.gate import Gate, UncontendedClock
from orchestrator import Application, Job, QueueFull, configure_logging

ROUNDS = 7
N = 50_000
MAX_RATIO = 8.0
"""CI: the most a ``submit_nowait`` refusal may cost, as a multiple of a bare raise."""
TARGET_US = 1.0
"""make bench: the most a ``submit_nowait`` refusal may cost, in µs."""


def bare(n: int) -> None:
    for _ in range(n):
        try:
            raise QueueFull("router queue is full (1 jobs)")
        except QueueFull:
            pass


async def per_refusal(clock: UncontendedClock, run: Callable[[], Awaitable[None] | None],
                      n: int) -> float:  # fmt: skip
    """µs of loop time per refusal of ``run`` (n refusals)."""
    mark = clock.now()
    result = run()
    if result is not None:
        await result
    return clock.since(mark) / n * 1e6


async def measure() -> dict[str, list[float]]:
    # the rounds hold the loop for seconds on purpose: no blocked-loop watchdog
    app = Application(workers=1, queue_size=1, blocked_loop_threshold=None)
    started, release = asyncio.Event(), asyncio.Event()

    @app.handler("hold", timeout=None)
    async def hold(job: Job) -> None:
        started.set()
        await release.wait()

    figures: dict[str, list[float]] = {"bare raise": [], "submit_nowait": [],
                                       "await submit()": [], "task per submit": []}  # fmt: skip
    clock = UncontendedClock()
    async with app:
        held = [app.submit_nowait("hold")]
        await started.wait()  # the worker holds it: the next one waits queued
        held.append(app.submit_nowait("hold"))

        def nowait() -> None:
            for _ in range(N):
                try:  # noqa: SIM105 - a suppress() would add its own cost to the figure
                    app.submit_nowait("hold")
                except QueueFull:
                    pass

        async def awaited() -> None:
            for _ in range(N):
                try:  # noqa: SIM105
                    await app.submit("hold")
                except QueueFull:
                    pass

        async def one() -> None:
            try:  # noqa: SIM105
                await app.submit("hold")
            except QueueFull:
                pass

        async def tasks() -> None:
            await asyncio.gather(*(asyncio.ensure_future(one()) for _ in range(N // 10)))

        for _ in range(ROUNDS):
            figures["bare raise"].append(await per_refusal(clock, lambda: bare(N), N))
            figures["submit_nowait"].append(await per_refusal(clock, nowait, N))
            figures["await submit()"].append(await per_refusal(clock, awaited, N))
            figures["task per submit"].append(await per_refusal(clock, tasks, N // 10))
        release.set()
        await asyncio.gather(*held)
    clock.close()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gates", action="store_true", help="exit 1 when the CI gate fails")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()
    with open(os.devnull, "w") as quiet:
        configure_logging("json", "warning", stream=quiet)
        figures = asyncio.run(measure())
    for name, values in figures.items():
        ordered = sorted(values)
        lo, mid, hi = ordered[0], ordered[len(ordered) // 2], ordered[-1]
        print(f"{name:>16}: {mid:6.2f} µs per refusal (median of {len(values)} rounds, "
              f"range {lo:.2f} to {hi:.2f})")  # fmt: skip
    ratios = tuple(n / b for n, b in zip(figures["submit_nowait"], figures["bare raise"],
                                         strict=True))  # fmt: skip
    gate = Gate("submit_nowait refusal / bare raise", ratios, MAX_RATIO, at_least=False)
    print(gate.line())
    nowait = sorted(figures["submit_nowait"])[len(figures["submit_nowait"]) // 2]
    missed = nowait > TARGET_US
    if missed:
        print(f"MISSED: submit_nowait refusal {nowait:.2f} µs (target <= {TARGET_US:g})")
    return 1 if (args.gates and not gate.passed) or (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())

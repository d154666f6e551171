"""Benchmark options and a place for the figures each benchmark prints.

``--ci-quick`` (used by ``make bench-ci``) cuts rounds and job counts so the suite stays
fast in CI while still checking every target. Figures recorded with ``figures.add()``
are printed in a "benchmark figures" section at the end of the run (no ``-s`` needed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

FIGURES = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--ci-quick",
        action="store_true",
        default=False,
        help="fewer rounds and smaller batches (make bench-ci)",
    )


class Figures:
    """Lines of figures shown in the terminal summary."""

    def __init__(self, lines: list[str]) -> None:
        self._lines = lines

    def add(self, line: str) -> None:
        """Record one line of figures."""
        self._lines.append(line)


@pytest.fixture(scope="session")
def ci_quick(request: pytest.FixtureRequest) -> bool:
    """Whether ``--ci-quick`` was given."""
    return bool(request.config.getoption("--ci-quick"))


@pytest.fixture(scope="session")
def figures(request: pytest.FixtureRequest) -> Figures:
    """Where benchmarks record the figures to print at the end of the run."""
    return Figures(request.config.stash.setdefault(FIGURES, []))


def pedantic(
    benchmark: BenchmarkFixture,
    target: Callable[[], Any],
    *,
    rounds: int,
    warmup_rounds: int = 1,
) -> None:
    """``benchmark.pedantic`` with one iteration per round (typed: pytest-benchmark's isn't)."""
    run: Callable[..., Any] = benchmark.pedantic
    run(target, rounds=rounds, iterations=1, warmup_rounds=warmup_rounds)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(FIGURES, [])
    if lines:
        terminalreporter.write_sep("-", "benchmark figures")
        for line in lines:
            terminalreporter.write_line(line)

"""Benchmark options, the figures each benchmark prints and the CI gates it checks.

``--ci-quick`` (used by ``make bench-ci``) cuts rounds and job counts so the suite stays
fast in CI, and checks the gates only (``benchmarks/gate.py``); the absolute targets are
asserted in a full run (``make bench``). Lines appended to the ``figures`` fixture and
every gate passed to ``check_gate`` are printed at the end of the run (no ``-s`` needed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from benchmarks.gate import Gate

FIGURES = pytest.StashKey[list[str]]()
GATES = pytest.StashKey[list[Gate]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--ci-quick",
        action="store_true",
        default=False,
        help="fewer rounds and smaller batches; CI gates only (make bench-ci)",
    )


@pytest.fixture(scope="session")
def ci_quick(request: pytest.FixtureRequest) -> bool:
    """Whether ``--ci-quick`` was given."""
    return bool(request.config.getoption("--ci-quick"))


@pytest.fixture(scope="session")
def figures(request: pytest.FixtureRequest) -> list[str]:
    """Lines of figures, printed in the terminal summary at the end of the run."""
    return request.config.stash.setdefault(FIGURES, [])


@pytest.fixture(scope="session")
def check_gate(request: pytest.FixtureRequest) -> Callable[[Gate], None]:
    """Record a gate (printed at the end of the run) and fail the test when it fails."""
    gates = request.config.stash.setdefault(GATES, [])

    def check(gate: Gate) -> None:
        gates.append(gate)
        assert gate.passed, gate.line()

    return check


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(FIGURES, [])
    if lines:
        terminalreporter.write_sep("-", "benchmark figures")
        for line in lines:
            terminalreporter.write_line(line)
    gates = config.stash.get(GATES, [])
    if gates:
        terminalreporter.write_sep("-", "CI gates")
        for gate in gates:
            terminalreporter.write_line(gate.line())

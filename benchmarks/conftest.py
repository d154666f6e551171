"""Benchmark options and a place for the figures each benchmark prints.

``--ci-quick`` (used by ``make bench-ci``) cuts rounds and job counts so the suite stays
fast in CI while still checking every target. Lines appended to the ``figures`` fixture
are printed in a "benchmark figures" section at the end of the run (no ``-s`` needed).
"""

from __future__ import annotations

from typing import Any

import pytest

FIGURES = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--ci-quick",
        action="store_true",
        default=False,
        help="fewer rounds and smaller batches (make bench-ci)",
    )


@pytest.fixture(scope="session")
def ci_quick(request: pytest.FixtureRequest) -> bool:
    """Whether ``--ci-quick`` was given."""
    return bool(request.config.getoption("--ci-quick"))


@pytest.fixture(scope="session")
def figures(request: pytest.FixtureRequest) -> list[str]:
    """Lines of figures, printed in the terminal summary at the end of the run."""
    return request.config.stash.setdefault(FIGURES, [])


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(FIGURES, [])
    if lines:
        terminalreporter.write_sep("-", "benchmark figures")
        for line in lines:
            terminalreporter.write_line(line)

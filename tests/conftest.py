"""Shared fixtures: a fake clock, a fake connection factory and a running application."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import structlog

from orchestrator import Application, FakeClock
from orchestrator.log_level import LEVEL
from tests.fakes import FakeFactory, make_app


@pytest.fixture(autouse=True, scope="session")
def _uncached_structlog() -> Iterator[None]:
    """Loggers are never cached in tests (structlog's advice): a module-level logger cached
    under one configuration would keep it for the rest of the run, whatever later tests
    configure. Session-wide, so that module fixtures (a live server that configures logging
    as it starts) are covered too."""
    configure = structlog.configure

    def uncached(**settings: Any) -> None:
        configure(**{**settings, "cache_logger_on_first_use": False})

    structlog.configure = uncached  # type: ignore[assignment]
    try:
        yield
    finally:
        structlog.configure = configure


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    """Give every test structlog's defaults, whatever the previous test configured."""
    structlog.reset_defaults()
    LEVEL.reset()
    yield
    structlog.reset_defaults()
    LEVEL.reset()


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when the test advances it."""
    return FakeClock()


@pytest.fixture
def factory() -> FakeFactory:
    """A connection factory that succeeds until told otherwise."""
    return FakeFactory()


@pytest.fixture
async def app(clock: FakeClock) -> AsyncIterator[Application]:
    """A running two-worker application without a pool, stopped after the test."""
    application = make_app(clock, workers=2)
    await application.start()
    yield application
    await application.stop(timeout=1.0)

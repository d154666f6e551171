"""Fixtures for the /debug tests: a running application with a token, serving on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from orchestrator import Application, FakeClock
from tests.debug.helpers import AUTH, TOKEN
from tests.fakes import make_app


@pytest.fixture
async def app(clock: FakeClock) -> AsyncIterator[Application]:
    """A running application with the token, two workers, stopped after the test."""
    application = make_app(clock, http=True, http_token=(TOKEN,), workers=2, rate_limit=None)
    await application.start()
    yield application
    await application.stop(timeout=1.0)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session sending the token."""
    async with aiohttp.ClientSession(headers=AUTH) as client:
        yield client

"""Fixtures for HTTP tests: a real application serving on 127.0.0.1 with a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from orchestrator import Application, FakeClock, Job


def make_app(clock: FakeClock | None = None, **options: Any) -> Application:
    """An application with an ``echo`` handler and HTTP on a free loopback port."""
    settings: dict[str, Any] = {"enable_http": True, "http_port": 0, "http_host": "127.0.0.1"}
    settings.update(options)
    app = Application(clock=clock or FakeClock(), **settings)

    @app.handler("echo")
    async def echo(job: Job) -> object:
        return job.payload

    return app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def app(clock: FakeClock) -> AsyncIterator[Application]:
    application = make_app(clock)
    await application.start()
    yield application
    await application.stop(timeout=1.0)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client

"""Fixtures for HTTP tests: a real application serving on 127.0.0.1 with a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp.plugin import AiohttpClient

from orchestrator import Application, FakeClock, Job
from orchestrator.config import HttpSettings
from orchestrator.http import create_app


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


CANARY = "canary-7f3a9c-TOKEN-d41d8cd9e800"
"""A token that must never appear in a log line, a response body or an error page."""

Serve = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def serve(aiohttp_client: AiohttpClient, clock: FakeClock) -> AsyncIterator[Serve]:
    """Serve a running application's API with the given HTTP settings, via a test client."""
    apps: list[Application] = []

    async def factory(**settings: Any) -> TestClient[web.Request, web.Application]:
        app = make_app(clock, enable_http=False)
        await app.start()
        apps.append(app)
        return await aiohttp_client(create_app(app, HttpSettings(**settings), clock=clock))

    yield factory
    for app in apps:
        await app.stop(timeout=1.0)

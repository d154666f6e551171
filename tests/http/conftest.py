"""Fixtures for HTTP tests: a real application serving on 127.0.0.1 with a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp.plugin import AiohttpClient

from orchestrator import Application, FakeClock
from orchestrator.config import HttpSettings
from orchestrator.http import create_app
from tests.fakes import make_app
from tests.http.helpers import Serve


@pytest.fixture
async def app(clock: FakeClock) -> AsyncIterator[Application]:
    """A running application serving its API, stopped after the test."""
    application = make_app(clock, http=True)
    await application.start()
    yield application
    await application.stop(timeout=1.0)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def serve(aiohttp_client: AiohttpClient, clock: FakeClock) -> AsyncIterator[Serve]:
    """Serve a running application's API with the given HTTP settings, via a test client."""
    apps: list[Application] = []

    async def factory(**settings: Any) -> TestClient[web.Request, web.Application]:
        app = make_app(clock)
        await app.start()
        apps.append(app)
        return await aiohttp_client(create_app(app, HttpSettings(**settings), clock=clock))

    yield factory
    for app in apps:
        await app.stop(timeout=1.0)

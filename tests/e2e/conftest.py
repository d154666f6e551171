"""Fixtures for browser tests: a Chromium binary, a page driven over DevTools and the demo
application serving HTTP."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Application
from orchestrator.demo import DemoConnectionFactory, build_demo_app
from tests.e2e.browser import DevTools, find_chromium
from tests.e2e.demo import DemoFactory


@pytest.fixture
def chromium() -> str:
    """The Chromium binary; the test is skipped without one, unless ``CI`` is set."""
    binary = find_chromium()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("no chromium binary found, and CI must run the browser tests")
        pytest.skip("no chromium binary found (apt-get install chromium)")
    return binary


@pytest.fixture
async def browser(chromium: str, tmp_path: Path) -> AsyncIterator[DevTools]:
    """A headless Chromium at 1280x800 driven over DevTools, closed after the test."""
    devtools = await DevTools.launch(chromium, tmp_path / "profile")
    yield devtools
    await devtools.close()


@pytest.fixture
async def demo() -> AsyncIterator[DemoFactory]:
    """Start the demo application on 127.0.0.1 (free port) with a few jobs done."""
    apps: list[Application] = []

    async def start(**options: Any) -> Application:
        settings: dict[str, Any] = {"enable_http": True, "http_host": "127.0.0.1", "http_port": 0}
        settings.update(options)
        rng = random.Random(8)
        app = build_demo_app(
            Application(connection_factory=DemoConnectionFactory(0.001, rng), **settings), rng
        )
        await app.start()
        apps.append(app)
        kinds = ["io"] * 8 + ["cpu"] * 4
        await asyncio.gather(*(app.submit(kind, {"n": i}) for i, kind in enumerate(kinds)))
        return app

    yield start
    for app in apps:
        await app.stop(timeout=2.0)

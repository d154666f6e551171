"""Helpers of the HTTP tests: the canary token, the type of the ``serve`` fixture, and any
aiohttp application served on 127.0.0.1."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestClient

__all__ = ["CANARY", "Serve", "served"]

CANARY = "canary-7f3a9c-TOKEN-d41d8cd9e800"
"""A token that must never appear in a log line, a response body or an error page."""

Serve = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]
"""``serve(**http_settings)``: a test client of a running application's API."""


@contextlib.asynccontextmanager
async def served(web_app: web.Application) -> AsyncIterator[str]:
    """``web_app`` served on 127.0.0.1 (a free port) until the block ends; its base URL."""
    runner = web.AppRunner(web_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()

"""Helpers of the HTTP tests: the canary token, the type of the ``serve`` fixture, any
aiohttp application served on 127.0.0.1, a raw HTTP/1.1 connection and an Observable with
a fixed verdict."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestClient

from orchestrator.health import ComponentHealth, HealthReport
from orchestrator.types import StatsDict

__all__ = ["CANARY", "Connection", "FixedHealth", "Serve", "get", "served"]

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


class Connection:
    """A raw HTTP/1.1 connection to the application (bytes in, bytes out)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, *requests: str) -> None:
        self.writer.write("".join(requests).encode())
        await self.writer.drain()

    async def response(self, *, head: bool = False) -> tuple[str, dict[str, str], bytes]:
        """One response: status line, headers (lower-case names), body (none for HEAD)."""
        raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        lines = raw.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if line)
        headers = {k.lower(): v for k, v in headers.items()}
        body = b"" if head else await self.reader.readexactly(int(headers["content-length"]))
        return lines[0], headers, body

    async def closed(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), 5) == b""


def get(path: str, *extra: str) -> str:
    return "".join([f"GET {path} HTTP/1.1\r\nHost: test\r\n", *(f"{h}\r\n" for h in extra),
                    "\r\n"])  # fmt: skip


class FixedHealth:
    """An Observable whose verdict and timestamp never change: both servers report alike."""

    def __init__(self, healthy: bool) -> None:
        recycler = ComponentHealth(healthy, None if healthy else "loop stopped")
        self.report = HealthReport(
            healthy, 1_700_000_000.25, {"workers": ComponentHealth(True), "recycler": recycler}
        )

    def get_stats(self) -> StatsDict:
        return {}

    def health(self) -> HealthReport:
        return self.report

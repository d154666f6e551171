"""Fixtures and helpers for the reliability tests: real servers on 127.0.0.1, port 0."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

__all__ = ["Probe"]


class Probe:
    """GETs JSON endpoints of one base URL and returns ``(status, body)``."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        """The status and the decoded JSON body (None when the body is not JSON)."""
        async with self.session.get(self.base + path, **kwargs) as resp:
            raw = await resp.read()
        try:
            return resp.status, orjson.loads(raw)
        except orjson.JSONDecodeError:
            return resp.status, None

    async def status(self, path: str) -> int:
        """Only the status of ``GET path``."""
        return (await self.get(path))[0]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session whose requests give up after 10 s."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client:
        yield client

"""Probe: GET JSON endpoints of one base URL, as the reliability tests do."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

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

"""Helpers of the /debug tests."""

from __future__ import annotations

from typing import Any

import aiohttp

__all__ = ["AUTH", "TOKEN", "get_json"]

TOKEN = "debug-token-5e7a1c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def get_json(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    """The status and JSON body of ``GET url``."""
    async with session.get(url) as resp:
        return resp.status, await resp.json()

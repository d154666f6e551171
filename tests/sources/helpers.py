"""Helpers of the Redis source tests: an application reading one stream, and a reader of
the stream's group figures."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aredis

from orchestrator import Application
from orchestrator.sources.redis import RedisStreamSource

__all__ = ["consumer_pending", "dead_letters", "running"]


@contextlib.asynccontextmanager
async def running(app: Application, source: RedisStreamSource,
                  stop_timeout: float = 5.0) -> AsyncIterator[RedisStreamSource]:  # fmt: skip
    """``app`` running with ``source`` added, stopped on the way out."""
    app.add_source(source)
    await app.start()
    try:
        yield source
    finally:
        await app.stop(timeout=stop_timeout)


async def consumer_pending(client: aredis.Redis, stream: str, group: str) -> dict[str, int]:
    """The group's pending entries per consumer."""
    summary: Any = await client.xpending(stream, group)
    return {c["name"]: int(c["pending"]) for c in summary["consumers"] or ()}


async def dead_letters(client: aredis.Redis, stream: str) -> list[tuple[str, dict[str, str]]]:
    """The entries of ``<stream>:dead``, oldest first."""
    entries: Any = await client.xrange(f"{stream}:dead")
    return [(entry_id, dict(fields)) for entry_id, fields in entries]

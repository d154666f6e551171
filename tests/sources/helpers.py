"""Helpers of the Redis source tests: an application reading one stream, and a reader of
the stream's group figures."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aredis

from orchestrator import Application, Job
from orchestrator.job import Origin
from orchestrator.sources.redis import RedisStreamSource

__all__ = ["consumer_pending", "dead_letters", "origin_recorder", "running"]


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


def origin_recorder(
    app: Application, kind: str = "echo"
) -> tuple[list[Origin | None], asyncio.Event]:
    """Register a ``kind`` handler on ``app`` that records each job's origin: the origins
    seen, and an event set once a job ran."""
    got: list[Origin | None] = []
    ran = asyncio.Event()

    @app.handler(kind)
    async def record(job: Job) -> None:
        got.append(job.origin)
        ran.set()

    return got, ran


async def consumer_pending(client: aredis.Redis, stream: str, group: str) -> dict[str, int]:
    """The group's pending entries per consumer."""
    summary: Any = await client.xpending(stream, group)
    return {c["name"]: int(c["pending"]) for c in summary["consumers"] or ()}


async def dead_letters(client: aredis.Redis, stream: str) -> list[tuple[str, dict[str, str]]]:
    """The entries of ``<stream>:dead``, oldest first."""
    entries: Any = await client.xrange(f"{stream}:dead")
    return [(entry_id, dict(fields)) for entry_id, fields in entries]

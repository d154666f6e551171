"""RedisStreamSource through a broker outage: reconnects with backoff, health red after
the grace and green again, nothing lost; ``/live`` never depends on the broker."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as aredis

from orchestrator import Application
from orchestrator.job import Job
from orchestrator.sources.redis import RedisStreamSource, enqueue
from tests.sources.helpers import running
from tests.sources.redis_server import RedisServer
from tests.sources.test_redis_delivery import when


async def test_an_outage_turns_health_red_after_the_grace_and_green_on_reconnect(
    redis_outage_server: RedisServer,
) -> None:
    """The broker stopped: the source is ``disconnected``, ``sources`` unhealthy after
    ``unhealthy_after``, its retries back off (few failures, little CPU); restarted: healthy
    again and an entry added before the outage and one after both run."""
    server = redis_outage_server
    client = aredis.Redis.from_url(server.url, decode_responses=True)
    app = Application(workers=2)
    ran: list[Any] = []

    @app.handler("echo")
    async def echo(job: Job) -> None:
        ran.append(job.payload)

    source = RedisStreamSource(server.url, stream="jobs", group="workers", block=0.05,
                               unhealthy_after=0.3)  # fmt: skip
    try:
        async with running(app, source):
            await enqueue(client, "jobs", "echo", "before")
            await when(lambda: ran == ["before"], "first job")
            server.stop()
            cpu = time.process_time()
            await when(lambda: not app.health().healthy, "unhealthy", seconds=10)
            assert source.stats()["state"] == "disconnected"
            assert "broker out of reach" in (app.health().failing()["sources"])
            await asyncio.sleep(1.0)  # sleep-ok: an outage of a second, to measure its cost
            assert time.process_time() - cpu < 0.5  # backoff: no busy loop while down
            server.start()
            await when(lambda: app.health().healthy, "healthy again", seconds=15)
            await enqueue(server.url, "jobs", "echo", "after")  # a new connection
            await when(lambda: ran == ["before", "after"], "second job", seconds=10)
            assert source.stats()["state"] in ("reading", "paused_for_room")
    finally:
        await client.aclose()

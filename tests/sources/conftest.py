"""Fixtures of the sources' tests: a real redis-server, and a client of it per test."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aredis

from tests.sources.redis_server import RedisServer

_names = itertools.count(1)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server (append-only file off) for the session's tests, stopped at the end.
    Tests share it: each works on streams of its own name (``stream_name``)."""
    yield from _served(RedisServer(tmp_path_factory.mktemp("redis")))


@pytest.fixture
def redis_outage_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, append-only, that the test may stop and restart."""
    yield from _served(RedisServer(tmp_path, appendonly=True))


def _served(server: RedisServer) -> Iterator[RedisServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def stream_name() -> str:
    """A stream name no other test of the session uses."""
    return f"jobs-{next(_names)}"


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aredis.Redis]:
    """A client of the session's server, decoding replies to text."""
    client = aredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()

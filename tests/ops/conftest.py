"""A real application serving HTTP on loopback with a token, a few jobs already done."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from orchestrator import Application, Job
from tests.ops.live import JOBS, TOKEN, WORKERS


@pytest.fixture
async def live_app() -> AsyncIterator[Application]:
    """The real ``Application`` on 127.0.0.1 (any free port), ``JOBS`` echo jobs done."""
    app = Application(
        workers=WORKERS, enable_http=True, http_host="127.0.0.1", http_port=0, http_token=TOKEN
    )

    @app.handler("echo", timeout=5.0)
    async def echo(job: Job) -> object:
        return job.payload

    async with app:
        for n in range(JOBS):
            assert await app.submit("echo", {"n": n}) == {"n": n}
        yield app


@pytest.fixture
async def exposition(live_app: Application) -> str:
    """What ``GET /metrics`` of ``live_app`` answers with the token."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"{live_app.http_url}/metrics", headers=headers) as resp,
    ):
        assert resp.status == 200
        return await resp.text()

"""A real instance serving on 127.0.0.1 (free port), and the command line run against it."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import structlog

from orchestrator import Application, Job
from orchestrator.cli import main

TOKEN = "terminal-token-5e1f0c"
JOBS = 3
WORKERS = 2
RECYCLER_ROW = re.compile(r"  recycler   unhealthy  for \d+ s  recycler sweep loop is not running")
"""The health row of a stopped recycler: for how long, and why."""


@dataclass(frozen=True, slots=True)
class Ran:
    """What one ``orchestrator ...`` run did."""

    code: int
    out: str
    err: str


Cli = Callable[..., Awaitable[Ran]]
"""``await cli("status", "--url", url)``: run the command line in a thread, capture it."""


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ``ORCHESTRATOR_*`` variable from the outside; COLUMNS fixed for rich."""
    import os

    for name in [n for n in os.environ if n.startswith("ORCHESTRATOR_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "100")
    return monkeypatch


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], clean_env: pytest.MonkeyPatch) -> Cli:
    """Run ``orchestrator ARGS`` in a thread (the test's loop goes on serving)."""

    async def run(*argv: str) -> Ran:
        capsys.readouterr()
        with structlog.testing.capture_logs():  # the server's log lines stay off stdout
            try:
                code = await asyncio.to_thread(main, list(argv))
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


async def start_instance(**settings: Any) -> Application:
    """A running application on 127.0.0.1 with the token and an ``echo`` handler."""
    given = {"workers": WORKERS, "enable_http": True, "http_host": "127.0.0.1", "http_port": 0,
             "http_token": (TOKEN,), "stats_ttl": 0.05, **settings}  # fmt: skip
    app = Application(**given)

    @app.handler("echo", timeout=5.0)
    async def echo(job: Job) -> object:
        return job.payload

    await app.start()
    return app


async def drain(app: Application) -> None:
    """``POST /admin/drain`` with the token, as an operator does: ``/ready`` turns 503."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{app.http_url}/admin/drain", headers=headers) as resp,
    ):
        assert resp.status == 200


@pytest.fixture
async def instance() -> AsyncIterator[Application]:
    """A running instance that has done ``JOBS`` echo jobs."""
    app = await start_instance()
    try:
        for n in range(JOBS):
            assert await app.submit("echo", n) == n
        yield app
    finally:
        await app.stop(timeout=2.0)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound by no listener (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: the port stays ours
        yield sock.getsockname()[1]

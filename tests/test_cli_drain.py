"""SIGTERM on `orchestrator run`: readiness 503 while live for the drain delay; twice: at once."""

from __future__ import annotations

import asyncio
import re
import signal
import time

import aiohttp
import pytest

from tests.fakes import poll_process
from tests.test_cli import COMMAND, clean_env, summary_of

URL_LINE = re.compile(r"HTTP API on (http://127\.0\.0\.1:\d+)")


async def start(drain_delay: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        *COMMAND, "run", "--rate", "50", "--log-format", "json", "--drain-delay", drain_delay,
        env=clean_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    async with asyncio.timeout(30):
        line = (await proc.stdout.readline()).decode()
    match = URL_LINE.search(line)
    assert match is not None, line
    return proc, match.group(1)


async def draining(session: aiohttp.ClientSession, url: str) -> bool | None:
    """True once ``/ready`` answers 503."""
    return True if await get_status(session, f"{url}/ready") == 503 else None


async def get_status(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url) as resp:
        await resp.read()
        return resp.status


@pytest.mark.slow
async def test_sigterm_drains_then_exits_zero() -> None:
    """After SIGTERM /ready answers 503 and /live 200 until the drain delay ends; exit 0."""
    proc, url = await start("3")
    async with aiohttp.ClientSession() as session:
        assert await get_status(session, f"{url}/ready") == 200
        proc.send_signal(signal.SIGTERM)
        await poll_process(lambda: draining(session, url), seconds=10, what="/ready 503")
        assert await get_status(session, f"{url}/live") == 200
        assert await get_status(session, f"{url}/health") == 503
    assert proc.stdout is not None
    async with asyncio.timeout(20):
        out = (await proc.stdout.read()).decode()
        assert await proc.wait() == 0
    assert int(summary_of(out)["done"]) > 0


@pytest.mark.slow
async def test_second_sigterm_stops_at_once() -> None:
    """A second SIGTERM skips the rest of a long drain delay."""
    proc, url = await start("60")
    async with aiohttp.ClientSession() as session:
        proc.send_signal(signal.SIGTERM)
        await poll_process(lambda: draining(session, url), seconds=10, what="/ready 503")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(20):
        assert await proc.wait() == 0
    assert time.monotonic() - started < 10

"""The summary of ``orchestrator status`` at 80 columns, in every state a real instance can
be looked at in: each line of the summary stays one line of the terminal."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console, RenderableType

from orchestrator import Application, FakeClock
from orchestrator.terminal.remote import Remote, RemoteError
from orchestrator.terminal.status import look
from orchestrator.terminal.view import Frame, summary
from tests.fakes import FakeFactory, poll_process, standing_queue
from tests.sources.redis_server import free_port
from tests.terminal.conftest import TOKEN, drain, start_instance

WIDTH = 80


def rendered(shown: RenderableType, width: int) -> list[str]:
    """What ``shown`` prints on a terminal ``width`` columns wide, line by line."""
    console = Console(width=width, color_system=None, highlight=False, soft_wrap=False)
    with console.capture() as captured:
        console.print(shown)
    return captured.get().splitlines()


def broken_parentheses(line: str) -> bool:
    """True when ``line`` closes a parenthesis it did not open, or leaves one open."""
    depth = 0
    for char in line:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return True
    return depth != 0


async def looked(app: Application, token: str | None = TOKEN) -> Frame:
    """One look at ``app``, as ``orchestrator status`` takes it (in a thread: it blocks)."""
    assert app.http_url is not None
    return await asyncio.to_thread(look, Remote(app.http_url, token))


async def healthy(app: Application) -> Frame:
    return await looked(app)


async def drained(app: Application) -> Frame:
    await drain(app)
    return await looked(app)


async def drained_without_token(app: Application) -> Frame:
    await drain(app)
    return await looked(app, None)


async def recycler_stopped(app: Application) -> Frame:
    await app.recycler.stop()
    return await looked(app)


async def recycler_stopped_without_token(app: Application) -> Frame:
    await app.recycler.stop()
    return await looked(app, None)


async def pool_failing(app: Application) -> Frame:
    """Three jobs whose connection the factory refuses: the pool's reason and its last
    error are the longest texts the summary shows."""
    for n in range(3):
        with pytest.raises(Exception, match="PoolExhausted"):
            await app.submit("echo", n)
    return await looked(app)


async def watch_lost_it(app: Application) -> Frame:
    """What ``--watch`` shows when the instance stops answering: the last frame and why
    the next look failed."""
    url = app.http_url
    assert url is not None
    await drain(app)
    frame = await looked(app)
    await app.stop(timeout=2.0)
    with pytest.raises(RemoteError) as failed:
        await asyncio.to_thread(look, Remote(url, TOKEN), frame.stats)
    return replace(frame, error=str(failed.value))


async def shedding(app: Application) -> Frame:
    """A queue standing over its target: the summary says the instance sheds and why."""
    assert isinstance(app.clock, FakeClock)
    finish = await standing_queue(app, app.clock)
    frame = await looked(app)
    await finish()
    return frame


async def broker_down(app: Application) -> Frame:
    """A Redis source whose broker does not answer: its line says disconnected, and why."""

    async def down() -> bool | None:
        states = [s["state"] for s in app.job_sources.stats().values()]
        return True if states == ["disconnected"] else None

    await poll_process(down, seconds=10, what="the source disconnected")
    return await looked(app)


FAILING_POOL = {"connection_factory": FakeFactory(fail=True), "pool_acquire_timeout": 0.1}
NO_BROKER = {"source": f"redis://127.0.0.1:{free_port()}/0?stream=jobs&group=workers"}

STATES: dict[str, tuple[dict[str, Any], Callable[[Application], Awaitable[Frame]]]] = {
    "healthy": ({}, healthy),
    "drained": ({}, drained),
    "drained-no-token": ({}, drained_without_token),
    "unhealthy": ({}, recycler_stopped),
    "unhealthy-no-token": ({}, recycler_stopped_without_token),
    "long-reasons": (FAILING_POOL, pool_failing),
    "watch-lost-it": ({}, watch_lost_it),
    "shedding": ({"workers": 1, "clock": FakeClock()}, shedding),
    "broker-down": (NO_BROKER, broker_down),
}


@pytest.mark.parametrize("state", STATES)
async def test_every_line_fits_80_columns(state: str) -> None:
    """No line is wider than 80 columns, none is wrapped onto a second one (the summary has
    as many lines as on a terminal without a limit), and none breaks inside parentheses."""
    settings, reach = STATES[state]
    app = await start_instance(**settings)
    try:
        frame = await reach(app)
    finally:
        await app.stop(timeout=2.0)
    lines = rendered(summary(frame), WIDTH)
    text = "\n".join(lines)
    assert [line for line in lines if cell_len(line) > WIDTH] == [], text
    assert len(lines) == len(rendered(summary(frame), 10_000)), text
    assert [line for line in lines if broken_parentheses(line)] == [], text
    ready = "ready" if frame.ready_status == 200 else "not ready"
    assert lines[0].endswith(f" · {ready}"), text
    if state == "broker-down":
        (line,) = [line for line in lines if line.startswith("Source")]
        assert line == ("Source   jobs/workers · disconnected · lag 0 · pending 0 · acked 0 · "
                        "dead 0"), text  # fmt: skip
        assert any(line.strip().startswith("last error: ") for line in lines), text
    if state == "shedding":
        (line,) = [line for line in lines if "SHEDDING" in line]
        assert line.strip() == "SHEDDING · queue over 5.0 ms · refused 1 for waits, 0 full"
        assert any(
            line.strip().startswith("limit 1 of 1 jobs at once · loop lag") for line in lines
        )


async def test_a_long_url_loses_its_middle_not_the_verdict() -> None:
    """The widest header (draining before a stop, up for days, a cluster DNS name) stays one
    line of 80: the URL gives up its middle, the state, uptime and verdict stay whole."""
    app = await start_instance()
    try:
        frame = await drained(app)
    finally:
        await app.stop(timeout=2.0)
    assert frame.stats is not None
    application = {**frame.stats["application"], "state": "draining", "uptime_seconds": 356_400}
    url = "http://orchestrator-canary.jobs.svc.cluster.local:8080"
    frame = replace(frame, url=url, stats={**frame.stats, "application": application})
    lines = rendered(summary(frame), WIDTH)
    assert len(lines) == len(rendered(summary(frame), 10_000))
    assert len(lines[0]) == WIDTH
    assert lines[0].startswith("orchestrator 0.1.0 at http://orche")
    assert lines[0].endswith("local:8080 · draining · up 4d 3h · not ready")
    assert lines[0].count("…") == 1
    assert lines[1] == "DRAINING: stopping: draining before the stop; /ready answers 503"

"""/debug/events: notable events live over Server-Sent Events, bounded and closed cleanly."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
import structlog
from structlog.typing import EventDict

from orchestrator import Application, FakeClock
from orchestrator.events import EventBus, TooManySubscribers
from orchestrator.watchdog import LoopWatchdog
from tests.debug.helpers import AUTH, TOKEN
from tests.fakes import make_app, until


async def sse_events(resp: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, Any]]:
    """``(event name, data)`` of each Server-Sent Event until the stream ends."""
    name, data = "message", ""
    async for raw in resp.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("event:"):
            name = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            data += line.partition(":")[2].strip()
        elif not line and data:
            yield name, orjson.loads(data)
            name, data = "message", ""


async def test_the_stream_carries_drains_and_ends_when_the_instance_drains(
    app: Application, session: aiohttp.ClientSession
) -> None:
    """An admin drain, then a stop: both arrive, and the stream ends cleanly at the stop."""
    seen: list[tuple[str, Any]] = []
    async with session.get(f"{app.http_url}/debug/events") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        assert resp.headers["X-Request-ID"]
        events = sse_events(resp)
        async with session.post(f"{app.http_url}/admin/drain") as drain:
            assert drain.status == 200
        seen.append(await anext(events))
        stopping = asyncio.ensure_future(app.stop(timeout=1.0))
        async with asyncio.timeout(5):
            seen += [event async for event in events]  # ends by itself
        await stopping
    assert [name for name, _ in seen] == ["drain_requested", "draining"]
    assert seen[0][1]["by"] == "admin"
    assert seen[0][1]["at"].endswith("Z")


async def test_subscribers_are_bounded(clock: FakeClock) -> None:
    """With max_event_subscribers=1 a second stream gets a 503."""
    app = make_app(clock, http=True, http_token=(TOKEN,), max_event_subscribers=1)
    await app.start()
    try:
        async with (
            aiohttp.ClientSession(headers=AUTH) as session,
            session.get(f"{app.http_url}/debug/events") as first,
            session.get(f"{app.http_url}/debug/events") as second,
        ):
            assert first.status == 200
            assert second.status == 503
            assert (await second.json())["error"] == "too_many_subscribers"
    finally:
        await app.stop(timeout=1.0)


async def test_a_slow_subscriber_loses_the_oldest_and_is_told() -> None:
    """A full queue drops its oldest events and reports how many, once."""
    bus = EventBus(max_subscribers=2, capacity=3)
    slow = bus.subscribe()
    for n in range(10):
        bus.publish("job_failed", {"n": n})
    event, dropped = await slow.next()
    assert event is not None
    assert (dropped, event.fields["n"]) == (7, 7)
    event, dropped = await slow.next()
    assert event is not None
    assert (dropped, event.fields["n"]) == (0, 8)
    bus.subscribe()
    with pytest.raises(TooManySubscribers):
        bus.subscribe()


async def test_a_blocked_loop_is_told_with_its_stack_then_its_end() -> None:
    """The watchdog thread logs event_loop_blocked with the loop thread's stack while it is
    blocked, once, and event_loop_unblocked with the total once it runs again."""
    published: list[str] = []
    told = threading.Event()

    def tell(_: object, __: str, event: EventDict) -> EventDict:
        if event["event"] == "event_loop_blocked":
            told.set()
        return event

    watchdog = LoopWatchdog(0.1, events=lambda name, fields: published.append(name))
    with structlog.testing.capture_logs(processors=[tell]) as logs:
        watchdog.start()
        try:
            await asyncio.sleep(0)
            held_since = time.monotonic()
            # block the loop until the watchdog has told it: no guess at how long that takes
            assert told.wait(timeout=10.0)
            assert watchdog.blocked  # the thread saw it while it lasted
            # the block goes on for about four more of the thread's checks: it is told once
            time.sleep(watchdog.threshold)  # noqa: ASYNC251  # sleep-ok: a longer block, no wait
            held = time.monotonic() - held_since
            await until(lambda: len(published) == 2)  # the next heartbeat tells it is over
        finally:
            watchdog.stop()
    (blocked,) = [e for e in logs if e["event"] == "event_loop_blocked"]
    (unblocked,) = [e for e in logs if e["event"] == "event_loop_unblocked"]
    assert blocked["log_level"] == "warning"
    assert blocked["blocked_seconds"] >= watchdog.threshold
    assert any("test_a_blocked_loop_is_told" in line for line in blocked["frames"])
    assert blocked["blocked_seconds"] <= unblocked["blocked_seconds"]  # told before its end
    assert unblocked["blocked_seconds"] >= round(held, 3)  # the whole block, at least
    assert watchdog.blocked_total == 1
    assert published == ["event_loop_blocked", "event_loop_unblocked"]


async def test_a_block_told_as_the_loop_resumes_is_still_told_before_its_end() -> None:
    """When the loop resumes while the watchdog thread is still telling the block, the end
    is logged and published after the block, not before it."""
    published: list[str] = []
    telling = threading.Event()
    release = threading.Event()

    def slow(_: object, __: str, event: EventDict) -> EventDict:
        if event["event"] == "event_loop_blocked":
            telling.set()
            release.wait(timeout=10.0)
        return event

    watchdog = LoopWatchdog(0.1, events=lambda name, fields: published.append(name))
    later = threading.Timer(0.2, release.set)
    with structlog.testing.capture_logs(processors=[slow]) as logs:
        watchdog.start()
        try:
            await asyncio.sleep(0)
            assert telling.wait(timeout=10.0)  # the loop is blocked until the thread tells it
            later.start()  # the thread finishes telling after the loop has resumed
            await until(lambda: len(published) == 2, turns=1_000_000)
        finally:
            release.set()
            later.cancel()
            watchdog.stop()
    told = [e["event"] for e in logs if e["event"].startswith("event_loop_")]
    assert told == ["event_loop_blocked", "event_loop_unblocked"]
    assert published == ["event_loop_blocked", "event_loop_unblocked"]

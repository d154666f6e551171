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

from orchestrator import Application, FakeClock, Job, JobFailed
from orchestrator.events import EventBus, TooManySubscribers
from orchestrator.http import debug
from orchestrator.watchdog import LoopWatchdog
from tests.debug.helpers import AUTH, TOKEN
from tests.fakes import make_app, poll_process, until


async def sse_frame(resp: aiohttp.ClientResponse) -> bytes:
    """The bytes of the next Server-Sent Event, up to and with its closing blank line."""
    frame = b""
    while not frame.endswith(b"\r\n\r\n"):
        frame += await resp.content.readline()
    return frame


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


async def test_an_operator_drain_leaves_streams_open_and_accepts_new_ones(
    app: Application, session: aiohttp.ClientSession
) -> None:
    """After POST /admin/drain /ready is 503, an open stream keeps delivering, and a new
    stream is accepted and delivers too: a drained instance can be watched."""

    @app.handler("db", retries=0)
    async def db(job: Job) -> None:
        raise RuntimeError("db down")

    url = app.http_url
    async with session.get(f"{url}/debug/events") as before:
        assert before.status == 200
        opened = sse_events(before)
        async with session.post(f"{url}/admin/drain") as drain:
            assert drain.status == 200
        assert (await anext(opened))[0] == "drain_requested"
        async with session.get(f"{url}/ready") as ready:
            assert ready.status == 503
        async with session.get(f"{url}/debug/events") as after:
            assert after.status == 200
            with pytest.raises(JobFailed):
                await app.submit("db")
            for stream in (opened, sse_events(after)):
                name, data = await anext(stream)
                assert (name, data["kind"], data["message"]) == ("job_failed", "db", "db down")


async def test_the_application_stop_ends_every_stream_and_refuses_new_ones(
    clock: FakeClock,
) -> None:
    """A stop (after an operator drain or not) sends `draining` and ends every open stream at
    once; until the server stops, a new stream gets a 503 not_running; the shutdown does not
    wait for http_shutdown_timeout. A new start accepts streams again."""
    app = make_app(clock, http=True, http_token=(TOKEN,), drain_delay=5.0,
                   http_shutdown_timeout=30.0)  # fmt: skip
    await app.start()
    async with aiohttp.ClientSession(headers=AUTH) as session:
        url = app.http_url
        async with (
            session.get(f"{url}/debug/events") as drained,
            session.get(f"{url}/debug/events") as plain,
        ):
            async with session.post(f"{url}/admin/drain") as drain:
                assert drain.status == 200
            stopping = asyncio.ensure_future(app.stop(timeout=1.0))
            async with asyncio.timeout(5):  # both end by themselves, before the drain delay
                seen = [[name async for name, _ in sse_events(r)] for r in (drained, plain)]
            assert seen == [["drain_requested", "draining"], ["drain_requested", "draining"]]
            async with session.get(f"{url}/debug/events") as late:
                assert late.status == 503
                body = await late.json()
                assert body["error"] == "not_running"
            assert not stopping.done()  # the drain delay still runs: the server answers
            clock.advance(5.0)
            async with asyncio.timeout(5):  # no stream holds the HTTP stop (30 s twice)
                await stopping
        await app.start()
        try:
            async with session.get(f"{app.http_url}/debug/events") as again:
                assert again.status == 200
        finally:
            stopping = asyncio.ensure_future(app.stop(timeout=1.0))
            app.hurry()  # no drain delay this time
            await stopping


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


async def test_a_client_hanging_up_mid_stream_is_a_served_request_not_a_server_error(
    app: Application, session: aiohttp.ClientSession
) -> None:
    """A client closing /debug/events: one http_request_served at info with status 200, the
    stream's duration and the bytes the client got; no http_handler_failed, no 5xx."""
    with structlog.testing.capture_logs() as logs:
        async with aiohttp.ClientSession(headers=AUTH) as client:
            resp = await client.get(f"{app.http_url}/debug/events")
            assert resp.status == 200
            opened = time.perf_counter()
            app.events.publish("worker_died", {"worker": 1})
            received = await sse_frame(resp)
            resp.close()  # hangs up mid-stream
            held = time.perf_counter() - opened
        # The server sees the connection go, then finds it gone at its next write.
        await until(lambda: app.get_stats()["http"]["connections"]["active"] == 0)
        app.events.publish("worker_died", {"worker": 2})
        await until(lambda: app.events.subscribers == 0)
        async with session.get(f"{app.http_url}/stats/http") as stats:
            counted = (await stats.json())["requests_total"]
    assert not [e for e in logs if e["event"] == "http_handler_failed"]
    (served,) = [e for e in logs if e.get("route") == "/debug/events"]
    assert (served["event"], served["log_level"], served["status"]) == (
        "http_request_served",
        "info",
        200,
    )
    assert "error" not in served
    assert served["bytes"] == len(received)
    assert served["duration_ms"] >= held * 1000
    assert (counted["2xx"], counted["5xx"]) == (1, 0)


async def test_a_client_gone_from_a_quiet_stream_frees_its_slot_at_the_next_ping(
    app: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no event to send, the keep-alive ping finds the client gone: the stream ends,
    its subscriber slot is free again, and it is logged as served."""
    monkeypatch.setattr(debug, "PING_SECONDS", 0.05)
    with structlog.testing.capture_logs() as logs:
        async with aiohttp.ClientSession(headers=AUTH) as client:
            resp = await client.get(f"{app.http_url}/debug/events")
            assert await resp.content.readline() == b": ping\r\n"
            resp.close()
        assert app.events.subscribers == 1

        async def freed() -> bool | None:
            return app.events.subscribers == 0 or None

        # The ping runs on aiohttp-sse's own real-time timer: nothing to synchronise on.
        await poll_process(freed, seconds=5, what="the stream's end")
    (served,) = [e for e in logs if e.get("route") == "/debug/events"]
    assert (served["log_level"], served["status"]) == ("info", 200)
    assert served["bytes"] >= len(b": ping\r\n\r\n")


async def test_a_failure_burst_reaches_subscribers_bounded_then_summed_up(
    app: Application, session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """30 failures of one kind in a burst: the stream carries 5 job_failed, then, once the
    10 s window has passed, one job_events_suppressed counting the other 25."""

    @app.handler("db", retries=0)
    async def db(job: Job) -> None:
        raise RuntimeError("db down")

    async with session.get(f"{app.http_url}/debug/events") as resp:
        results = await asyncio.gather(*(app.submit("db") for _ in range(30)),
                                       return_exceptions=True)  # fmt: skip
        assert all(isinstance(r, JobFailed) for r in results)
        clock.advance(10.0)  # the window ends; the health watcher's tick sums it up
        seen: list[tuple[str, Any]] = []
        async with asyncio.timeout(5):
            async for name, data in sse_events(resp):
                seen.append((name, data))
                if name == "job_events_suppressed":
                    break
    assert [name for name, _ in seen] == ["job_failed"] * 5 + ["job_events_suppressed"]
    summary = seen[-1][1]
    assert {k: summary[k] for k in ("of", "kind", "suppressed", "window_seconds")} == {
        "of": "job_failed", "kind": "db", "suppressed": 25, "window_seconds": 10.0,
    }  # fmt: skip

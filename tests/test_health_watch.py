"""Health watched in the background: each change told once, within a tick, with no probe."""

from __future__ import annotations

import asyncio

import aiohttp
import structlog

from orchestrator import ComponentHealth, FakeClock, HealthReport
from orchestrator.health_watch import HealthWatcher
from orchestrator.state import State
from tests.fakes import make_app, until

OK = ComponentHealth.ok()
BAD = ComponentHealth.failing("db down")


def report(**components: ComponentHealth) -> HealthReport:
    return HealthReport(all(c.healthy for c in components.values()), 0.0, dict(components))


def test_each_change_of_a_component_is_told_once(clock: FakeClock) -> None:
    """A component turning unhealthy is a warning, its recovery an info; no change, no line."""
    published: list[tuple[str, object]] = []
    watcher = HealthWatcher(report, clock, events=lambda n, f: published.append((n, dict(f))))
    with structlog.testing.capture_logs() as logs:
        watcher.observe(report(pool=OK, router=OK))
        watcher.observe(report(pool=OK, router=OK))
        clock.advance(3)
        watcher.observe(report(pool=BAD, router=OK))
        watcher.observe(report(pool=BAD, router=OK))
        clock.advance(4)
        watcher.observe(report(pool=OK, router=OK))
    changes = [e for e in logs if e["event"] == "health_changed"]
    assert [(e["log_level"], e["component"], e["from"], e["to"], e["reason"]) for e in changes] == [
        ("warning", "pool", "healthy", "unhealthy", "db down"),
        ("info", "pool", "unhealthy", "healthy", None),
    ]
    assert [name for name, _ in published] == ["health_changed", "health_changed"]
    assert watcher.since["pool"] == clock.wall()  # back to healthy just now
    assert watcher.since["router"] == clock.wall() - 7  # unchanged since the first look


def test_an_unhealthy_start_is_told(clock: FakeClock) -> None:
    """A component first seen unhealthy is reported (from "unknown")."""
    watcher = HealthWatcher(report, clock)
    with structlog.testing.capture_logs() as logs:
        watcher.observe(report(pool=BAD))
    (change,) = [e for e in logs if e["event"] == "health_changed"]
    assert (change["from"], change["to"]) == ("unknown", "unhealthy")


async def test_a_change_is_told_within_a_second_with_nobody_polling(clock: FakeClock) -> None:
    """With no request at all, stopping the recycler publishes health_changed within 1 s,
    and /health?verbose then says since when."""
    app = make_app(clock, http=True)
    await app.start()
    try:
        events = app.events.subscribe()
        with structlog.testing.capture_logs() as logs:
            await app.recycler.stop()
            async with asyncio.timeout(1.0):
                while True:
                    event, _ = await events.next()
                    assert event is not None
                    if event.name == "health_changed":
                        break
        assert dict(event.fields) == {"component": "recycler", "from": "healthy",
                                      "to": "unhealthy",
                                      "reason": "recycler sweep loop is not running"}  # fmt: skip
        (logged,) = [e for e in logs if e["event"] == "health_changed"]
        assert "request_id" not in logged  # no probe asked
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{app.http_url}/health?verbose") as resp,
        ):
            body = await resp.json()
        assert body["checks"]["recycler"]["since"].endswith("Z")
    finally:
        await app.stop(timeout=1.0)


async def test_a_requested_stop_is_no_health_incident(clock: FakeClock) -> None:
    """While a stop drains, components turning unhealthy are told at info (during="stop"),
    never as warnings; the events still carry them."""
    app = make_app(clock, http=True, drain_delay=5.0)
    await app.start()
    stopping = asyncio.ensure_future(app.stop(timeout=1.0))
    with structlog.testing.capture_logs() as logs:
        await until(lambda: app.lifecycle.state is State.DRAINING)
        app.monitors.health_watch.observe(
            app.health()
        )  # the watcher's tick, without waiting for it
    while not stopping.done():  # through the drain delay, whenever its sleep begins
        clock.advance(1.0)
        await asyncio.sleep(0)
    changes = [e for e in logs if e["event"] == "health_changed"]
    assert {e["component"] for e in changes} >= {"router", "lifecycle"}
    assert {(e["log_level"], e["to"], e["during"]) for e in changes} == {
        ("info", "unhealthy", "stop")
    }

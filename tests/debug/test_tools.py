"""/debug/tasks, /debug/profile, /debug/loggers and /debug/config on a real server."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import orjson
import pytest
import structlog

from orchestrator import Application, FakeClock
from orchestrator.http.debug import PROFILE
from orchestrator.log_level import LEVEL
from tests.debug.helpers import TOKEN, get_json
from tests.fakes import make_app, until


async def test_tasks_list_every_task_with_its_stack(
    app: Application, session: aiohttp.ClientSession
) -> None:
    """Each task has a name, a coroutine, a state and a stack of file:line function entries."""
    status, body = await get_json(session, f"{app.http_url}/debug/tasks")
    assert status == 200
    workers = [t for t in body["tasks"] if t["name"].startswith("worker-")]
    assert len(workers) == 2
    assert workers[0]["coroutine"] == "WorkerPool._run"
    assert workers[0]["state"] == "pending"
    stack = workers[0]["stack"]
    assert stack[0].endswith(" _run")  # outermost first, innermost last
    assert all(":" in entry and " " in entry for entry in stack)
    assert any(entry.endswith(" get") and "router.py" in entry for entry in stack)


async def test_grouped_tasks_merge_identical_stacks(
    app: Application, session: aiohttp.ClientSession
) -> None:
    """?group=1 counts tasks with the same stack once, as Go's goroutine dump does."""
    _, body = await get_json(session, f"{app.http_url}/debug/tasks?group=1")
    (idle,) = [g for g in body["groups"] if g["coroutine"] == "WorkerPool._run"]
    assert idle["count"] == 2
    assert body["tasks_total"] >= 2
    _, body = await get_json(session, f"{app.http_url}/debug/tasks?limit=1")
    assert (len(body["tasks"]), body["tasks_omitted"]) == (1, body["tasks_total"] - 1)


async def test_a_profile_runs_one_at_a_time_while_probes_answer(
    app: Application, session: aiohttp.ClientSession
) -> None:
    """A 1 s profile in text: the loop's work is in it; a second one meanwhile is a 409 that
    says when to retry; /live keeps answering during the profile."""
    first = asyncio.ensure_future(
        session.get(f"{app.http_url}/debug/profile?seconds=1&format=text")
    )
    await until(lambda: PROFILE.busy, turns=100_000)  # the request reached the real server
    async with session.get(f"{app.http_url}/debug/profile?seconds=1") as second:
        body = await second.json()
        assert (second.status, body["error"]) == (409, "profile_running")
        assert second.headers["Retry-After"] == "1"
    started = time.monotonic()
    async with session.get(f"{app.http_url}/live") as live:
        assert live.status == 200
    assert time.monotonic() - started < 0.5
    resp = await first
    text = await resp.text()
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    assert "Duration:" in text
    resp.release()


async def test_a_speedscope_profile_is_an_attachment(
    app: Application, session: aiohttp.ClientSession
) -> None:
    """The default format is speedscope JSON, served as a download."""
    async with session.get(f"{app.http_url}/debug/profile?seconds=1") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Disposition"].startswith("attachment;")
        doc = orjson.loads(await resp.read())
    assert doc["$schema"].startswith("https://www.speedscope.app/")


@pytest.mark.parametrize("query", ["seconds=0", "seconds=61", "seconds=x", "format=pdf"])
async def test_a_bad_profile_request_is_a_400(
    app: Application, session: aiohttp.ClientSession, query: str
) -> None:
    """seconds is 1..60, format is speedscope, text or html."""
    status, body = await get_json(session, f"{app.http_url}/debug/profile?{query}")
    assert (status, body["error"]) == (400, "bad_request")


async def test_the_log_level_changes_for_a_while_then_turns_back(
    app: Application, session: aiohttp.ClientSession
) -> None:
    """PUT sets the level, /stats and GET show it and when it reverts; the revert comes by
    itself (its timer is set); both are logged."""
    LEVEL.configure(logging.INFO)  # as configure_logging() does (without caching loggers)
    with structlog.testing.capture_logs() as logs:
        async with session.put(f"{app.http_url}/debug/loggers",
                               json={"level": "debug", "seconds": 120}) as resp:  # fmt: skip
            assert resp.status == 200
            body = await resp.json()
        assert (body["level"], body["default_level"]) == ("debug", "info")
        assert body["reverts_at"].endswith("Z")
        application = app.get_stats()["application"]
        assert (application["log_level"], application["log_level_reverts_at"]) == (
            "debug", body["reverts_at"])  # fmt: skip
        timer = LEVEL._timer
        assert timer is not None
        assert timer.when() - asyncio.get_running_loop().time() == pytest.approx(120, abs=1)
        LEVEL.revert()  # what the timer does when it fires
    _, body = await get_json(session, f"{app.http_url}/debug/loggers")
    assert (body["level"], body["reverts_at"]) == ("info", None)
    events = [(e["event"], e.get("to")) for e in logs if e["event"].startswith("log_level")]
    assert events == [("log_level_changed", "debug"), ("log_level_reverted", "info")]


@pytest.mark.parametrize("name", ["DEBUG", "Debug"])
async def test_a_level_name_is_read_in_any_case(
    app: Application, session: aiohttp.ClientSession, name: str
) -> None:
    """Level names are case-insensitive, as everywhere in Python's logging."""
    LEVEL.configure(logging.INFO)
    async with session.put(f"{app.http_url}/debug/loggers",
                           json={"level": name, "seconds": 60}) as resp:  # fmt: skip
        assert resp.status == 200
        body = await resp.json()
    assert body["level"] == "debug"
    LEVEL.revert()


async def test_setting_the_configured_level_is_a_revert(
    app: Application, session: aiohttp.ClientSession
) -> None:
    """PUT of the configured level turns a change back at once: no timer, no revert time."""
    LEVEL.configure(logging.INFO)
    for level in ("debug", "info"):
        async with session.put(f"{app.http_url}/debug/loggers?pretty",
                               json={"level": level, "seconds": 120}) as resp:  # fmt: skip
            assert resp.status == 200
            text = await resp.text()
    assert text.startswith('{\n  "level": "info"')  # ?pretty is honoured on PUT too
    _, body = await get_json(session, f"{app.http_url}/debug/loggers")
    assert (body["level"], body["reverts_at"]) == ("info", None)
    assert LEVEL._timer is None


@pytest.mark.parametrize(
    "body",
    [b'{"level": "verbose"}', b'{"level": "debug", "seconds": 0}',
     b'{"level": "debug", "seconds": 3601}', b"not json", b'{"level": "debug", "seconds": true}'],
    ids=["unknown-level", "zero", "over-an-hour", "not-json", "bool-seconds"],
)  # fmt: skip
async def test_a_bad_level_change_is_a_400(
    app: Application, session: aiohttp.ClientSession, body: bytes
) -> None:
    """Unknown levels and durations out of 1..3600 s are refused; nothing changes."""
    LEVEL.configure(logging.INFO)  # as configure_logging() does (without caching loggers)
    async with session.put(f"{app.http_url}/debug/loggers", data=body) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"] == "bad_request"
    assert LEVEL.name() == "info"


async def test_a_level_change_needs_orchestrators_logging(
    clock: FakeClock, session: aiohttp.ClientSession
) -> None:
    """When the program configured structlog itself, PUT says so (409)."""
    structlog.configure(processors=[structlog.processors.JSONRenderer()])
    app = make_app(clock, http=True, http_token=(TOKEN,), rate_limit=None)
    await app.start()
    try:
        async with session.put(f"{app.http_url}/debug/loggers", json={"level": "debug"}) as r:
            assert r.status == 409
    finally:
        await app.stop(timeout=1.0)


async def test_config_shows_values_sources_and_no_secret(clock: FakeClock) -> None:
    """Settings in force, each with its source; the token only as a count."""
    app = make_app(clock, http=True, http_token=(TOKEN, "second-token-value"), workers=3)
    await app.start()
    try:
        async with (
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as s,
            s.get(f"{app.http_url}/debug/config") as resp,
        ):
            raw = await resp.read()
    finally:
        await app.stop(timeout=1.0)
    body: dict[str, Any] = orjson.loads(raw)
    assert body["core"]["workers"] == {"value": 3, "source": "keyword"}
    assert body["core"]["queue_size"] == {"value": 1024, "source": "default"}
    assert body["http"]["http_token"] == {"value": {"count": 2}, "source": "keyword"}
    assert TOKEN.encode() not in raw
    assert b"second-token-value" not in raw

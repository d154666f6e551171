"""/debug/jobs and the job outcomes behind it: in flight, failures, slowest, bounded events."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import structlog

from orchestrator import Application, FakeClock, Job, JobFailed, QueueFull
from orchestrator.job_events import JobEvents
from tests.debug.helpers import AUTH, TOKEN, get_json
from tests.fakes import BlockingHandler, make_app, until


class DbDown(RuntimeError):
    """A handler's failure with a message worth reading."""


async def test_in_flight_oldest_first_with_state_worker_and_age(
    app: Application, session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """Running jobs name their worker; queued ones come after, all sorted oldest first."""
    hold = BlockingHandler()
    app.handler("hold", timeout=None)(hold)
    jobs = []
    for n in range(4):  # two run (two workers), two wait
        jobs.append(asyncio.ensure_future(app.submit("hold", n)))
        await asyncio.sleep(0)
        clock.advance(1.0)
    await until(lambda: len(hold.started) == 2)
    status, body = await get_json(session, f"{app.http_url}/debug/jobs")
    assert status == 200
    states = [(j["id"], j["state"], j["age_seconds"]) for j in body["in_flight"]]
    assert states == [(1, "running", 4.0), (2, "running", 3.0), (3, "queued", 2.0),
                      (4, "queued", 1.0)]  # fmt: skip
    assert {j["worker"] for j in body["in_flight"][:2]} == {1, 2}
    assert body["in_flight"][2]["worker"] is None
    assert body["in_flight_total"] == 4
    status, body = await get_json(session, f"{app.http_url}/debug/jobs?limit=1")
    assert ([j["id"] for j in body["in_flight"]], body["in_flight_omitted"]) == ([1], 3)
    hold.release_all()
    await asyncio.gather(*jobs)


@pytest.mark.parametrize("limit", ["0", "-1", "x", "100001"])
async def test_a_bad_limit_is_a_400(
    app: Application, session: aiohttp.ClientSession, limit: str
) -> None:
    """?limit takes 1 to 10,000; anything else is a 400 that does not repeat it."""
    status, body = await get_json(session, f"{app.http_url}/debug/jobs?limit={limit}")
    assert (status, body["error"]) == (400, "bad_request")
    assert "1 to 10000" in body["detail"]


async def test_failures_are_told_with_their_message(
    app: Application, session: aiohttp.ClientSession
) -> None:
    """A failing job: job_failed logged with id, kind, attempt, type, message and duration; it
    heads /debug/jobs' recent failures; the worker's last_error has the message and time."""

    @app.handler("db", retries=1)
    async def db(job: Job) -> Any:
        raise DbDown("db down: connection refused by 10.0.0.7:5432")

    with structlog.testing.capture_logs() as logs, pytest.raises(JobFailed):
        await app.submit("db")
    retried = [e for e in logs if e["event"] == "job_retried"]
    (failed,) = [e for e in logs if e["event"] == "job_failed"]
    assert (retried[0]["attempt"], retried[0]["error_type"]) == (1, "DbDown")
    assert {k: failed[k] for k in ("job_id", "kind", "attempt", "error_type", "message")} == {
        "job_id": 1, "kind": "db", "attempt": 2, "error_type": "DbDown",
        "message": "db down: connection refused by 10.0.0.7:5432",
    }  # fmt: skip
    assert failed["duration_seconds"] >= 0
    _, body = await get_json(session, f"{app.http_url}/debug/jobs")
    (recent,) = body["recent_failures"]
    assert (recent["job_id"], recent["message"]) == (1, failed["message"])
    workers = app.get_stats()["workers"]["workers"]
    (last,) = [w["last_error"] for w in workers if w["last_error"]]
    assert last is not None
    assert (last["type"], last["job_id"]) == ("DbDown", 1)
    assert last["message"].startswith("db down")


async def test_rejections_are_counted_per_kind_and_told(clock: FakeClock) -> None:
    """A full queue's refusals count per kind (rejected_total); the log sums them up in
    jobs_refused when they begin, then at most once per 10 s, never a line each."""
    app = make_app(clock, workers=1, queue_size=1)
    hold = BlockingHandler()
    app.handler("hold", timeout=None)(hold)
    await app.start()
    try:
        running = asyncio.ensure_future(app.submit("hold", 1))
        await until(lambda: len(hold.started) == 1)
        queued = asyncio.ensure_future(app.submit("hold", 2))
        await asyncio.sleep(0)
        with structlog.testing.capture_logs() as logs:
            for _ in range(3):
                with pytest.raises(QueueFull):
                    await app.submit("hold", 3)
            assert logs == []  # a refusal costs no log call
            app.jobs.flush()  # the watcher's tick
            with pytest.raises(QueueFull):
                await app.submit("hold", 4)
            app.jobs.flush()  # within the window: nothing more yet
            clock.advance(10)
            app.jobs.flush()
        told = [(e["queue_full"], e["standing_wait"]) for e in logs if e["event"] == "jobs_refused"]
        assert told == [(3, 0), (1, 0)]
        kind = app.get_stats()["registry"]["kinds"]["hold"]
        assert kind["rejected_total"] == 4
        hold.release_all()
        await asyncio.gather(running, queued)
        assert app.get_stats()["registry"]["kinds"]["hold"]["queue_wait_seconds"]["count"] == 2
    finally:
        await app.stop(timeout=1.0)


def test_a_failure_storm_is_bounded_then_summed_up(clock: FakeClock) -> None:
    """At most 5 job_failed per kind per 10 s; then one job_events_suppressed with the count."""
    published: list[str] = []
    jobs = JobEvents(lambda name, fields: published.append(name), clock.wall)
    with structlog.testing.capture_logs() as logs:
        for n in range(1000):
            jobs.failed(n, "flaky", 1, RuntimeError("boom"), 0.001, timed_out=False)
        jobs.failed(9999, "other", 1, RuntimeError("boom"), 0.001, timed_out=False)
        clock.advance(10.0)
        jobs.flush()
    failed = [e for e in logs if e["event"] == "job_failed"]
    assert [e["kind"] for e in failed] == ["flaky"] * 5 + ["other"]
    (summary,) = [e for e in logs if e["event"] == "job_events_suppressed"]
    assert (summary["kind"], summary["of"], summary["suppressed"]) == (
        "flaky",
        "job_failed",
        995,
    )
    assert published == ["job_failed"] * 6 + ["job_events_suppressed"]  # the stream's share
    assert len(jobs.failures) == 100  # the ring keeps the last 100 whatever the log says


def test_slowest_jobs_of_the_last_minute(clock: FakeClock) -> None:
    """Five per kind, slowest first, forgotten after a minute."""
    jobs = JobEvents(None, clock.wall)
    for n, seconds in enumerate([0.1, 3.0, 0.5, 2.0, 0.2, 1.0, 0.05]):
        jobs.finished(n, "io", 1, seconds)
    assert [e["seconds"] for e in jobs.slowest()["io"]] == [3.0, 2.0, 1.0, 0.5, 0.2]
    clock.advance(70.0)
    assert jobs.slowest() == {}


async def test_routes_exist_only_with_a_token(clock: FakeClock) -> None:
    """Without a configured token /debug/* is a 404; with one, no token is a 401."""
    for token, expected in (((), 404), ((TOKEN,), 401)):
        app = make_app(clock, http=True, http_token=token)
        await app.start()
        try:
            async with aiohttp.ClientSession() as session:
                for path in ("/debug/jobs", "/debug/tasks", "/debug/config", "/debug/loggers"):
                    async with session.get(f"{app.http_url}{path}") as resp:
                        assert resp.status == expected, (token, path)
        finally:
            await app.stop(timeout=1.0)
    assert AUTH

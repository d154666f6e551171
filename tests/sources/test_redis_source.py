"""RedisStreamSource against a real redis-server: delivery, settling, dead letters,
take-over, heartbeats, backpressure and the drain."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aredis

from orchestrator import Application
from orchestrator.job import Job, Origin
from orchestrator.sources.redis import RedisStreamSource, enqueue
from tests.fakes import poll_process
from tests.sources.helpers import consumer_pending, dead_letters, running
from tests.sources.redis_server import RedisServer


def make_source(server: RedisServer, stream: str, **options: Any) -> RedisStreamSource:
    options.setdefault("block", 0.05)
    return RedisStreamSource(server.url, stream=stream, group="workers", **options)


async def test_jobs_run_once_with_their_origin_then_are_acked_and_deleted(
    redis_server: RedisServer, redis_client: aredis.Redis, stream_name: str
) -> None:
    """Each entry runs with its stream, id and delivery count; once done the group has
    nothing pending and the stream is empty (acked and deleted)."""
    ids = [await enqueue(redis_client, stream_name, "echo", {"n": n}) for n in range(30)]
    seen: list[tuple[Any, Origin | None]] = []
    done = asyncio.Event()
    app = Application(workers=4)

    @app.handler("echo")
    async def echo(job: Job) -> None:
        seen.append((job.payload, job.origin))
        if len(seen) == len(ids):
            done.set()

    async with running(app, make_source(redis_server, stream_name, consumer="c1")) as source:
        await asyncio.wait_for(done.wait(), 10)
    assert sorted(p["n"] for p, _ in seen) == list(range(30))
    assert {o for _, o in seen} == {Origin(stream_name, i, 1) for i in ids}
    assert await consumer_pending(redis_client, stream_name, "workers") == {}
    assert await redis_client.xlen(stream_name) == 0
    stats = source.stats()
    assert (stats["delivered_total"], stats["acked_total"]) == (30, 30)
    assert app.get_stats()["sources"][f"{stream_name}/workers"]["consumer"] == "c1"


async def test_submitted_jobs_have_no_origin(app: Application) -> None:
    """A job given to submit() has ``origin`` None."""
    got: list[Origin | None] = []

    @app.handler("where")
    async def where(job: Job) -> None:
        got.append(job.origin)

    await app.submit("where")
    assert got == [None]


async def test_a_final_failure_is_dead_lettered_with_its_error_then_acked(
    redis_server: RedisServer, redis_client: aredis.Redis, stream_name: str
) -> None:
    """After its retries, the entry is copied to ``<stream>:dead`` with the error type and
    message, attempts, consumer and time, then acked and deleted."""
    entry = await enqueue(redis_client, stream_name, "boom", [1, 2])
    app = Application(workers=2)
    failed = asyncio.Event()

    @app.handler("boom", retries=1)
    async def boom(job: Job) -> None:
        if job.attempt == 2:
            failed.set()
        raise ValueError("no such order 42")

    async with running(app, make_source(redis_server, stream_name, consumer="c1")) as source:
        await asyncio.wait_for(failed.wait(), 10)
        await poll_process(lambda: _some(source.stats()["dead_lettered_total"] == 1),
                           seconds=10, what="dead letter written")  # fmt: skip
    ((_, record),) = await dead_letters(redis_client, stream_name)
    assert record["error_type"] == "ValueError"
    assert record["error"] == "no such order 42"
    assert (record["attempts"], record["deliveries"]) == ("2", "1")
    assert (record["consumer"], record["entry_id"]) == ("c1", entry)
    assert (record["kind"], record["payload"]) == ("boom", "[1,2]")
    assert record["time"].endswith("Z")
    assert await consumer_pending(redis_client, stream_name, "workers") == {}
    assert await redis_client.xlen(stream_name) == 0


async def _some(value: bool) -> bool | None:
    return True if value else None


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"kind": "nobody"}, "no handler"),
        ({"kind": "echo", "payload": "{not json"}, "the entry's payload is not JSON"),
        ({"payload": "1"}, "the entry has no kind field"),
    ],
    ids=["unknown-kind", "bad-json", "no-kind"],
)
async def test_a_bad_entry_goes_to_the_dead_letters_without_running(
    redis_server: RedisServer, redis_client: aredis.Redis, stream_name: str,
    fields: dict[str, str], error: str,
) -> None:  # fmt: skip
    """An unknown kind, a payload that is not JSON, or no kind: dead-lettered once with a
    clear error, never run, and the next good entry runs."""
    await redis_client.xadd(stream_name, fields)  # type: ignore[arg-type]
    await enqueue(redis_client, stream_name, "echo", "after")
    app = Application(workers=2)
    ran: list[Any] = []
    good = asyncio.Event()

    @app.handler("echo")
    async def echo(job: Job) -> None:
        ran.append(job.payload)
        good.set()

    async with running(app, make_source(redis_server, stream_name)) as source:
        await asyncio.wait_for(good.wait(), 10)
        await poll_process(lambda: _some(source.stats()["acked_total"] == 2),
                           seconds=10, what="both settled")  # fmt: skip
    assert ran == ["after"]
    dead = await dead_letters(redis_client, stream_name)
    assert len(dead) == 1
    assert error in dead[0][1]["error"]
    assert await redis_client.xlen(stream_name) == 0


async def test_stats_sources_and_health_over_http(
    redis_server: RedisServer, stream_name: str
) -> None:
    """``/stats/sources`` serves each source's stats; ``/health`` has a ``sources`` component."""
    import aiohttp

    app = Application(workers=2, enable_http=True, http_host="127.0.0.1", http_port=0)
    source = make_source(redis_server, stream_name, consumer="c9")
    async with running(app, source), aiohttp.ClientSession() as http:
        async with http.get(f"{app.http_url}/stats/sources") as resp:
            body = await resp.json()
        async with http.get(f"{app.http_url}/health") as resp:
            health = await resp.json()
    section = body[f"{stream_name}/workers"]
    assert (section["stream"], section["consumer"]) == (stream_name, "c9")
    assert health["components"]["sources"] is True


async def test_source_metrics_are_exported(
    redis_server: RedisServer, redis_client: aredis.Redis, stream_name: str
) -> None:
    """``/metrics`` has ``orchestrator_source_*`` per source, from the same stats."""
    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    await enqueue(redis_client, stream_name, "echo", 1)
    app = Application(workers=2, enable_http=True, http_host="127.0.0.1", http_port=0,
                      stats_ttl=0.0)  # fmt: skip
    ran = asyncio.Event()

    @app.handler("echo")
    async def echo(job: Job) -> None:
        ran.set()

    source = make_source(redis_server, stream_name)
    async with running(app, source), aiohttp.ClientSession() as http:
        await asyncio.wait_for(ran.wait(), 10)
        await poll_process(lambda: _some(source.stats()["acked_total"] == 1),
                           seconds=10, what="acked")  # fmt: skip
        async with http.get(f"{app.http_url}/metrics") as resp:
            text = await resp.text()
    samples = {(s.name, s.labels.get("source")): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}  # fmt: skip
    label = f"{stream_name}/workers"
    assert samples["orchestrator_source_acked_total", label] == 1
    assert samples["orchestrator_source_delivered_total", label] == 1
    assert samples["orchestrator_source_disconnected_seconds", label] == 0


async def test_the_entry_id_is_in_debug_jobs_and_in_failure_events(
    redis_server: RedisServer, redis_client: aredis.Redis, stream_name: str
) -> None:
    """A running source job shows its entry id in ``debug_jobs``; its failure's log line,
    event and ``recent_failures`` entry carry it too."""
    from structlog.testing import capture_logs

    entry = await enqueue(redis_client, stream_name, "fail", None)
    app = Application(workers=2)
    started, release = asyncio.Event(), asyncio.Event()

    @app.handler("fail")
    async def fail(job: Job) -> None:
        started.set()
        await release.wait()
        raise RuntimeError("bad")

    with capture_logs() as logs:
        source = make_source(redis_server, stream_name)
        async with running(app, source):
            await asyncio.wait_for(started.wait(), 10)
            (running_job,) = app.debug_jobs(10)["in_flight"]
            assert running_job["entry_id"] == entry
            release.set()
            await poll_process(lambda: _some(source.stats()["dead_lettered_total"] == 1),
                               seconds=10, what="dead-lettered")  # fmt: skip
    (failure,) = app.debug_jobs(10)["recent_failures"]
    assert failure["entry_id"] == entry
    assert [e["entry_id"] for e in logs if e["event"] == "job_failed"] == [entry]

"""RedisStreamSource against a real redis-server: taking over, delivery limits,
heartbeats of long jobs, backpressure and the drain."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aredis

from orchestrator import Application
from orchestrator.job import Job, Origin
from orchestrator.sources.redis import RedisStreamSource, enqueue
from tests.fakes import poll_process
from tests.sources.helpers import consumer_pending, dead_letters, origin_recorder, running
from tests.sources.redis_server import RedisServer


def make_source(server: RedisServer, stream: str, **options: Any) -> RedisStreamSource:
    options.setdefault("block", 0.05)
    options.setdefault("consumer", "me")
    return RedisStreamSource(server.url, stream=stream, group="workers", **options)


async def ghost_reads(client: aredis.Redis, stream: str, times: int = 1) -> str:
    """A consumer ``ghost`` reads the next entry (then ``times - 1`` more deliveries by
    XCLAIM) and dies: the entry stays in its pending list. Its id."""
    await client.xgroup_create(stream, "workers", id="0", mkstream=True)
    reply: Any = await client.xreadgroup("workers", "ghost", {stream: ">"}, count=1)
    entry_id: str = reply[0][1][0][0]
    for _ in range(times - 1):
        await client.xclaim(stream, "workers", "ghost", 0, [entry_id])
    return entry_id


async def when(predicate: Any, what: str, seconds: float = 10.0) -> None:
    """Until ``predicate()`` holds (the source talks to a real server)."""

    async def probe() -> bool | None:
        return True if predicate() else None

    await poll_process(probe, seconds=seconds, what=what)


async def test_an_entry_idle_in_a_dead_consumer_is_taken_over(
    redis_server: RedisServer, redis_client: aredis.Redis, stream_name: str
) -> None:
    """An entry left pending by another consumer past ``claim_idle`` is claimed, run with
    its delivery count (2), and acked."""
    await enqueue(redis_client, stream_name, "echo", "orphan")
    entry_id = await ghost_reads(redis_client, stream_name)
    app = Application(workers=2)
    got, ran = origin_recorder(app)

    async with running(app, make_source(redis_server, stream_name, claim_idle=0.2)) as source:
        await asyncio.wait_for(ran.wait(), 10)
        await when(lambda: source.stats()["acked_total"] == 1, "acked")
    assert got == [Origin(stream_name, entry_id, 2)]
    assert source.stats()["claimed_total"] == 1
    assert await consumer_pending(redis_client, stream_name, "workers") == {}


async def test_an_idle_source_takes_over_within_claim_idle_and_a_second_whatever_its_block(
    redis_server: RedisServer, redis_client: aredis.Redis, stream_name: str
) -> None:
    """A source with nothing new to read waits at most until its next claim: an orphan is
    taken over within ``claim_idle`` + 1 s even when one read may block for 3 s."""
    await enqueue(redis_client, stream_name, "echo", "orphan")
    await ghost_reads(redis_client, stream_name)
    delivered = asyncio.get_running_loop().time()
    app = Application(workers=2)
    _, ran = origin_recorder(app)
    claim_idle = 0.4
    source = make_source(redis_server, stream_name, claim_idle=claim_idle, block=3.0)
    async with running(app, source):
        await asyncio.wait_for(ran.wait(), 10)
        took = asyncio.get_running_loop().time() - delivered
    assert took < claim_idle + 1.0


async def test_entries_pending_for_its_own_consumer_name_are_taken_again_at_once(
    redis_server: RedisServer, redis_client: aredis.Redis, stream_name: str
) -> None:
    """An entry pending for the source's consumer that the source does not know of (a
    replica restarted with the same consumer name, or a read whose reply an outage lost)
    is taken again at once, not after ``claim_idle``."""
    await enqueue(redis_client, stream_name, "echo", "mine")
    await redis_client.xgroup_create(stream_name, "workers", id="0", mkstream=True)
    reply: Any = await redis_client.xreadgroup("workers", "me", {stream_name: ">"}, count=1)
    entry_id = reply[0][1][0][0]
    app = Application(workers=2)
    got, ran = origin_recorder(app)

    async with running(app, make_source(redis_server, stream_name, claim_idle=60)) as source:
        await asyncio.wait_for(ran.wait(), 10)
        await when(lambda: source.stats()["acked_total"] == 1, "acked")
    assert got == [Origin(stream_name, entry_id, 2)]
    assert await consumer_pending(redis_client, stream_name, "workers") == {}


async def test_an_entry_delivered_max_deliveries_times_is_dead_lettered_unrun(
    redis_server: RedisServer, redis_client: aredis.Redis, stream_name: str
) -> None:
    """An entry already delivered ``max_deliveries`` times (a job that kills its process)
    goes to the dead letters when taken over, without running again."""
    await enqueue(redis_client, stream_name, "crash", None)
    await ghost_reads(redis_client, stream_name, times=3)
    app = Application(workers=2)
    ran: list[int] = []

    @app.handler("crash")
    async def crash(job: Job) -> None:
        ran.append(job.id)

    source = make_source(redis_server, stream_name, claim_idle=0.2, max_deliveries=3)
    async with running(app, source):
        await when(lambda: source.stats()["dead_lettered_total"] == 1, "dead-lettered")
    assert ran == []
    assert source.stats()["deliveries_exceeded_total"] == 1
    ((_, record),) = await dead_letters(redis_client, stream_name)
    assert record["deliveries"] == "4"
    assert "max_deliveries=3" in record["error"]
    assert await consumer_pending(redis_client, stream_name, "workers") == {}


async def test_a_long_job_is_never_taken_over(
    redis_server: RedisServer, redis_client: aredis.Redis, stream_name: str
) -> None:
    """While a job runs (here over 3x ``claim_idle``), its entry is touched every third of
    ``claim_idle``: another consumer's XAUTOCLAIM never takes it; it runs once."""
    await enqueue(redis_client, stream_name, "long", None)
    app = Application(workers=2)
    started, release = asyncio.Event(), asyncio.Event()
    runs: list[int] = []

    @app.handler("long")
    async def long(job: Job) -> None:
        runs.append(job.id)
        started.set()
        await release.wait()

    claim_idle = 0.3
    source = make_source(redis_server, stream_name, claim_idle=claim_idle)
    async with running(app, source):
        await asyncio.wait_for(started.wait(), 10)
        taken: list[Any] = []
        loop = asyncio.get_running_loop()
        end = loop.time() + 3.5 * claim_idle
        while loop.time() < end:  # another replica, trying all along
            reply: Any = await redis_client.xautoclaim(
                stream_name, "workers", "other", int(claim_idle * 1000), "0-0", count=10
            )
            taken += reply[1]
            await asyncio.sleep(claim_idle / 5)  # sleep-ok: the other replica's claim pace
        release.set()
        await when(lambda: source.stats()["acked_total"] == 1, "acked")
    assert taken == []
    assert runs == [1]
    assert source.stats()["touched_total"] >= 3


async def test_reads_only_what_there_is_room_for_and_never_refuses(
    redis_server: RedisServer, redis_client: aredis.Redis, stream_name: str
) -> None:
    """With 2 workers held busy, the source has at most 2x the in-progress limit of entries
    read (pending in the group), no job is refused, and all run once released."""
    for n in range(40):
        await enqueue(redis_client, stream_name, "hold", n)
    app = Application(workers=2, queue_size=3, adaptive_limit=False)
    release = asyncio.Event()
    done: list[int] = []

    @app.handler("hold")
    async def hold(job: Job) -> None:
        await release.wait()
        done.append(job.payload)

    async with running(app, make_source(redis_server, stream_name)) as source:
        await when(lambda: source.stats()["state"] == "paused_for_room", "paused")
        pending = await consumer_pending(redis_client, stream_name, "workers")
        assert pending == {"me": 4}  # 2 running + 2 queued: 2 x the limit of 2
        assert source.stats()["delivered_total"] == 4
        release.set()
        await when(lambda: len(done) == 40, "all ran", seconds=20)
    assert sorted(done) == list(range(40))
    assert app.get_stats()["router"]["rejected_total"] == 0
    assert await redis_client.xlen(stream_name) == 0


async def test_stop_finishes_and_acks_jobs_in_flight_and_leaves_unfinished_pending(
    redis_server: RedisServer, redis_client: aredis.Redis, stream_name: str
) -> None:
    """At stop, reading ends; a job that finishes within the stop timeout is acked; one
    that does not stays pending (never acked), made idle for another consumer at once."""
    await enqueue(redis_client, stream_name, "quick", None)
    stuck_id = await enqueue(redis_client, stream_name, "stuck", None)
    app = Application(workers=2)
    both, let_quick = asyncio.Event(), asyncio.Event()
    started: list[str] = []

    @app.handler("quick")
    async def quick(job: Job) -> None:
        started.append("quick")
        both.set() if len(started) == 2 else None
        await let_quick.wait()

    @app.handler("stuck")
    async def stuck(job: Job) -> None:
        started.append("stuck")
        both.set() if len(started) == 2 else None
        await asyncio.Event().wait()

    source = make_source(redis_server, stream_name, claim_idle=30.0)
    app.add_source(source)
    await app.start()
    await asyncio.wait_for(both.wait(), 10)
    stopping = asyncio.ensure_future(app.stop(timeout=0.5))
    await when(lambda: source.stats()["state"] == "draining", "draining")
    let_quick.set()
    await stopping
    assert source.stats()["acked_total"] == 1
    assert source.stats()["given_back_total"] == 1
    pending: Any = await redis_client.xpending_range(stream_name, "workers", "-", "+", 10)
    assert [p["message_id"] for p in pending] == [stuck_id]
    assert pending[0]["time_since_delivered"] >= 30_000  # claimable by another at once
    assert await redis_client.xlen(stream_name) == 1


async def test_stop_waits_for_a_write_of_outcomes_in_progress(
    redis_server: RedisServer, redis_client: aredis.Redis, stream_name: str
) -> None:
    """A stop that comes while the acknowledgements are being written (the server holds
    writes for 0.5 s: CLIENT PAUSE) waits for them, instead of cancelling the write."""
    await enqueue(redis_client, stream_name, "quick", None)
    app = Application(workers=2)
    started, release = asyncio.Event(), asyncio.Event()

    @app.handler("quick")
    async def quick(job: Job) -> None:
        started.set()
        await release.wait()

    source = make_source(redis_server, stream_name)
    app.add_source(source)
    await app.start()
    await asyncio.wait_for(started.wait(), 10)
    await redis_client.client_pause(500, all=False)  # writes held for 0.5 s
    release.set()
    await when(lambda: source.stats()["in_flight"] == 0, "job done")
    await app.stop(timeout=5.0)
    assert source.stats()["acked_total"] == 1
    assert await consumer_pending(redis_client, stream_name, "workers") == {}

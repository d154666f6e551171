"""Replicas as real processes: each one ``orchestrator run --app-dir tests/sources
replica_worker:app --source redis://...``, sharing a stream through a consumer group of a
real ``redis-server``. What every test checks is the ledger the handlers write
(``replica_worker``): which entries ran, and how many times.

Everything is bounded: counts are fixed, every wait is a deadline poll of a real process.
The fleet test's 20,000 jobs take about 4 s here (3 replicas of 16 workers).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import redis.asyncio as aredis

from tests.fakes import poll_process
from tests.sources.helpers import consumer_pending, dead_letters
from tests.sources.redis_server import RedisServer
from tests.sources.replica_worker import done_key, started_key
from tests.test_cli import COMMAND, clean_env

WORKER_DIR = Path(__file__).parent
URL_LINE = re.compile(r"HTTP API on (http://127\.0\.0\.1:\d+)")
START_SECONDS = 60.0
"""A replica's start (interpreter, imports, first answer): a hang detector on a busy box."""
EXIT_SECONDS = 30.0
FLEET_JOBS = 20_000
OUTAGE_JOBS = 20_000
OUTAGE_AFTER_RED = 3.0
"""Seconds the broker stays down once health is red: red takes the source's grace
(``unhealthy_after``, 5 s, which ``--source`` cannot change), so a 3 s outage would never
show it."""
T = TypeVar("T")


@dataclass(slots=True)
class Replica:
    """One ``orchestrator run`` process: its consumer name, and its HTTP API's URL."""

    consumer: str
    proc: asyncio.subprocess.Process
    log: Path
    http: str = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def exited(self, seconds: float = EXIT_SECONDS) -> int:
        """Its exit status, within ``seconds``."""
        return await asyncio.wait_for(self.proc.wait(), seconds)

    def cpu_seconds(self) -> float:
        """User + system CPU time so far, from ``/proc/PID/stat``."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Fleet:
    """Starts replicas of ``replica_worker:app`` on one stream and group; kills what is
    left of them on the way out."""

    def __init__(self, folder: Path, broker: RedisServer, ledger: RedisServer, stream: str,
                 *, claim_idle: float, max_deliveries: int = 5) -> None:  # fmt: skip
        self.folder, self.broker, self.ledger, self.stream = folder, broker, ledger, stream
        self.claim_idle, self.max_deliveries = claim_idle, max_deliveries
        self.replicas: list[Replica] = []

    def source(self, consumer: str) -> str:
        options = f"claim_idle={self.claim_idle:g}&max_deliveries={self.max_deliveries}"
        return f"{self.broker.url}?stream={self.stream}&group=workers&consumer={consumer}&{options}"

    async def start(self, consumer: str) -> Replica:
        """A new replica named ``consumer`` in the group, once its HTTP API answers."""
        log = self.folder / f"{consumer}.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                *COMMAND, "run", "--app-dir", str(WORKER_DIR), "replica_worker:app",
                "--source", self.source(consumer), "--log-format", "json",
                stdout=out, stderr=asyncio.subprocess.STDOUT,
                env=clean_env(REPLICA_LEDGER_URL=self.ledger.url),
            )  # fmt: skip
        replica = Replica(consumer, proc, log)
        self.replicas.append(replica)

        async def listening() -> str | None:
            found = URL_LINE.search(log.read_text(errors="replace"))
            if found:
                return found.group(1)  # it may have exited since (a crashing job)
            if proc.returncode is not None:
                raise AssertionError(f"{consumer} exited with {proc.returncode}: "
                                     f"{log.read_text()[-2000:]}")  # fmt: skip
            return None

        replica.http = await poll_process(listening, seconds=START_SECONDS,
                                          what=f"{consumer}'s HTTP API")  # fmt: skip
        return replica

    async def close(self) -> None:
        for replica in self.replicas:
            if replica.proc.returncode is None:
                replica.proc.kill()
                await replica.proc.wait()


@contextlib.asynccontextmanager
async def fleet(tmp_path: Path, broker: RedisServer, ledger: RedisServer, stream: str,
                **options: Any) -> AsyncIterator[Fleet]:  # fmt: skip
    """A ``Fleet``, its processes killed on the way out whatever happened."""
    replicas = Fleet(tmp_path, broker, ledger, stream, **options)
    try:
        yield replicas
    finally:
        await replicas.close()


async def fill(
    client: aredis.Redis, stream: str, kind: str, payloads: list[str | None]
) -> list[str]:
    """Add one entry per payload (the source's wire format) in pipelined batches: the ids."""
    ids: list[str] = []
    for start in range(0, len(payloads), 1000):
        pipe = client.pipeline(transaction=False)
        for payload in payloads[start : start + 1000]:
            fields: dict[Any, Any] = {"kind": kind}
            if payload is not None:
                fields["payload"] = payload
            pipe.xadd(stream, fields)
        ids += await pipe.execute()
    return ids


async def runs(client: aredis.Redis, key: str) -> dict[str, int]:
    """A ledger hash: entry id -> runs."""
    got: dict[Any, Any] = await client.hgetall(key)
    return {entry_id: int(n) for entry_id, n in got.items()}


async def reached(probe: Callable[[], Awaitable[bool]], what: str, seconds: float) -> None:
    """Poll ``probe`` until true, within ``seconds``."""

    async def once() -> bool | None:
        return True if await probe() else None

    await poll_process(once, seconds=seconds, what=what)


async def group_pending(client: aredis.Redis, stream: str) -> int:
    summary: Any = await client.xpending(stream, "workers")
    return int(summary["pending"])


async def test_sigterm_finishes_the_jobs_in_flight_and_acknowledges_them(
    tmp_path: Path, redis_server: RedisServer, redis_client: aredis.Redis, stream_name: str
) -> None:
    """SIGTERM to a replica running 4 jobs: they finish, each once, are acknowledged, and
    nothing stays pending for its consumer; it exits 0."""
    ids = await fill(redis_client, stream_name, "sleep", ["1.5"] * 4)
    async with fleet(tmp_path, redis_server, redis_server, stream_name, claim_idle=30) as f:
        replica = await f.start("r1")

        async def all_running() -> bool:
            return len(await runs(redis_client, started_key(stream_name))) == 4

        await reached(all_running, "4 jobs running", seconds=30)
        assert (await consumer_pending(redis_client, stream_name, "workers")) == {"r1": 4}
        replica.proc.send_signal(signal.SIGTERM)
        assert await replica.exited() == 0, replica.log.read_text()[-2000:]
    assert await runs(redis_client, done_key(stream_name)) == dict.fromkeys(ids, 1)
    assert await consumer_pending(redis_client, stream_name, "workers") in ({}, {"r1": 0})
    assert await redis_client.xlen(stream_name) == 0  # acknowledged and deleted


async def test_a_replica_killed_mid_run_loses_nothing_and_its_entries_are_taken_over(
    tmp_path: Path, redis_server: RedisServer, redis_client: aredis.Redis, stream_name: str
) -> None:
    """3 replicas, one SIGKILLed at about 30 % of the jobs: every job runs, the ones run
    twice are at most what it had pending, which the others take within claim_idle + 1 s."""
    claim_idle = 2.0
    done = done_key(stream_name)
    async with fleet(tmp_path, redis_server, redis_server, stream_name,
                     claim_idle=claim_idle) as f:  # fmt: skip
        replicas = await asyncio.gather(*(f.start(f"r{n}") for n in (1, 2, 3)))
        ids = await fill(redis_client, stream_name, "quick", [None] * FLEET_JOBS)

        async def a_third_done() -> bool:
            return await redis_client.hlen(done) >= FLEET_JOBS * 0.3

        await reached(a_third_done, "30 % of the jobs done", seconds=120)
        killed = replicas[1]
        killed.proc.kill()
        killed_at = time.monotonic()
        await killed.proc.wait()
        in_flight = (await consumer_pending(redis_client, stream_name, "workers"))["r2"]

        async def taken_over() -> bool:
            pending = await consumer_pending(redis_client, stream_name, "workers")
            return pending.get("r2", 0) == 0

        await reached(taken_over, "r2's entries taken over", seconds=claim_idle + 30)
        took = time.monotonic() - killed_at

        async def all_done() -> bool:
            return await redis_client.hlen(done) == FLEET_JOBS

        await reached(all_done, "every job done", seconds=300)
        await reached(lambda: _none_pending(redis_client, stream_name), "all acked", seconds=30)
        for survivor in (replicas[0], replicas[2]):
            survivor.proc.send_signal(signal.SIGTERM)
            assert await survivor.exited() == 0
    ran = await runs(redis_client, done)
    assert set(ran) == set(ids)  # nothing lost
    duplicates = sum(ran.values()) - len(ids)
    print(f"jobs={FLEET_JOBS} r2_in_flight={in_flight} duplicates={duplicates} "
          f"taken_over_after={took:.2f}s")  # fmt: skip
    assert in_flight > 0
    assert duplicates <= in_flight
    assert took <= claim_idle + 1.0
    assert await redis_client.xlen(stream_name) == 0


async def _none_pending(client: aredis.Redis, stream: str) -> bool:
    return await group_pending(client, stream) == 0


async def test_a_job_running_four_times_claim_idle_runs_exactly_once(
    tmp_path: Path, redis_server: RedisServer, redis_client: aredis.Redis, stream_name: str
) -> None:
    """With two replicas up and claim_idle 1 s, a 4 s job is never taken over while it
    runs: begun once, ended once."""
    [entry_id] = await fill(redis_client, stream_name, "sleep", ["4"])
    async with fleet(tmp_path, redis_server, redis_server, stream_name, claim_idle=1) as f:
        for name in ("r1", "r2"):
            await f.start(name)

        async def ended() -> bool:
            return bool(await runs(redis_client, done_key(stream_name)))

        await reached(ended, "the long job's end", seconds=60)
        await reached(lambda: _none_pending(redis_client, stream_name), "its ack", seconds=30)
    assert await runs(redis_client, started_key(stream_name)) == {entry_id: 1}
    assert await runs(redis_client, done_key(stream_name)) == {entry_id: 1}


async def test_a_job_that_ends_its_process_runs_max_deliveries_times_then_is_dead_lettered(
    tmp_path: Path, redis_server: RedisServer, redis_client: aredis.Redis, stream_name: str
) -> None:
    """A handler that calls os._exit, with two replicas restarted as they die: it runs
    max_deliveries (3) times, then its entry is on the dead-letter stream, unrun."""
    names = (f"r{n}" for n in range(1, 11))  # at most 10 processes
    async with fleet(tmp_path, redis_server, redis_server, stream_name, claim_idle=1,
                     max_deliveries=3) as f:  # fmt: skip
        up = [await f.start(next(names)), await f.start(next(names))]
        [entry_id] = await fill(redis_client, stream_name, "crash", [None])

        async def dead_lettered() -> bool:
            for n, replica in enumerate(up):
                if replica.proc.returncode is not None:
                    assert replica.proc.returncode == 3
                    up[n] = await f.start(next(names))
            return bool(await redis_client.xlen(f"{stream_name}:dead"))

        await reached(dead_lettered, "the dead letter", seconds=120)
        await reached(lambda: _none_pending(redis_client, stream_name), "its ack", seconds=30)
    assert await runs(redis_client, started_key(stream_name)) == {entry_id: 3}
    [(_, record)] = await dead_letters(redis_client, stream_name)
    assert record["entry_id"] == entry_id
    assert record["kind"] == "crash"
    assert (record["error_type"], record["deliveries"]) == ("BadEntry", "4")
    assert "delivered 4 times" in record["error"]
    assert await redis_client.xlen(stream_name) == 0


async def test_a_broker_outage_loses_nothing_turns_health_red_and_costs_little_cpu(
    tmp_path: Path,
    redis_outage_server: RedisServer,
    redis_server: RedisServer,
    redis_client: aredis.Redis,
    stream_name: str,
) -> None:
    """The broker (append-only) stopped at about 30 % of the jobs and started again on the
    same port: every job runs; ``sources`` is red in ``/health`` during the outage and
    green after; a replica waiting for the broker uses under 10 % of a core."""
    broker = aredis.Redis.from_url(redis_outage_server.url, decode_responses=True)
    done = done_key(stream_name)  # the ledger is the session's server, up all along
    try:
        async with (
            fleet(tmp_path, redis_outage_server, redis_server, stream_name, claim_idle=30) as f,
            aiohttp.ClientSession() as http,
        ):
            replicas = await asyncio.gather(f.start("r1"), f.start("r2"))
            ids = await fill(broker, stream_name, "quick", [None] * OUTAGE_JOBS)

            async def a_third_done() -> bool:
                return await redis_client.hlen(done) >= OUTAGE_JOBS * 0.3

            async def sources_status(want: int) -> bool:
                codes = []
                for replica in replicas:
                    async with http.get(f"{replica.http}/health/sources") as answer:
                        codes.append(answer.status)
                return codes == [want] * len(replicas)

            await reached(a_third_done, "30 % of the jobs done", seconds=120)
            redis_outage_server.stop()
            down_at, cpu_at = time.monotonic(), replicas[0].cpu_seconds()
            await reached(lambda: sources_status(503), "sources red", seconds=30)
            await asyncio.sleep(OUTAGE_AFTER_RED)  # sleep-ok: the outage goes on a while
            cpu = (replicas[0].cpu_seconds() - cpu_at) / (time.monotonic() - down_at)
            redis_outage_server.start()
            await broker.connection_pool.disconnect()  # the test's own, dead connection
            await reached(lambda: sources_status(200), "sources green", seconds=30)

            async def all_done() -> bool:
                return await redis_client.hlen(done) == OUTAGE_JOBS

            # before claim_idle (30 s): no entry waits for a takeover (a read's lost reply)
            await reached(all_done, "every job done", seconds=20)
            await reached(lambda: _none_pending(broker, stream_name), "all acked", seconds=30)
            for replica in replicas:
                replica.proc.send_signal(signal.SIGTERM)
                assert await replica.exited() == 0
        ran = await runs(redis_client, done)
        print(f"outage_cpu={cpu:.3f} duplicates={sum(ran.values()) - len(ids)}")
        assert set(ran) == set(ids)  # nothing lost
        assert cpu < 0.10
        assert await broker.xlen(stream_name) == 0
    finally:
        await broker.aclose()

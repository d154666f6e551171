"""``RedisStreamSource``: jobs from a Redis stream, shared by replicas through a consumer
group, acknowledged only after their outcome (at least once; docs/operations.md)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aredis
import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError

from orchestrator.clock import MonotonicClock
from orchestrator.errors import ConfigError, UnknownJobKind
from orchestrator.job import Job, Origin
from orchestrator.sources.base import Intake
from orchestrator.sources.redis.keeper import OUTAGE, backoff
from orchestrator.sources.redis.settle import Settler
from orchestrator.sources.redis.wire import (
    BadEntry,
    decode_entry,
    default_consumer,
)
from orchestrator.tasks import cancel_and_wait
from orchestrator.types import Clock

__all__ = ["RedisStreamSource"]

log = structlog.get_logger("orchestrator.sources.redis")

Entry = tuple[str, dict[bytes, bytes], int]
"""An entry read: its id, its fields and how many times it was delivered."""


class RedisStreamSource(Settler):
    """Reads jobs from ``stream`` as ``consumer`` of ``group`` (created if missing, with
    the stream), runs them, and settles each entry after its outcome.

    Args:
        url: the broker, ``redis://host:6379/0`` (redis-py's URL forms).
        stream: the stream's key.
        group: the consumer group the replicas share.
        consumer: this process's name in the group (default ``<host>-<pid>``).
        claim_idle: seconds after which another consumer's pending entry is taken over;
            the entries of running jobs are touched every third of it.
        max_deliveries: an entry delivered more often, without an outcome, goes to the
            dead-letter stream without running.
        dead_letter: the dead-letter stream (default ``<stream>:dead``).
        batch: the most entries one read takes.
        block: seconds one read waits for new entries.
        unhealthy_after: seconds out of reach of the broker before health is failing.
        settle_timeout: how long a stop waits for the last outcomes to reach the broker.
        clock: time source (sleeps of the backoff, and the health grace).

    Raises:
        ConfigError: on an empty stream or group, or a non-positive number.
    """

    def __init__(
        self, url: str, *, stream: str, group: str, consumer: str | None = None,
        claim_idle: float = 30.0, max_deliveries: int = 5, dead_letter: str | None = None,
        batch: int = 200, block: float = 1.0, unhealthy_after: float = 5.0,
        settle_timeout: float = 5.0, clock: Clock | None = None,
    ) -> None:  # fmt: skip
        if not stream or not group:
            raise ConfigError("a Redis stream source needs a stream and a group")
        for name, value in (("claim_idle", claim_idle), ("max_deliveries", max_deliveries),
                            ("batch", batch), ("block", block)):  # fmt: skip
            if not value > 0:
                raise ConfigError(f"{name} must be positive, not {value!r}")
        super().__init__(clock or MonotonicClock(), unhealthy_after)
        self.stream, self.group = stream, group
        self.consumer = consumer or default_consumer()
        self.dead_letter = dead_letter or f"{stream}:dead"
        self.name = f"{stream}/{group}"
        self.claim_idle, self.max_deliveries = claim_idle, max_deliveries
        self.batch, self.block, self.settle_timeout = batch, block, settle_timeout
        self.client = aredis.Redis.from_url(url, retry=Retry(NoBackoff(), 0),
                                            socket_connect_timeout=2.0,
                                            socket_timeout=block + 5.0)  # fmt: skip
        self._intake: Intake | None = None
        self._reading = False
        self._stopped = True
        self._room = asyncio.Event()
        self._in_flight: dict[str, tuple[Job, dict[bytes, bytes]]] = {}
        self._acks: list[str] = []
        self._dead: list[tuple[str, dict[str | bytes, str | bytes]]] = []
        self._give_back: list[str] = []
        self._wake = asyncio.Event()
        self._writing = False  # a write of outcomes is in progress: a stop waits for it
        self._settled = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._cursor = "0-0"
        self._recover = True  # own pending entries not known here: taken again first
        self._next_claim = 0.0
        self.round_trips: deque[float] = deque(maxlen=1000)

    def attach(self, intake: Intake) -> None:
        """Feed ``intake`` (``Application.add_source`` calls this)."""
        self._intake = intake

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Create the group if missing (a broker out of reach is retried in the
        background), then read, settle and keep the running entries.

        Raises:
            ConfigError: when no application feeds from this source (``add_source``).
        """
        if self._intake is None:
            raise ConfigError("add the source to an application first (app.add_source)")
        self._reading, self._stopped, self._group_ready = True, False, False
        self._recover = True
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(coro, name=f"source-{self.name}-{what}") for what, coro in
                       (("read", self._read_loop()), ("settle", self._settle_loop()),
                        ("keep", self._keep_loop()))]  # fmt: skip
        self.state = "reading"
        log.info("source_started", stream=self.stream, group=self.group, consumer=self.consumer)

    def stop_reading(self) -> None:
        """Take no more entries: what a read in progress returns is given back."""
        self._reading = False
        if not self._stopped:
            self.state = "draining"
        self._room.set()

    async def stop(self) -> None:
        """Stop reading; wait (at most ``settle_timeout``) until the outcomes known are
        written; give the unfinished entries back to the group; close the client."""
        if self._stopped:
            return
        self.stop_reading()
        self._stopped = True
        await cancel_and_wait(self._tasks[0])  # the reader
        self._give_back += self._in_flight  # unfinished: left pending, never acknowledged
        self._in_flight.clear()
        self._wake.set()
        try:
            async with asyncio.timeout(self.settle_timeout):
                while self._acks or self._dead or self._give_back or self._writing:
                    self._settled.clear()
                    await self._settled.wait()
        except TimeoutError:
            log.warning("source_settle_timeout", stream=self.stream, acks=len(self._acks),
                        dead=len(self._dead), given_back=len(self._give_back))  # fmt: skip
        await cancel_and_wait(self._tasks)
        self._tasks = []
        await self.client.aclose()
        self.state = "stopped"
        log.info("source_stopped", stream=self.stream, consumer=self.consumer)

    # -- reading -------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        assert self._intake is not None
        failures = 0
        while self._reading:
            granted = self._intake.reserve(self.batch)
            if granted == 0:
                self.state = "paused_for_room"
                self.paused_total += 1
                await self._wait_for_room()
                continue
            used = 0
            try:
                if not self._group_ready:
                    await self._create_group()
                entries = await self._fetch(granted)
                self.connected()
                failures = 0
                self.state = "reading" if self._reading else "draining"
                used = self._take(entries)
            except OUTAGE as exc:
                self._recover = True  # a reply lost: entries pending here, unknown
                await self.disconnected(exc)
                failures += 1
                await self.clock.sleep(backoff(failures))
            finally:
                self._intake.release(granted - used)

    async def _wait_for_room(self) -> None:
        """Until a job of ours ends, or briefly when others hold the room (no busy loop)."""
        self._room.clear()
        try:
            async with asyncio.timeout(0.05):
                await self._room.wait()
        except TimeoutError:
            pass

    async def _create_group(self) -> None:
        try:
            await self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
            log.info("source_group_created", stream=self.stream, group=self.group)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def _fetch(self, count: int) -> list[Entry]:
        """Entries idle too long in other consumers first (every ``claim_idle/4``, at most
        1 s apart), else new ones: a read blocks at most until the next claim is due."""
        if self._recover:
            orphans = await self._orphans(count)
            self._recover = bool(orphans)
            if orphans:
                return orphans
        loop = asyncio.get_running_loop()
        if loop.time() >= self._next_claim:
            claimed = await self._claim(count)
            if claimed:
                self._next_claim = loop.time() if len(claimed) == count else self._next_claim
                return claimed
            self._next_claim = loop.time() + min(1.0, self.claim_idle / 4)
        block = max(1, int(min(self.block, self._next_claim - loop.time()) * 1000))  # 0: forever
        started = time.perf_counter()
        reply: Any = await self.client.xreadgroup(self.group, self.consumer, {self.stream: ">"},
                                                  count=count, block=block)  # fmt: skip
        if not reply:
            return []
        self.round_trips.append(time.perf_counter() - started)
        return [(entry_id.decode(), fields, 1) for entry_id, fields in reply[0][1]]

    async def _claim(self, count: int) -> list[Entry]:
        """XAUTOCLAIM of entries idle over ``claim_idle``, with their delivery counts."""
        reply: Any = await self.client.xautoclaim(self.stream, self.group, self.consumer,
                                             int(self.claim_idle * 1000), self._cursor,
                                             count=count)  # fmt: skip
        cursor, entries = reply[0], reply[1]
        self._cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
        if not entries:
            return []
        ids = [entry_id.decode() for entry_id, _ in entries]
        pending: Any = await self.client.xpending_range(
            self.stream, self.group, min=ids[0], max=ids[-1],
            count=len(ids) + len(self._in_flight), consumername=self.consumer,
        )  # fmt: skip
        counts = {p["message_id"].decode(): int(p["times_delivered"]) for p in pending}
        self.claimed_total += len(ids)
        log.info("source_entries_claimed", stream=self.stream, count=len(ids))
        return [(i, fields, counts.get(i, 2)) for i, (_, fields) in zip(ids, entries, strict=True)]

    async def _orphans(self, count: int) -> list[Entry]:
        """This consumer's pending entries that this process does not know of (delivered
        to a former process of the same name, or in a reply an outage lost): claimed
        again, with their delivery counts."""
        known = {*self._in_flight, *self._acks, *self._give_back, *(i for i, _ in self._dead)}
        pending: Any = await self.client.xpending_range(
            self.stream, self.group, min="-", max="+", count=count + len(known),
            consumername=self.consumer,
        )  # fmt: skip
        counts = {p["message_id"].decode(): int(p["times_delivered"]) + 1 for p in pending}
        ids: list[Any] = [i for i in counts if i not in known][:count]
        if not ids:
            return []
        entries: Any = await self.client.xclaim(self.stream, self.group, self.consumer, 0, ids)
        log.info("source_entries_recovered", stream=self.stream, count=len(entries))
        return [(i.decode(), fields, counts[i.decode()]) for i, fields in entries if fields]

    def _take(self, entries: Iterable[Entry]) -> int:
        """Submit each entry (or dead-letter it): the reserved places used."""
        assert self._intake is not None
        used = 0
        for entry_id, fields, deliveries in entries:
            self.delivered_total += 1
            if not self._reading:
                self._give_back.append(entry_id)
                continue
            if deliveries > self.max_deliveries:
                self.deliveries_exceeded_total += 1
                error = BadEntry(f"delivered {deliveries} times without an outcome "
                                 f"(max_deliveries={self.max_deliveries})")  # fmt: skip
                self._dead_letter(entry_id, fields, error, 0, deliveries)
                continue
            try:
                kind, payload = decode_entry(fields)
                origin = Origin(self.stream, entry_id, deliveries)
                job, future = self._intake.submit_reserved(kind, payload, origin)
            except (BadEntry, UnknownJobKind) as exc:
                used += isinstance(exc, UnknownJobKind)  # the intake gave that place back
                self._dead_letter(entry_id, fields, exc, 0, deliveries)
                continue
            used += 1
            self._in_flight[entry_id] = (job, fields)
            future.add_done_callback(functools.partial(self._outcome, entry_id))
        if self._give_back:
            self._wake.set()
        return used

"""Settling a Redis stream source's entries after their outcome: acknowledged and
deleted, dead-lettered, or given back; written in batches, retried through an outage."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from orchestrator.errors import JobFailed
from orchestrator.job import Job
from orchestrator.sources.redis.keeper import OUTAGE, Keeper, backoff
from orchestrator.sources.redis.wire import dead_letter_fields

__all__ = ["Settler"]

log = structlog.get_logger("orchestrator.sources.redis")


class Settler(Keeper):
    """The settling half of the source (a base of ``RedisStreamSource``)."""

    dead_letter: str
    _in_flight: dict[str, tuple[Job, dict[bytes, bytes]]]
    _room: asyncio.Event
    _acks: list[str]
    _dead: list[tuple[str, dict[str | bytes, str | bytes]]]
    _give_back: list[str]
    _wake: asyncio.Event
    _settled: asyncio.Event
    _writing: bool

    def _outcome(self, entry_id: str, future: asyncio.Future[Any]) -> None:
        taken = self._in_flight.pop(entry_id, None)
        self._room.set()
        exc = None if future.cancelled() else future.exception()  # retrieved, always
        if taken is None or future.cancelled():
            return  # stopped meanwhile: given back, never acknowledged unfinished
        if exc is None:
            self._acks.append(entry_id)
            self._wake.set()
        elif isinstance(exc, JobFailed):
            job, fields = taken
            origin = job.origin
            self._dead_letter(entry_id, fields, exc, job.attempt,
                              origin.deliveries if origin is not None else 1)  # fmt: skip
        else:  # NotRunning: the application stopped before it ran; another replica will
            self._give_back.append(entry_id)
            self._wake.set()

    def _dead_letter(self, entry_id: str, fields: dict[bytes, bytes], error: BaseException,
                     attempts: int, deliveries: int) -> None:  # fmt: skip
        record = dead_letter_fields(fields, stream=self.stream, entry_id=entry_id, error=error,
                                    attempts=attempts, deliveries=deliveries,
                                    consumer=self.consumer, now=self.clock.wall())  # fmt: skip
        self._dead.append((entry_id, record))
        log.warning("source_entry_dead_lettered", stream=self.stream, entry_id=entry_id,
                    error_type=record["error_type"], dead_letter=self.dead_letter)  # fmt: skip
        self._wake.set()

    async def _settle_loop(self) -> None:
        failures = 0
        while True:
            if not (self._acks or self._dead or self._give_back):
                self._settled.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            acks, dead, back = self._acks, self._dead, self._give_back
            self._acks, self._dead, self._give_back = [], [], []
            self._writing = True
            try:
                await self._write(acks, dead, back)
                failures = 0
            except OUTAGE as exc:
                self._acks[:0], self._dead[:0], self._give_back[:0] = acks, dead, back
                await self.disconnected(exc)
                failures += 1
                await self.clock.sleep(backoff(failures))
            finally:
                self._writing = False

    async def _write(self, acks: list[str], dead: list[tuple[str, Any]], back: list[str]) -> None:
        """One MULTI: dead letters added, then their entries and the done ones acknowledged
        and deleted (the stream keeps only what is not done); entries given back are made
        idle at once, for another consumer to claim."""
        done = acks + [entry_id for entry_id, _ in dead]
        pipe = self.client.pipeline(transaction=True)
        for _, record in dead:
            pipe.xadd(self.dead_letter, record)
        if done:
            pipe.xack(self.stream, self.group, *done)
            pipe.xdel(self.stream, *done)
        if back:
            pipe.xclaim(self.stream, self.group, self.consumer, 0, list[Any](back),
                        idle=int(self.claim_idle * 1000) + 1000, justid=True)  # fmt: skip
        await pipe.execute()
        self.connected()
        self.acked_total += len(done)
        self.dead_lettered_total += len(dead)
        self.given_back_total += len(back)

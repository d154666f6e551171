"""The demo: job kinds, a connection factory with connect latency and a load generator."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import structlog

from orchestrator.application import Application
from orchestrator.errors import ConfigError, JobFailed, NotRunning, OrchestratorError, QueueFull
from orchestrator.job import Job

__all__ = ["DemoConnectionFactory", "LoadGenerator", "build_demo_app", "demo_app"]

log = structlog.get_logger("orchestrator.demo")


@dataclass(slots=True)
class DemoConnection:
    """A pretend connection to a backend."""

    id: int
    open: bool = True


class DemoConnectionFactory:
    """Connections that take ``connect_latency`` seconds (± jitter) to open."""

    def __init__(self, connect_latency: float = 0.02, rng: random.Random | None = None) -> None:
        self._latency = connect_latency
        self._rng = rng or random.Random()
        self._ids = itertools.count(1)

    async def connect(self) -> DemoConnection:
        await asyncio.sleep(self._latency * self._rng.uniform(0.5, 1.5))
        return DemoConnection(next(self._ids))

    async def close(self, conn: DemoConnection) -> None:
        conn.open = False

    async def ping(self, conn: DemoConnection) -> bool:
        return conn.open


class FlakyError(RuntimeError):
    """The demo's simulated transient failure."""


def build_demo_app(app: Application, rng: random.Random | None = None) -> Application:
    """Register the demo job kinds on ``app``: ``io``, ``cpu`` and ``flaky``."""
    rand = rng or random.Random()

    @app.handler("io", timeout=2.0)
    async def io_job(job: Job) -> dict[str, Any]:
        await asyncio.sleep(rand.uniform(0.005, 0.05))
        return {"job": job.id, "connection": getattr(job.connection, "id", None)}

    @app.handler("cpu", timeout=2.0)
    async def cpu_job(job: Job) -> str:
        digest = hashlib.sha256(str(job.payload).encode())
        for _ in range(200):
            digest = hashlib.sha256(digest.digest())
        return digest.hexdigest()[:16]

    @app.handler("flaky", timeout=2.0, retries=1)
    async def flaky_job(job: Job) -> str:
        await asyncio.sleep(rand.uniform(0.001, 0.01))
        if rand.random() < 0.05:
            raise FlakyError("simulated transient failure")
        return "ok"

    return app


def demo_app() -> Application:
    """The demo: its job kinds over pretend connections, with the library's default settings
    (what ``orchestrator run`` runs without a TARGET, its flags and variables over them)."""
    return build_demo_app(Application(connection_factory=DemoConnectionFactory()))


class LoadGenerator:
    """Submits demo jobs at ``rate`` per second and counts their outcomes.

    Submissions are paced on a schedule and the generator yields to the event loop after
    each one. A generator that falls behind (a busy loop, a rate beyond what the loop can
    do) skips the missed slots instead of catching up in a burst. At most ``max_outstanding``
    submissions wait for their outcome at once; a slot beyond that is counted as ``shed``,
    as a client that gave up would be. Jobs go in with ``submit_nowait`` (no task per job: a
    refusal costs about a microsecond) and every future is followed to its outcome
    (nothing is fire-and-forget), so after ``stop()`` and the application's stop,
    ``outcomes`` accounts for every job.

    Args:
        app: the application jobs are submitted to.
        rate: submissions per second (0: none).
        rng: random source for the job mix.
        max_outstanding: most submissions waiting for their outcome at once.
    """

    MIX = (("io", 0.6), ("cpu", 0.2), ("flaky", 0.2))

    def __init__(
        self,
        app: Application,
        rate: float,
        rng: random.Random | None = None,
        *,
        max_outstanding: int = 256,
    ) -> None:
        if not math.isfinite(rate) or rate < 0:
            raise ConfigError(f"rate must be a finite number >= 0, got {rate!r}")
        self._app = app
        self._rate = rate
        self._rng = rng or random.Random()
        self._max_outstanding = max_outstanding
        self._pending: set[asyncio.Future[Any]] = set()
        self._stopped = asyncio.Event()
        self.outcomes: Counter[str] = Counter()

    async def run(self) -> None:
        """Submit until ``stop()``."""
        if self._rate <= 0:
            await self._stopped.wait()
            return
        kinds = [k for k, _ in self.MIX]
        weights = [w for _, w in self.MIX]
        interval = 1.0 / self._rate
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not self._stopped.is_set():
            if len(self._pending) >= self._max_outstanding:
                self.outcomes["shed"] += 1
            else:
                self._submit(self._rng.choices(kinds, weights)[0])
            now = loop.time()
            next_at = max(next_at + interval, now)  # behind schedule: skip, never burst
            delay = next_at - now
            if delay <= 0:
                await asyncio.sleep(0)  # let everything else run between two submissions
                continue
            try:
                async with asyncio.timeout(delay):
                    await self._stopped.wait()
            except TimeoutError:
                pass

    def _submit(self, kind: str) -> None:
        try:
            future = self._app.submit_nowait(kind, {"n": self._rng.randrange(1000)})
        except OrchestratorError as exc:
            self.outcomes[_outcome(exc)] += 1
            return
        self._pending.add(future)
        future.add_done_callback(self._settled)

    def _settled(self, future: asyncio.Future[Any]) -> None:
        self._pending.discard(future)
        exc = future.exception() if not future.cancelled() else NotRunning("cancelled")
        self.outcomes["done" if exc is None else _outcome(exc)] += 1

    def stop(self) -> None:
        """Stop submitting; jobs already submitted still get their outcome."""
        self._stopped.set()

    async def settle(self) -> None:
        """Wait until every submitted job has an outcome."""
        while self._pending:
            await asyncio.wait(list(self._pending))


def _outcome(exc: BaseException) -> str:
    """The outcome a job's error counts as."""
    if isinstance(exc, QueueFull):
        return "rejected"
    if isinstance(exc, NotRunning):
        return "not_running"
    if isinstance(exc, JobFailed):
        return "failed"
    return "error"

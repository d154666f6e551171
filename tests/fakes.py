"""Small fakes implementing the orchestrator's protocols, and loop helpers for tests."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from orchestrator.application import Application
from orchestrator.clock import FakeClock
from orchestrator.errors import Overloaded
from orchestrator.job import Envelope, Handler, Job, JobSpec

__all__ = [
    "poll_process",
    "reaped",
    "BlockingHandler",
    "FakeConnection",
    "FakeFactory",
    "make_app",
    "make_envelope",
    "settle",
    "standing_queue",
    "until",
]


async def until(predicate: Callable[[], bool], *, turns: int = 1000) -> None:
    """Yield to the loop until ``predicate()`` holds, at most ``turns`` times.

    Raises:
        AssertionError: when the condition still does not hold after ``turns`` yields.
    """
    for _ in range(turns):
        if predicate():
            return
        await asyncio.sleep(0)
    if not predicate():
        raise AssertionError(f"condition not reached after {turns} loop turns")


T = TypeVar("T")


async def poll_process(probe: Callable[[], Awaitable[T | None]], *, seconds: float, what: str) -> T:
    """Await ``probe()`` every 50 ms until it gives a value. Only for a state a real process
    reaches (a subprocess, a terminal): everything in this loop synchronises on events.

    Raises:
        AssertionError: naming ``what`` when ``seconds`` pass first.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (got := await probe()) is None:
        if loop.time() >= deadline:
            raise AssertionError(f"{what}: not reached in {seconds:g} s")
        await asyncio.sleep(0.05)  # sleep-ok: polling a real process, bounded by the deadline
    return got


@contextlib.asynccontextmanager
async def reaped(proc: asyncio.subprocess.Process) -> AsyncIterator[asyncio.subprocess.Process]:
    """``async with reaped(proc):`` kills ``proc`` and waits for it on the way out unless it
    has exited, so that a failing test leaves no process behind."""
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def settle(turns: int = 20) -> None:
    """Yield to the loop ``turns`` times so that ready callbacks and tasks run."""
    for _ in range(turns):
        await asyncio.sleep(0)


@dataclass(slots=True)
class FakeConnection:
    """What ``FakeFactory.connect`` returns."""

    id: int
    open: bool = True


class FakeFactory:
    """A ``ConnectionFactory`` with ``ping``, controllable failures and blocking.

    Attributes:
        fail: when true, ``connect`` raises ``ConnectionRefusedError``.
        ping_ok: what ``ping`` answers for an open connection.
        connect_gate: when set to an event, ``connect`` waits for it first.
        ping_gate: when set to an event, ``ping`` waits for it first.
    """

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.ping_ok = True
        self.connect_gate: asyncio.Event | None = None
        self.ping_gate: asyncio.Event | None = None
        self.connect_calls = 0
        self.ping_calls = 0
        self.opened: list[FakeConnection] = []
        self.closed: list[FakeConnection] = []
        self._ids = itertools.count(1)

    async def connect(self) -> FakeConnection:
        self.connect_calls += 1
        if self.connect_gate is not None:
            await self.connect_gate.wait()
        if self.fail:
            raise ConnectionRefusedError("secret-password@backend refused")
        conn = FakeConnection(next(self._ids))
        self.opened.append(conn)
        return conn

    async def close(self, conn: FakeConnection) -> None:
        conn.open = False
        self.closed.append(conn)

    async def ping(self, conn: FakeConnection) -> bool:
        self.ping_calls += 1
        if self.ping_gate is not None:
            await self.ping_gate.wait()
        return self.ping_ok and conn.open

    @property
    def live(self) -> list[FakeConnection]:
        """Connections opened and not closed yet."""
        return [c for c in self.opened if c.open]


class BlockingHandler:
    """A job handler that records each job and returns its payload once released.

    ``release_job(id)`` lets one job finish; ``release_all()`` lets every current and
    later job finish.
    """

    def __init__(self) -> None:
        self.started: list[Job] = []
        self.finished: list[Job] = []
        self._gates: dict[int, asyncio.Event] = {}
        self._all = False

    async def __call__(self, job: Job) -> Any:
        self.started.append(job)
        if not self._all:
            await self._gates.setdefault(job.id, asyncio.Event()).wait()
        self.finished.append(job)
        return job.payload

    def release_job(self, job_id: int) -> None:
        """Let the job with ``job_id`` finish (now or when it starts)."""
        self._gates.setdefault(job_id, asyncio.Event()).set()

    def release_all(self) -> None:
        """Let every job finish, now and from now on."""
        self._all = True
        for gate in self._gates.values():
            gate.set()

    @property
    def started_ids(self) -> list[int]:
        """Ids of the jobs started so far, in order."""
        return [job.id for job in self.started]


async def _noop(job: Job) -> Any:
    return job.payload


def make_envelope(
    clock: FakeClock,
    job_id: int = 1,
    *,
    kind: str = "k",
    handler: Handler = _noop,
    timeout: float | None = None,
    retries: int = 0,
    payload: Any = None,
) -> Envelope:
    """An envelope as ``Application.submit`` builds it, with a fresh future."""
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    spec = JobSpec(kind, handler, timeout, retries)
    return Envelope(spec, Job(job_id, kind, payload), future, clock.now())


def make_app(
    clock: FakeClock | None = None,
    factory: FakeFactory | None = None,
    *,
    http: bool = False,
    **settings: Any,
) -> Application:
    """An application with an ``echo`` handler returning the payload.

    Args:
        clock: its clock (a new ``FakeClock`` when None).
        factory: its connection factory (no pool when None).
        http: serve the HTTP API on 127.0.0.1, on a free port.
        settings: any other setting.
    """
    if http:
        settings = {"enable_http": True, "http_port": 0, "http_host": "127.0.0.1", **settings}
    app = Application(clock=clock or FakeClock(), connection_factory=factory, **settings)

    @app.handler("echo")
    async def echo(job: Job) -> object:
        return job.payload

    return app


async def standing_queue(app: Application, clock: FakeClock) -> Callable[[], Awaitable[None]]:
    """Make ``app``'s queue stand over its target (a one-worker application): six ``hold``
    jobs, four released 60 ms apart, each having waited over 5 ms; then one refusal.

    Returns:
        What lets every job finish and waits for their outcomes.
    """
    hold = BlockingHandler()
    app.handler("hold", timeout=None)(hold)
    futures = [app.submit_nowait("hold", n) for n in range(6)]
    for n in range(4):
        await until(lambda n=n: len(hold.started) == n + 1)  # type: ignore[misc]
        clock.advance(0.06)
        hold.release_job(hold.started[n].id)
    await until(lambda: app.router.standing)
    with pytest.raises(Overloaded):
        app.submit_nowait("hold", 99)

    async def finish() -> None:
        hold.release_all()
        await asyncio.gather(*futures)

    return finish

"""Jobs, handler specifications and the envelope that carries a job to a worker."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Envelope", "Handler", "Job", "JobSpec", "Origin"]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a job from a job source came from: the stream, the entry's id there and how
    many times the broker has delivered it (1 the first time)."""

    stream: str
    entry_id: str
    deliveries: int


@dataclass(slots=True)
class Job:
    """What a handler receives: identity, payload, attempt number, its connection, and
    its origin (None for a job given to ``submit()``)."""

    id: int
    kind: str
    payload: Any
    attempt: int = 1
    connection: Any = None
    origin: Origin | None = None


Handler = Callable[[Job], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A registered job kind: its handler, per-attempt timeout and retry count."""

    kind: str
    handler: Handler
    timeout: float | None
    retries: int


@dataclass(slots=True)
class Envelope:
    """A submitted job in transit: the spec, the job and the submitter's future."""

    spec: JobSpec
    job: Job
    future: asyncio.Future[Any]
    enqueued_at: float

    def resolve(self, result: Any) -> None:
        """Deliver a result unless the submitter already has an outcome."""
        if not self.future.done():
            self.future.set_result(result)

    def reject(self, exc: BaseException) -> None:
        """Deliver an error unless the submitter already has an outcome."""
        if not self.future.done():
            self.future.set_exception(exc)

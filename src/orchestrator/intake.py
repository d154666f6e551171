"""Where jobs enter an application: ``submit_nowait`` from code, and the reserved places
job sources fill (``orchestrator.sources.Intake``)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from orchestrator.components.limit import InProgressGate
from orchestrator.components.registry import Registry
from orchestrator.components.router import Router
from orchestrator.in_flight import InFlight
from orchestrator.job import Envelope, Job, JobSpec, Origin
from orchestrator.types import Clock

__all__ = ["JobIntake"]


class JobIntake:
    """Builds each job and hands it to the router, counted in flight.

    A source reserves room before it reads (:meth:`reserve`): places in the router's
    queue, at most enough to fill every place of the in-progress limit and to queue as
    many again behind them (so a worker that finishes finds its next job without a round
    trip to the broker). A reserved place is never refused.
    """

    def __init__(
        self, router: Router, registry: Registry, in_flight: InFlight, gate: InProgressGate,
        clock: Clock,
    ) -> None:  # fmt: skip
        self._router, self._registry, self._in_flight = router, registry, in_flight
        self._gate, self._clock = gate, clock
        self._ids = itertools.count(1)

    def accept(self, spec: JobSpec, payload: Any) -> asyncio.Future[Any]:
        """Queue a job ``Application.submit_nowait`` found room for: its future. (The
        refusals are raised there, in the caller's frame: one frame less to unwind.)"""
        return self._enter(spec, payload, None, self._router.put).future

    def reserve(self, wanted: int) -> int:
        """Reserve up to ``wanted`` places: the number granted."""
        room = 2 * self._gate.limit - self._in_flight.count - self._router.reserved
        return self._router.reserve(min(wanted, room)) if room > 0 else 0

    def release(self, places: int) -> None:
        """Give back reserved places no job filled."""
        self._router.release(places)

    def submit_reserved(
        self, kind: str, payload: Any, origin: Origin
    ) -> tuple[Job, asyncio.Future[Any]]:
        """Fill a reserved place (``UnknownJobKind``: the place is given back)."""
        try:
            spec = self._registry.lookup(kind)
        except LookupError:
            self._router.release(1)
            raise
        env = self._enter(spec, payload, origin, self._router.put_reserved)
        return env.job, env.future

    def _enter(self, spec: JobSpec, payload: Any, origin: Origin | None,
               put: Callable[[Envelope], None]) -> Envelope:  # fmt: skip
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        env = Envelope(spec, Job(next(self._ids), spec.kind, payload, origin=origin), future,
                       self._clock.now())  # fmt: skip
        put(env)
        self._registry.record_submitted(spec.kind)
        self._in_flight.track(future)
        return env

"""Lifecycle: the application's state machine and supervisor.

It starts components in order (rolling back on failure), stops them in reverse, and
restarts worker tasks that die unexpectedly, with exponential backoff.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Protocol

import structlog

from orchestrator.clock import utc_iso
from orchestrator.health import ComponentHealth
from orchestrator.state import State
from orchestrator.stats import LifecycleStats
from orchestrator.tasks import cancel_and_wait
from orchestrator.types import Clock

__all__ = ["Lifecycle", "Stage", "State", "Steps"]

log = structlog.get_logger("orchestrator.lifecycle")


class Stage(Protocol):
    """What the lifecycle starts in order and stops in reverse: a component, the monitors, the
    HTTP server."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


Steps = Sequence[tuple[str, Stage]]
"""Named stages, in start order."""


class Respawner(Protocol):
    """What the supervisor restarts (the worker pool)."""

    def respawn(self, worker_id: int) -> None: ...


class Lifecycle:
    """State machine, ordered start/stop, and restart supervision.

    Args:
        clock: time source for uptime, transitions and backoff sleeps.
        restart_backoff: delay before the first restart; doubles per recent death.
        restart_backoff_max: the longest delay.
        backoff_window: seconds after which a death no longer lengthens the backoff.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        restart_backoff: float = 0.1,
        restart_backoff_max: float = 5.0,
        backoff_window: float = 60.0,
    ) -> None:
        self._clock = clock
        self._backoff = restart_backoff
        self._backoff_max = restart_backoff_max
        self._window = backoff_window
        self._state = State.CREATED
        self._transitions: deque[tuple[State, float]] = deque(maxlen=20)
        self._transitions.append((State.CREATED, clock.wall()))
        self._started_mono: float | None = None
        self._started_wall: float | None = None
        self._target: Respawner | None = None
        self._supervising = False
        self._recent_deaths: deque[float] = deque()
        self._restarts: set[asyncio.Task[None]] = set()
        self.restarts_total = 0
        self.running = False

    @property
    def state(self) -> State:
        """The current state."""
        return self._state

    @property
    def started_at(self) -> float | None:
        """Epoch seconds of the last entry into ``running``."""
        return self._started_wall

    def uptime(self) -> float:
        """Seconds since the application last became running (0 before)."""
        return 0.0 if self._started_mono is None else self._clock.now() - self._started_mono

    def transition(self, state: State) -> None:
        """Enter ``state`` and record when."""
        if state is self._state:
            return
        previous, self._state = self._state, state
        self.running = state is State.RUNNING  # read by every submission: a plain attribute
        self._transitions.append((state, self._clock.wall()))
        if state is State.RUNNING:
            self._started_mono, self._started_wall = self._clock.now(), self._clock.wall()
        log.info("application_state_changed", state=state.value, previous=previous.value)

    def supervise(self, target: Respawner) -> None:
        """Restart ``target``'s dead workers from now on."""
        self._target = target

    def report_death(self, worker_id: int, exc: BaseException) -> None:
        """A worker died: schedule its restart after the backoff."""
        if not self._supervising or self._target is None:
            return
        now = self._clock.now()
        while self._recent_deaths and now - self._recent_deaths[0] > self._window:
            self._recent_deaths.popleft()
        delay = min(self._backoff * 2 ** len(self._recent_deaths), self._backoff_max)
        self._recent_deaths.append(now)
        task = asyncio.get_running_loop().create_task(self._restart(worker_id, delay))
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def _restart(self, worker_id: int, delay: float) -> None:
        await self._clock.sleep(delay)
        if self._supervising and self._target is not None:
            self.restarts_total += 1
            self._target.respawn(worker_id)
            log.info("worker_restart_scheduled", worker_id=worker_id, delay_seconds=delay)

    async def start_all(self, steps: Steps, *, then: Steps = ()) -> None:
        """Start the supervisor, then each component of ``steps`` in order.

        ``then`` are the parts that serve a running application (the monitors, the HTTP
        server): the state enters ``running`` after the components and they start in order
        after it. Without them, entering ``running`` is the caller's. The lifecycle logs the
        components' starts and stops and any failure to stop; the parts of ``then`` log their
        own starts and stops.

        If a step fails, everything already started is stopped in reverse, the state
        becomes ``failed`` and the error is re-raised.
        """
        self.transition(State.STARTING)
        await self.start()
        started: list[tuple[str, Stage]] = []
        for name, component in steps:
            try:
                await component.start()
            except BaseException as exc:
                log.error("component_start_failed", component=name, error=repr(exc))
                await self._roll_back(started, [])
                raise
            started.append((name, component))
            log.debug("component_started", component=name)
        if not then:
            return
        self.transition(State.RUNNING)
        serving: list[tuple[str, Stage]] = []
        for name, part in then:
            try:
                await part.start()
            except BaseException:
                self.transition(State.STOPPING)
                await self._roll_back(started, serving)
                raise
            serving.append((name, part))

    async def _roll_back(self, steps: Steps, then: Steps) -> None:
        """Stop what a failed start had started, in reverse; errors are logged, not raised."""
        await self._stop_each(reversed(then), quiet=True)
        await self._stop_each(reversed(steps))
        await self.stop()
        self.transition(State.FAILED)

    async def stop_all(self, steps: Steps, *, then: Steps = ()) -> None:
        """Stop each part of ``then`` in reverse, each component in reverse, then the
        supervisor (``steps`` and ``then`` as given to :meth:`start_all`).

        Raises:
            ExceptionGroup: of every error met, after every part was asked to stop.
        """
        errors = await self._stop_each(reversed(then), quiet=True)
        errors += await self._stop_each(reversed(steps))
        await self.stop()
        if errors:
            raise ExceptionGroup("errors while stopping components", errors)

    async def _stop_each(
        self, steps: Iterable[tuple[str, Stage]], *, quiet: bool = False
    ) -> list[Exception]:
        errors: list[Exception] = []
        for name, component in steps:
            try:
                await component.stop()
            except Exception as exc:
                log.error("component_stop_failed", component=name, error=repr(exc))
                errors.append(exc)
            else:
                if not quiet:
                    log.debug("component_stopped", component=name)
        return errors

    async def start(self) -> None:
        """Begin supervising."""
        self._supervising = True

    async def stop(self) -> None:
        """Stop supervising and cancel pending restarts."""
        self._supervising = False
        await cancel_and_wait(list(self._restarts))

    def stats(self) -> LifecycleStats:
        """State, uptime, restarts and the recent transitions."""
        return {
            "state": self._state.value,
            "started_at": utc_iso(self._started_wall) if self._started_wall else None,
            "uptime_seconds": self.uptime(),
            "restarts_total": self.restarts_total,
            "pending_restarts": len(self._restarts),
            "transitions": [{"state": s.value, "at": utc_iso(t)} for s, t in self._transitions],
        }

    def health(self) -> ComponentHealth:
        """Healthy only while running."""
        if self._state is not State.RUNNING:
            return ComponentHealth.failing(f"application is {self._state.value}")
        return ComponentHealth.ok()

"""Application: composes the six components and runs jobs through them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import structlog

from orchestrator.clock import MonotonicClock
from orchestrator.components.lifecycle import Stage, State
from orchestrator.components.registry import Registry
from orchestrator.composition import compose
from orchestrator.config import CoreSettings, HttpSettings, split_settings
from orchestrator.errors import HttpServerError, NotRunning, StartFailed
from orchestrator.events import EventBus
from orchestrator.health import HealthReport, aggregate
from orchestrator.http_stage import HttpStage
from orchestrator.in_flight import InFlight
from orchestrator.intake import JobIntake
from orchestrator.introspection import application_stats, effective_config, jobs_report
from orchestrator.job import Handler
from orchestrator.job_events import JobEvents
from orchestrator.log import configure_logging_unless_configured
from orchestrator.sources.base import Source, SourceSet
from orchestrator.types import Clock, Component, ConnectionFactory, StatsDict

if TYPE_CHECKING:
    from orchestrator.http.server import HttpServer

__all__ = ["Application"]

log = structlog.get_logger("orchestrator.application")

DEFAULT_TIMEOUT = 30.0

COMPONENTS = ("registry", "pool", "router", "workers", "lifecycle", "recycler")
START_ORDER = ("registry", "pool", "router", "workers", "recycler")
"""The components the lifecycle starts, in order, after its own supervisor."""


class Application:
    """Runs submitted jobs through registry → router → workers (with pooled connections).

    Args:
        settings: core settings.
        http: HTTP API settings (``enable_http=True`` serves it once everything runs).
        connection_factory: gives each job a pooled connection when set.
        clock: time source (inject ``FakeClock`` in tests).
        overrides: any field of ``CoreSettings`` or ``HttpSettings`` by name
            (``workers=8``, ``enable_http=True``, ``http_port=0``...).

    Raises:
        ConfigError: on an unknown or invalid setting, before anything starts.
    """

    def __init__(
        self,
        settings: CoreSettings | None = None,
        *,
        http: HttpSettings | None = None,
        connection_factory: ConnectionFactory | None = None,
        clock: Clock | None = None,
        sources: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> None:
        core, http_overrides = split_settings(overrides)
        self.settings = (settings or CoreSettings()).replace(**core)
        self.http_settings = (http or HttpSettings()).replace(**http_overrides)
        self.sources = {**dict.fromkeys(overrides, "keyword"), **(sources or {})}
        self.clock: Clock = clock or MonotonicClock()
        self._connection_factory = connection_factory
        self.in_flight = InFlight()
        self.job_sources = SourceSet()
        self._stopping: asyncio.Task[None] | None = None
        self._compose(None)

    def _compose(self, registry: Registry | None) -> None:
        """Build the components (the event bus, the intake and the HTTP stage too) from the
        settings; the sources added are attached to the new intake, and the one the
        ``source`` setting names follows it."""
        self.events = EventBus(max_subscribers=self.http_settings.max_event_subscribers)
        self.jobs = JobEvents(self.events.publish, self.clock.wall)
        parts = compose(self.settings, self.clock, self._connection_factory,
                        events=self.events.publish, jobs=self.jobs, health=self.health,
                        registry=registry)  # fmt: skip
        self.registry, self.pool, self.router = parts.registry, parts.pool, parts.router
        self.lifecycle, self.monitors = parts.lifecycle, parts.monitors
        self.workers, self.recycler = parts.workers, parts.recycler
        self.intake = JobIntake(self.router, self.registry, self.in_flight,
                                self.workers.limit.gate, self.clock)  # fmt: skip
        self.job_sources.attach(self.intake, self.settings.source)  # and --source's source
        self._http = HttpStage(self, self.http_settings, self.clock)

    def reconfigure(
        self, settings: CoreSettings, http: HttpSettings, sources: Mapping[str, str]
    ) -> None:
        """Replace the settings (and where each came from) before the first start, as
        ``orchestrator run`` does with its flags and variables over what a module set; the
        components are built again, keeping the handlers, connection factory and clock.

        Raises:
            NotRunning: the application has already been started.
        """
        if self.lifecycle.state is not State.CREATED:
            raise NotRunning(f"cannot reconfigure: the application is {self.state.value}")
        self.settings, self.http_settings, self.sources = settings, http, dict(sources)
        self._compose(self.registry)

    @property
    def http_server(self) -> HttpServer:
        """The HTTP server.

        Raises:
            NotRunning: when HTTP is disabled (``enable_http=False``).
        """
        if self._http.server is None:
            raise NotRunning("HTTP is disabled (enable_http=False)")
        return self._http.server

    @property
    def http_port(self) -> int | None:
        """The bound HTTP port, or None when HTTP is disabled, failed or stopped."""
        return self._http.port

    @property
    def http_url(self) -> str | None:
        """``http://host:port`` of the HTTP API, or None."""
        return self._http.url

    # -- composition -----------------------------------------------------------------

    def components(self) -> dict[str, Component]:
        """The six components by name (each is its attribute), in health-report order, and
        ``sources`` (``job_sources``) once a source is added."""
        parts: dict[str, Component] = {name: getattr(self, name) for name in COMPONENTS}
        if len(self.job_sources):
            parts["sources"] = self.job_sources
        return parts

    def add_source(self, source: Source) -> None:
        """Take jobs from ``source`` too (several are allowed): it starts reading once the
        workers run, before the HTTP server starts, and stops reading as the drain begins.

        Raises:
            NotRunning: when the application is not ``created`` or ``stopped``.
            ConfigError: when a source of the same name is already added.
        """
        if self.lifecycle.state not in (State.CREATED, State.STOPPED, State.FAILED):
            raise NotRunning(f"cannot add a source: the application is {self.state.value}")
        self.job_sources.add(source, self.intake)

    def _start_order(self) -> list[tuple[str, Stage]]:
        return [(name, getattr(self, name)) for name in START_ORDER]

    def _serving(self) -> list[tuple[str, Stage]]:
        """What starts once the components run, in order: the monitors, the sources, HTTP."""
        return [("monitors", self.monitors), ("sources", self.job_sources), ("http", self._http)]

    @property
    def state(self) -> State:
        """The lifecycle state."""
        return self.lifecycle.state

    # -- handlers and jobs ---------------------------------------------------------------

    def handler(
        self, kind: str, *, timeout: float | None = DEFAULT_TIMEOUT, retries: int = 0
    ) -> Callable[[Handler], Handler]:
        """Decorator registering an ``async def handler(job)`` for ``kind``.

        Raises:
            ConfigError: on an empty kind, a non-positive timeout or negative retries.
        """

        def register(fn: Handler) -> Handler:
            self.registry.register(kind, fn, timeout=timeout, retries=retries)
            return fn

        return register

    def submit_nowait(self, kind: str, payload: Any = None) -> asyncio.Future[Any]:
        """Submit a job without waiting, as ``Queue.put_nowait`` does: the future of its
        outcome, or the refusal raised at once. For producers that submit in bulk: no task
        per job, and a refusal costs about a microsecond.

        Raises:
            NotRunning: the application is not running.
            UnknownJobKind: no handler for ``kind``.
            QueueFull: the router is at capacity.
            Overloaded: the queue is standing over its target (a ``QueueFull``).

        The future's outcome is the handler's result, ``JobFailed``, ``JobTimeout``, or
        ``NotRunning`` when the application stops before the job ran.
        """
        if not self.lifecycle.running:
            raise NotRunning(f"the application is {self.lifecycle.state.value}")
        spec = self.registry.lookup(kind)
        refusal = self.router.refusal()
        if refusal is not None:
            self.registry.record_rejected(kind)
            raise refusal
        return self.intake.accept(spec, payload)

    async def submit(self, kind: str, payload: Any = None) -> Any:
        """Run a job and return its handler's result.

        Raises:
            NotRunning: the application is not running (or stopped before the job ran).
            UnknownJobKind: no handler for ``kind``.
            QueueFull: the router is at capacity (``Overloaded``: its queue is standing).
            JobFailed: the handler raised on its last attempt (the error is ``__cause__``).
            JobTimeout: the last attempt timed out.
        """
        return await self.submit_nowait(kind, payload)

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start every component in order; on failure, roll back and re-raise.

        Raises:
            NotRunning: when already started.
            StartFailed: a component failed to start (its error is ``__cause__``).
            HttpServerError: the HTTP server could not bind and ``http_required`` is set.
        """
        if self.lifecycle.state not in (State.CREATED, State.STOPPED, State.FAILED):
            raise NotRunning(f"cannot start: the application is {self.lifecycle.state.value}")
        configure_logging_unless_configured()
        self.in_flight.rearm()
        self.events.reopen()
        try:
            await self.lifecycle.start_all(self._start_order(), then=self._serving())
        except HttpServerError:
            raise
        except Exception as exc:
            raise StartFailed(f"start failed: {type(exc).__name__}: {exc}") from exc
        self.monitors.apply_gc_policy()
        log.info("application_started", name=self.settings.name, workers=self.settings.workers,
                 http_url=self.http_url)  # fmt: skip

    async def stop(self, timeout: float = 10.0) -> None:
        """Drain, then stop: intake closes and readiness turns 503 at once; queued and running
        jobs get ``timeout`` seconds to finish while the HTTP server keeps answering for at
        least ``drain_delay``; then the HTTP server stops, then the components in reverse.

        Jobs still queued or running at the deadline are failed with ``NotRunning``, so
        every submitter gets an outcome. Idempotent; concurrent calls share one stop.
        """
        task = self._stopping
        if task is None:
            if self.lifecycle.state not in (State.RUNNING, State.DRAINING):
                return
            task = self._stopping = asyncio.ensure_future(self._stop(timeout))
        try:
            await asyncio.shield(task)
        finally:
            if task.done() and self._stopping is task:
                self._stopping = None

    async def _stop(self, timeout: float) -> None:
        self.lifecycle.transition(State.DRAINING)
        self.router.stop_intake()
        self.job_sources.stop_reading()  # in-flight jobs go on, and are settled with the broker
        delay = self._http.drain()
        log.info("draining", drain_delay_seconds=delay, jobs_in_flight=self.in_flight.count)
        self.events.publish("draining", {"drain_delay_seconds": delay})
        self.events.close_all()  # streams end now: none holds the HTTP stop (2x its timeout)
        # readiness is 503 while the server still answers, for load balancers
        await self.in_flight.drain(timeout, *([self.clock.sleep(delay)] if delay > 0 else []))
        self.lifecycle.transition(State.STOPPING)
        try:
            await self.lifecycle.stop_all(self._start_order(), then=self._serving())
        finally:
            self.lifecycle.transition(State.STOPPED)
            log.info("application_stopped", jobs_completed=self.workers.jobs_completed_total,
                     jobs_failed=self.workers.jobs_failed_total)  # fmt: skip

    def hurry(self) -> None:
        """Cut a stop in progress short: skip the rest of the drain delay and job wait (jobs
        still queued or running are then failed with ``NotRunning`` as usual)."""
        self.in_flight.hurry()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- observability ----------------------------------------------------------------

    def get_stats(self) -> StatsDict:
        """Every component's stats under its name, plus an ``application`` section."""
        stats: StatsDict = {"application": application_stats(self)}
        for name, component in self.components().items():
            stats[name] = component.stats()
        stats["http"] = self._http.stats()
        return stats

    def debug_jobs(self, limit: int) -> dict[str, Any]:
        """Jobs in flight, recent failures and the slowest jobs (``/debug/jobs``)."""
        return jobs_report(self, limit)

    def debug_config(self) -> dict[str, Any]:
        """The settings in force and their sources, secrets redacted (``/debug/config``)."""
        return effective_config(self)

    def health(self) -> HealthReport:
        """Every component's health and since when (a check that raises is unhealthy)."""
        checks = [(name, c.health) for name, c in self.components().items()]
        return aggregate(checks, self.clock.wall(), self.monitors.health_watch.since)

    def is_healthy(self) -> bool:
        """Whether every component is healthy; never raises."""
        try:
            return self.health().healthy
        except Exception:
            return False

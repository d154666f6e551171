"""Application: composes the six components and runs jobs through them."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import structlog

from orchestrator.clock import MonotonicClock, utc_iso
from orchestrator.components import (
    ConnectionPool,
    Lifecycle,
    Recycler,
    Registry,
    Router,
    State,
    WorkerPool,
)
from orchestrator.config import CoreSettings, HttpSettings, split_settings
from orchestrator.errors import HttpServerError, NotRunning, QueueFull, StartFailed
from orchestrator.events import EventBus
from orchestrator.gc_pauses import GcPauses, GcPolicy
from orchestrator.health import HealthReport, aggregate
from orchestrator.health_watch import HealthWatcher
from orchestrator.introspection import effective_config, jobs_report
from orchestrator.job import Envelope, Handler, Job
from orchestrator.job_events import JobEvents
from orchestrator.log import configure_logging_unless_configured
from orchestrator.log_level import LEVEL
from orchestrator.loop_lag import LoopLagMonitor
from orchestrator.stats import ApplicationStats
from orchestrator.types import Clock, Component, ConnectionFactory, StatsDict
from orchestrator.version import __version__
from orchestrator.watchdog import LoopWatchdog

if TYPE_CHECKING:
    from orchestrator.http.server import HttpServer

__all__ = ["Application"]

log = structlog.get_logger("orchestrator.application")

DEFAULT_TIMEOUT = 30.0


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
        s = self.settings
        self.clock: Clock = clock or MonotonicClock()
        self.events = EventBus(max_subscribers=self.http_settings.max_event_subscribers)
        self.jobs = JobEvents(self.events.publish, self.clock.wall)
        self.registry = Registry()
        self.pool = ConnectionPool(
            connection_factory, self.clock, min_size=s.pool_min_size,
            max_size=s.pool_max_size, acquire_timeout=s.pool_acquire_timeout,
            max_items=s.stats_max_items,
        )  # fmt: skip
        self.router = Router(s.queue_size, self.clock, saturation_grace=s.saturation_grace)
        self.lifecycle = Lifecycle(self.clock, restart_backoff=s.restart_backoff)
        self.workers = WorkerPool(
            self.router, self.registry, self.pool, self.clock,
            count=s.workers, on_death=self.lifecycle.report_death, max_items=s.stats_max_items,
            stuck_grace=s.handler_stuck_grace, jobs=self.jobs, events=self.events.publish,
        )  # fmt: skip
        self.lifecycle.supervise(self.workers)
        self.recycler = Recycler(
            self.workers, self.pool, self.clock, interval=s.recycle_interval,
            max_jobs_per_worker=s.max_jobs_per_worker, max_worker_age=s.max_worker_age,
            max_connection_uses=s.max_connection_uses, max_connection_age=s.max_connection_age,
            connection_idle_timeout=s.connection_idle_timeout, events=self.events.publish,
        )  # fmt: skip
        self._job_ids = itertools.count(1)
        self._inflight = 0
        self._drained = asyncio.Event()
        self._drained.set()
        self._stopping: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()
        self._http: HttpServer | None = None
        if self.http_settings.enable_http:  # aiohttp is imported only when HTTP is on
            from orchestrator.http.server import HttpServer

            self._http = HttpServer(self, self.http_settings, clock=self.clock)
        self.loop_lag = LoopLagMonitor()
        self.gc_pauses = GcPauses()
        self.gc_policy = GcPolicy(self.gc_pauses, freeze=s.gc_freeze,
                                  threshold0=s.gc_gen0_threshold)  # fmt: skip
        self.watchdog = (
            LoopWatchdog(s.blocked_loop_threshold, events=self.events.publish)
            if s.blocked_loop_threshold is not None
            else None
        )
        self.health_watch = HealthWatcher(
            self._health_now, self.clock, events=self.events.publish, tick=self.jobs.flush,
            stopping=lambda: self.lifecycle.state in (State.DRAINING, State.STOPPING),
        )  # fmt: skip

    @property
    def http_server(self) -> HttpServer:
        """The HTTP server.

        Raises:
            NotRunning: when HTTP is disabled (``enable_http=False``).
        """
        if self._http is None:
            raise NotRunning("HTTP is disabled (enable_http=False)")
        return self._http

    @property
    def http_port(self) -> int | None:
        """The bound HTTP port, or None when HTTP is disabled, failed or stopped."""
        return self._http.port if self._http is not None else None

    @property
    def http_url(self) -> str | None:
        """``http://host:port`` of the HTTP API, or None."""
        return self._http.url if self._http is not None else None

    # -- composition -----------------------------------------------------------------

    def components(self) -> dict[str, Component]:
        """The six components by name, in health-report order."""
        return {
            "registry": self.registry,
            "pool": self.pool,
            "router": self.router,
            "workers": self.workers,
            "lifecycle": self.lifecycle,
            "recycler": self.recycler,
        }

    def _start_order(self) -> list[tuple[str, Component]]:
        c = self.components()
        return [(n, c[n]) for n in ("registry", "pool", "router", "workers", "recycler")]

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

    async def submit(self, kind: str, payload: Any = None) -> Any:
        """Run a job and return its handler's result.

        Raises:
            NotRunning: the application is not running (or stopped before the job ran).
            UnknownJobKind: no handler for ``kind``.
            QueueFull: the router is at capacity.
            JobFailed: the handler raised on its last attempt (the error is ``__cause__``).
            JobTimeout: the last attempt timed out.
        """
        if self.lifecycle.state is not State.RUNNING:
            raise NotRunning(f"the application is {self.lifecycle.state.value}")
        spec = self.registry.lookup(kind)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        env = Envelope(spec, Job(next(self._job_ids), kind, payload), future, self.clock.now())
        try:
            self.router.put(env)
        except QueueFull as exc:
            self.registry.record_rejected(kind)
            self.jobs.rejected(env.job.id, kind, exc)
            raise
        self.registry.record_submitted(kind)
        self._inflight += 1
        if self._inflight == 1:
            self._drained.clear()
        future.add_done_callback(self._job_done)
        return await future

    def _job_done(self, _: asyncio.Future[Any]) -> None:
        self._inflight -= 1
        if self._inflight == 0:
            self._drained.set()

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
        self._hurry.clear()
        try:
            await self.lifecycle.start_all(self._start_order())
        except Exception as exc:
            raise StartFailed(f"start failed: {type(exc).__name__}: {exc}") from exc
        self.lifecycle.transition(State.RUNNING)
        self._start_monitors()
        if self._http is not None:
            try:
                await self._http.start()
            except HttpServerError:
                if self.http_settings.http_required:
                    self.lifecycle.transition(State.STOPPING)
                    await self._stop_monitors()
                    try:
                        await self.lifecycle.stop_all(self._start_order())
                    finally:
                        self.lifecycle.transition(State.FAILED)
                    raise
        self.gc_policy.apply()  # see gc_pauses.py: the collections' pauses
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
        http = self._http
        delay = 0.0
        if http is not None and http.status == "running":
            delay = self.http_settings.drain_delay
            http.drain(seconds=delay)
        log.info("draining", drain_delay_seconds=delay, jobs_in_flight=self._inflight)
        self.events.publish("draining", {"drain_delay_seconds": delay})
        self.events.close_all()  # event streams end cleanly rather than hold the HTTP stop
        waits = [self._wait_for_jobs(timeout)]
        if delay > 0:  # readiness is 503 while the server still answers, for load balancers
            waits.append(self.clock.sleep(delay))
        await self._unless_hurried(asyncio.gather(*waits))
        self.lifecycle.transition(State.STOPPING)
        try:
            try:
                if http is not None:
                    await http.stop()
            finally:
                await self._stop_monitors()
                await self.lifecycle.stop_all(self._start_order())
        finally:
            self.gc_policy.undo()
            self.lifecycle.transition(State.STOPPED)
            log.info("application_stopped", jobs_completed=self.workers.jobs_completed_total,
                     jobs_failed=self.workers.jobs_failed_total)  # fmt: skip

    def _start_monitors(self) -> None:
        self.gc_pauses.install()
        self.loop_lag.start()
        self.health_watch.start()
        if self.watchdog is not None:
            self.watchdog.start()

    async def _stop_monitors(self) -> None:
        if self.watchdog is not None:
            self.watchdog.stop()
        await self.health_watch.stop()
        self.jobs.flush()
        await self.loop_lag.stop()
        self.gc_pauses.uninstall()

    async def _wait_for_jobs(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self._drained.wait()
        except TimeoutError:
            log.warning(
                "stop_timeout_expired", timeout_seconds=timeout, jobs_in_flight=self._inflight
            )

    async def _unless_hurried(self, work: Awaitable[object]) -> None:
        """Await ``work`` unless ``hurry()`` is called first (then cancel it)."""
        main = asyncio.ensure_future(work)
        hurried = asyncio.ensure_future(self._hurry.wait())
        await asyncio.wait({main, hurried}, return_when=asyncio.FIRST_COMPLETED)
        for task in (main, hurried):
            task.cancel()
        await asyncio.gather(main, hurried, return_exceptions=True)
        if self._hurry.is_set():
            log.warning("drain_cut_short", jobs_in_flight=self._inflight)

    def hurry(self) -> None:
        """Cut a stop in progress short: skip the rest of the drain delay and job wait.

        Jobs still queued or running are then failed with ``NotRunning`` as usual.
        """
        self._hurry.set()

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
        lc = self.lifecycle
        application: ApplicationStats = {
            "name": self.settings.name,
            "version": __version__,
            "pid": os.getpid(),
            "state": lc.state.value,
            "started_at": utc_iso(lc.started_at) if lc.started_at else None,
            "uptime_seconds": lc.uptime(),
            "jobs_in_flight": self._inflight,
            "event_loop_lag_seconds": self.loop_lag.lag,
            "event_loop_lag_max_seconds": self.loop_lag.max,
            "event_loop_blocked_total": self.watchdog.blocked_total if self.watchdog else 0,
            "log_level": LEVEL.name(),
            "log_level_reverts_at": utc_iso(LEVEL.until) if LEVEL.until is not None else None,
            "event_subscribers": self.events.subscribers,
            "gc": self.gc_pauses.stats(),
        }
        stats: StatsDict = {"application": application}
        for name, component in self.components().items():
            stats[name] = component.stats()
        stats["http"] = self._http.stats() if self._http is not None else {"state": "disabled"}
        return stats

    def debug_jobs(self, limit: int) -> dict[str, Any]:
        """Jobs in flight, recent failures and the slowest jobs (``/debug/jobs``)."""
        return jobs_report(self, limit)

    def debug_config(self) -> dict[str, Any]:
        """The settings in force and their sources, secrets redacted (``/debug/config``)."""
        return effective_config(self)

    def _health_now(self) -> HealthReport:
        checks = [(name, c.health) for name, c in self.components().items()]
        return aggregate(checks, self.clock.wall())

    def health(self) -> HealthReport:
        """Every component's health, and since when (as the background watcher saw it); a
        check that raises counts as unhealthy."""
        checks = [(name, c.health) for name, c in self.components().items()]
        return aggregate(checks, self.clock.wall(), self.health_watch.since)

    def is_healthy(self) -> bool:
        """Whether every component is healthy; never raises."""
        try:
            return self.health().healthy
        except Exception:
            return False

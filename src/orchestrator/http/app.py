"""create_app: the aiohttp application for any ``Observable``."""

from __future__ import annotations

from aiohttp import web

from orchestrator.clock import MonotonicClock
from orchestrator.config import HttpSettings
from orchestrator.http import views
from orchestrator.http.chain import build_chain
from orchestrator.http.keys import CLOCK, OBSERVABLE, SETTINGS, SNAPSHOT, STATE
from orchestrator.http.snapshot import SnapshotCache
from orchestrator.http.state import HttpState
from orchestrator.types import Clock, Observable

__all__ = ["create_app"]


def create_app(
    observable: Observable,
    settings: HttpSettings | None = None,
    *,
    clock: Clock | None = None,
    state: HttpState | None = None,
    snapshot: SnapshotCache | None = None,
) -> web.Application:
    """Build the HTTP API around ``observable``.

    Args:
        observable: what to serve (``get_stats()`` and ``health()``).
        settings: HTTP settings (defaults when None).
        clock: time source for the snapshot cache.
        state: shared drain flag and counters (a fresh one when None).
        snapshot: an existing snapshot cache to serve from (a new one when None).
    """
    settings = settings or HttpSettings()
    clock = clock or MonotonicClock()
    state = state or HttpState()
    app = web.Application(middlewares=[build_chain(settings, state)])
    app[OBSERVABLE] = observable
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[STATE] = state
    app[SNAPSHOT] = snapshot or SnapshotCache(
        observable.get_stats, ttl=settings.stats_ttl, clock=clock,
        slow_threshold=settings.stats_slow_threshold,
    )  # fmt: skip
    app.router.add_get("/", views.index)
    app.router.add_get("/health", views.health)
    app.router.add_get("/health/{component}", views.health_component)
    app.router.add_get("/live", views.live)
    app.router.add_get("/ready", views.ready)
    app.router.add_get("/stats", views.stats)
    app.router.add_get("/stats/{section}", views.stats_section)
    return app

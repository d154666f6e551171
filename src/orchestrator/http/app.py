"""create_app: the aiohttp application for any ``Observable``."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Handler

from orchestrator.clock import MonotonicClock
from orchestrator.config import HttpSettings
from orchestrator.http import page, views
from orchestrator.http.chain import Chain
from orchestrator.http.keys import CLOCK, METRICS, OBSERVABLE, SETTINGS, SNAPSHOT, STATE
from orchestrator.http.metrics import MetricsRenderer
from orchestrator.http.snapshot import SnapshotCache
from orchestrator.http.state import HttpState
from orchestrator.types import Clock, Observable

__all__ = ["ADMIN_ROUTES", "ROUTES", "create_app"]

ROUTES: tuple[tuple[str, Handler], ...] = (
    ("/", views.index),
    ("/health", views.health),
    ("/health/{component}", views.health_component),
    ("/live", views.live),
    ("/ready", views.ready),
    ("/stats", views.stats),
    ("/stats/{section}", views.stats_section),
    ("/metrics", views.metrics),
    ("/openapi.json", views.openapi_document),
    ("/static/status.css", page.stylesheet),
    ("/static/status.js", page.script),
)
"""Every GET (and HEAD) route: path and view."""

ADMIN_ROUTES: tuple[tuple[str, Handler], ...] = (
    ("/admin/drain", views.admin_drain),
    ("/admin/undrain", views.admin_undrain),
)
"""POST routes that change state; they exist only when a token is configured."""


def create_app(
    observable: Observable,
    settings: HttpSettings | None = None,
    *,
    clock: Clock | None = None,
    state: HttpState | None = None,
    snapshot: SnapshotCache | None = None,
    routes: Sequence[tuple[str, str, Handler]] = (),
) -> web.Application:
    """Build the HTTP API around ``observable``.

    Args:
        observable: what to serve (``get_stats()`` and ``health()``).
        settings: HTTP settings (defaults when None).
        clock: time source for the snapshot cache.
        state: shared drain flag and counters (a fresh one when None).
        snapshot: an existing snapshot cache to serve from (a new one when None).
        routes: further ``(method, path, handler)`` routes, behind the same chain.
    """
    settings = settings or HttpSettings()
    clock = clock or MonotonicClock()
    state = state or HttpState()
    app = web.Application()
    app[OBSERVABLE] = observable
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[STATE] = state
    app[SNAPSHOT] = snapshot or SnapshotCache(
        observable.get_stats, ttl=settings.stats_ttl, clock=clock,
        slow_threshold=settings.stats_slow_threshold,
    )  # fmt: skip
    app[METRICS] = MetricsRenderer(observable, per_item=settings.metrics_per_item)
    chain = Chain(settings, state)
    for path, view in ROUTES:
        app.router.add_get(path, chain.wrap(view, path))
    if settings.http_token:
        for path, view in ADMIN_ROUTES:
            app.router.add_post(path, chain.wrap(view, path))
    for method, path, view in routes:
        app.router.add_route(method, path, chain.wrap(view, path))
    # Last: whatever matched no route above gets its 404/405 through the chain too.
    app.router.add_route("*", "/{tail:.*}", chain.wrap(views.fallback, None))
    return app

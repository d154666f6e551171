"""create_app: the aiohttp application for any ``Observable``."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from orchestrator.clock import MonotonicClock
from orchestrator.config import HttpSettings
from orchestrator.http import views
from orchestrator.http.chain import Chain
from orchestrator.http.concerns.request_id import RequestIds
from orchestrator.http.fast_probe import FAST_PROBES, FastProbes
from orchestrator.http.keys import (
    CLOCK,
    DOCUMENT,
    METRICS,
    OBSERVABLE,
    ROUTE_TABLE,
    SETTINGS,
    SNAPSHOT,
    STATE,
)
from orchestrator.http.metrics import MetricsRenderer
from orchestrator.http.openapi.document import Document
from orchestrator.http.route import CATCH_ALL_PATTERN, Route, served
from orchestrator.http.routes import ROUTES
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
    routes: Sequence[Route] = (),
    request_ids: RequestIds | None = None,
) -> web.Application:
    """Build the HTTP API around ``observable``.

    Args:
        observable: what to serve (``get_stats()`` and ``health()``).
        settings: HTTP settings (defaults when None).
        clock: time source for the snapshot cache.
        state: shared drain flag and counters (a fresh one when None).
        snapshot: an existing snapshot cache to serve from (a new one when None).
        routes: further routes, behind the same chain, after the route table's.
        request_ids: the id generator, shared with the server's connection guard.
    """
    settings = settings or HttpSettings()
    clock = clock or MonotonicClock()
    state = state or HttpState()
    table = served((*ROUTES, *routes), settings)
    app = web.Application()
    app[OBSERVABLE] = observable
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[STATE] = state
    app[ROUTE_TABLE] = table
    app[DOCUMENT] = Document(settings, table)
    app[SNAPSHOT] = snapshot or SnapshotCache(
        observable.get_stats,
        ttl=settings.stats_ttl,
        clock=clock,
        slow_threshold=settings.stats_slow_threshold,
    )
    app[METRICS] = MetricsRenderer(observable, per_item=settings.metrics_per_item)
    chain = Chain(settings, state, table, request_ids)
    if settings.fast_probes:
        app[FAST_PROBES] = FastProbes(observable, chain, cors=bool(settings.cors_origins))
    for route in table:
        if route.method == "GET":  # and HEAD
            app.router.add_get(route.path, chain.wrap(route))
        else:
            app.router.add_route(route.method, route.path, chain.wrap(route))
    # Last: whatever matched no route above gets its 404/405 through the chain too.
    app.router.add_route("*", CATCH_ALL_PATTERN, chain.wrap(None, views.fallback))
    return app

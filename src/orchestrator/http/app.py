"""The HTTP layer assembled in one place (``HttpLayer``); ``create_app`` for any ``Observable``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from orchestrator.clock import MonotonicClock
from orchestrator.config import HttpSettings
from orchestrator.http import views
from orchestrator.http.chain import Chain
from orchestrator.http.concerns.request_id import RequestIds
from orchestrator.http.fast_probe import FastProbes
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

__all__ = ["HttpLayer", "HttpParts", "create_app"]


@dataclass(frozen=True, slots=True)
class HttpParts:
    """What one :meth:`HttpLayer.assemble` made, for a server to run.

    Attributes:
        app: the aiohttp application: the route table's routes behind the chain.
        fast_probes: the probe fast path for the listener (None when ``fast_probes`` is off).
    """

    app: web.Application
    fast_probes: FastProbes | None


class HttpLayer:
    """The HTTP layer of one ``observable``, assembled in one place.

    What outlives a server's restarts is made here once: the drain flag and the request
    counters (``state``), the snapshot cache and the request ids (which the server's
    connection guard shares). :meth:`assemble` then makes the parts a server runs, as
    aiohttp's ``AppRunner.setup()`` makes its ``Server``: the application with its chain,
    and the probe fast path. A server assembles them each time it starts, once logging is
    configured (the access log binds its logger when it is made).

    Args:
        observable: what to serve (``get_stats()`` and ``health()``).
        settings: HTTP settings (defaults when None).
        clock: time source for the snapshot cache and the drain's ``Retry-After``.
        routes: further routes, behind the same chain, after the route table's.
    """

    def __init__(
        self,
        observable: Observable,
        settings: HttpSettings | None = None,
        *,
        clock: Clock | None = None,
        routes: Sequence[Route] = (),
    ) -> None:
        self.observable = observable
        self.settings = settings = settings or HttpSettings()
        self.clock = clock = clock or MonotonicClock()
        self.routes = routes
        self.state = HttpState()
        self.snapshot = SnapshotCache(
            observable.get_stats, ttl=settings.stats_ttl, clock=clock,
            slow_threshold=settings.stats_slow_threshold,
        )  # fmt: skip
        self.request_ids = RequestIds()

    def assemble(self) -> HttpParts:
        """A new application and fast path over this layer's state, snapshot and ids.

        The application registers the table's routes (admin and debug ones only with a
        token), each wrapped by the chain, and a catch-all route last, so that 404 and 405
        answers go through the chain too.
        """
        observable, settings = self.observable, self.settings
        table = served((*ROUTES, *self.routes), settings)
        app = web.Application()
        app[OBSERVABLE] = observable
        app[SETTINGS] = settings
        app[CLOCK] = self.clock
        app[STATE] = self.state
        app[ROUTE_TABLE] = table
        app[DOCUMENT] = Document(settings, table)
        app[SNAPSHOT] = self.snapshot
        app[METRICS] = MetricsRenderer(observable, per_item=settings.metrics_per_item)
        chain = Chain(settings, self.state, table, self.request_ids)
        for route in table:
            if route.method == "GET":  # and HEAD
                app.router.add_get(route.path, chain.wrap(route))
            else:
                app.router.add_route(route.method, route.path, chain.wrap(route))
        app.router.add_route("*", CATCH_ALL_PATTERN, chain.wrap(None, views.fallback))
        fast = None
        if settings.fast_probes:
            fast = FastProbes(observable, chain, cors=bool(settings.cors_origins))
        return HttpParts(app, fast)


def create_app(
    observable: Observable,
    settings: HttpSettings | None = None,
    *,
    clock: Clock | None = None,
    routes: Sequence[Route] = (),
) -> web.Application:
    """Build the HTTP API around ``observable``: the application of a new :class:`HttpLayer`.

    Args:
        observable: what to serve (``get_stats()`` and ``health()``).
        settings: HTTP settings (defaults when None).
        clock: time source for the snapshot cache.
        routes: further routes, behind the same chain, after the route table's.
    """
    return HttpLayer(observable, settings, clock=clock, routes=routes).assemble().app

"""One small function per endpoint."""

from __future__ import annotations

import math
import time

import structlog
from aiohttp import web
from prometheus_client.exposition import gzip_accepted

from orchestrator.environment import parse_bool
from orchestrator.health import HealthReport
from orchestrator.http import page
from orchestrator.http.api_error import ApiError
from orchestrator.http.etag import not_modified
from orchestrator.http.keys import (
    AUTHORISED,
    CLOCK,
    DOCUMENT,
    METRICS,
    OBSERVABLE,
    ROUTE_TABLE,
    SNAPSHOT,
    STARTED,
    STATE,
)
from orchestrator.http.probe import probe, shown_reason
from orchestrator.http.responses import NO_STORE, json_bytes, json_response
from orchestrator.http.route import CATCH_ALL
from orchestrator.http.snapshot import Snapshot
from orchestrator.types import Inspectable

__all__ = [
    "admin_drain",
    "allowed_methods",
    "admin_undrain",
    "endpoints",
    "fallback",
    "flag",
    "health",
    "health_component",
    "index",
    "live",
    "metrics",
    "openapi_document",
    "ready",
    "stats",
    "stats_section",
]

log = structlog.get_logger("orchestrator.http")


def _snapshot(request: web.Request) -> tuple[Snapshot, bool]:
    try:
        return request.app[SNAPSHOT].get()
    except Exception as exc:
        log.error("stats_unavailable", error=type(exc).__name__)
        raise ApiError(500, "stats_unavailable", "the statistics could not be built") from exc


def flag(request: web.Request, name: str) -> bool:
    """A boolean query parameter: absent or ``0/false/no/off`` is off; empty or
    ``1/true/yes/on`` is on.

    Raises:
        ApiError: 400 for any other value (which is not repeated back).
    """
    raw = request.query.get(name)
    if raw is None:
        return False
    value = parse_bool(raw, empty=True) if raw == raw.strip() else None
    if value is None:
        raise ApiError(
            400,
            "bad_request",
            f"?{name} is a flag: empty, 1, true, yes or on turn it on; 0, false, no or off "
            "turn it off",
        )
    return value


def _pretty(request: web.Request) -> bool:
    return flag(request, "pretty")


def _may_see_reasons(request: web.Request) -> bool:
    return bool(request.get(AUTHORISED, True))


def _reason(request: web.Request, reason: str | None) -> str | None:
    """``reason`` for a caller who may see it; else that it is hidden (None stays None)."""
    return shown_reason(reason, _may_see_reasons(request))


async def index(request: web.Request) -> web.Response:
    """``GET /``: every route this server has (the status page when Accept asks for HTML)."""
    if page.wants_html(request):
        return await page.status_page(request)
    base = {"name": "orchestrator", "endpoints": endpoints(request.app)}
    return json_response(base, 200, {"Vary": "Accept"}, pretty=_pretty(request))


def endpoints(app: web.Application) -> dict[str, str]:
    """Each route the application has and what it serves (``METHOD: ...`` unless GET)."""
    out: dict[str, str] = {}
    for route in app[ROUTE_TABLE]:
        what = route.summary if route.method == "GET" else f"{route.method}: {route.summary}"
        out[route.path] = f"{out[route.path]}; {what}" if route.path in out else what
    return out


def _health(request: web.Request) -> HealthReport:
    """The observable's health, computed fresh (changes are logged by its own watcher)."""
    return request.app[OBSERVABLE].health()


async def health(request: web.Request) -> web.Response:
    """``GET /health``: 200 when every component is healthy, 503 otherwise."""
    verbose = flag(request, "verbose")
    status, body = probe(
        "/health", request.app[OBSERVABLE], _may_see_reasons(request), verbose=verbose
    )
    return json_response(body, status, NO_STORE, pretty=_pretty(request))


async def health_component(request: web.Request) -> web.Response:
    """``GET /health/{component}``: one component's verdict (404 for an unknown name)."""
    name = request.match_info["component"]
    report = _health(request)
    check = report.components.get(name)
    if check is None:  # the name is not repeated back: it is the caller's input
        names = ", ".join(report.components)
        raise ApiError(404, "not_found", f"no component with that name; components: {names}")
    body = {"component": name, "healthy": check.healthy, "reason": _reason(request, check.reason)}
    return json_response(body, 200 if check.healthy else 503, NO_STORE, pretty=_pretty(request))


async def live(request: web.Request) -> web.Response:
    """``GET /live``: 200 while the event loop answers, whatever the components say."""
    status, body = probe("/live", request.app[OBSERVABLE], True)
    return json_response(body, status, NO_STORE)


async def ready(request: web.Request) -> web.Response:
    """``GET /ready``: 200 only when running, healthy and not draining; 503 with the reason."""
    state = request.app[STATE]
    if state.draining:
        headers = dict(NO_STORE)
        left = state.drain_left(request.app[CLOCK].now())
        if left is not None:  # an admin drain has no end to announce
            headers["Retry-After"] = str(max(1, math.ceil(left)))
        return json_response({"ready": False, "reason": "draining"}, 503, headers)
    status, body = probe("/ready", request.app[OBSERVABLE], _may_see_reasons(request))
    return json_response(body, status, NO_STORE)


async def stats(request: web.Request) -> web.Response:
    """``GET /stats``: the cached snapshot of ``get_stats()``; 304 when ``If-None-Match`` hits."""
    cache = request.app[SNAPSHOT]
    snap, hit = _snapshot(request)
    pretty = _pretty(request)
    etag = snap.etag + "-p" if pretty else snap.etag
    clock = request.app[CLOCK]
    headers = {
        "Cache-Control": f"max-age={int(cache.remaining(snap))}",
        "X-Cache": "hit" if hit else "miss",
        "X-Snapshot-Age-Ms": str(int((clock.now() - snap.created) * 1000)),
    }
    started = request.get(STARTED)
    if started is not None:
        headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.3f}"
    if not_modified(request, etag):
        response = web.Response(status=304, headers=headers)
    else:
        response = json_bytes(snap.pretty if pretty else snap.body, 200, headers)
    response.etag = etag
    return response


async def stats_section(request: web.Request) -> web.Response:
    """``GET /stats/{section}``: one section of the snapshot (404 for an unknown name)."""
    name = request.match_info["section"]
    snap, _ = _snapshot(request)
    section = snap.data.get(name)
    if not isinstance(section, dict):
        names = ", ".join(k for k, v in snap.data.items() if isinstance(v, dict))
        raise ApiError(404, "not_found", f"no stats section with that name; sections: {names}")
    return json_response(section, pretty=_pretty(request))


async def allowed_methods(request: web.Request, among: frozenset[str] | None = None) -> set[str]:
    """Methods the registered routes (those in ``among``, when given) serve at this path."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        canonical = resource.canonical
        if canonical == CATCH_ALL or (among is not None and canonical not in among):
            continue
        _, methods = await resource.resolve(request)
        allowed |= methods
    return allowed


async def fallback(request: web.Request) -> web.Response:
    """Whatever matched no route: 405 with ``Allow`` when the path exists, else 404."""
    allowed = await allowed_methods(request)
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, sorted(allowed))
    raise web.HTTPNotFound()


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text (or OpenMetrics when asked), gzip when accepted."""
    snap, _ = _snapshot(request)
    gzip_ok = gzip_accepted(request.headers.get("Accept-Encoding", ""))
    body, content_type = request.app[METRICS].render(
        snap, request.headers.get("Accept", ""), gzip_ok
    )
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type  # carries its own charset and version
    response.headers["Vary"] = "Accept, Accept-Encoding"
    response.headers["Cache-Control"] = "no-store"
    if gzip_ok:
        response.headers["Content-Encoding"] = "gzip"
    return response


def _publish(request: web.Request, name: str, fields: dict[str, str]) -> None:
    """Tell the application's event stream, when it has one."""
    observable = request.app[OBSERVABLE]
    if isinstance(observable, Inspectable):
        observable.events.publish(name, fields)


async def admin_drain(request: web.Request) -> web.Response:
    """``POST /admin/drain``: readiness 503 from now on (the instance leaves load balancers)."""
    state = request.app[STATE]
    if not state.draining:
        state.draining, state.drain_until = True, None
        log.warning("drain_requested", by="admin")
        _publish(request, "drain_requested", {"by": "admin"})
    return json_response({"draining": True}, 200, NO_STORE)


async def admin_undrain(request: web.Request) -> web.Response:
    """``POST /admin/undrain``: readiness follows health again."""
    state = request.app[STATE]
    if state.draining:
        state.draining, state.drain_until = False, None
        log.warning("undrain_requested", by="admin")
        _publish(request, "undrain_requested", {"by": "admin"})
    return json_response({"draining": False}, 200, NO_STORE)


async def openapi_document(request: web.Request) -> web.Response:
    """``GET /openapi.json``: the OpenAPI 3.1 description of this app's routes."""
    return json_bytes(request.app[DOCUMENT].bytes(), 200, {"Cache-Control": "no-cache"})

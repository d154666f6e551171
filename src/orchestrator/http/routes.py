"""The route table: every endpoint of the HTTP API, one record each.

A new endpoint is one record here, its view, its schema (``openapi/schemas.py``), its test
and its docs line (``docs/http-api.md``, whose endpoint table a test holds against this).
"""

from __future__ import annotations

from orchestrator.http import debug, page, views
from orchestrator.http.openapi.parts import (
    ASSET_HEADERS,
    DRAINING,
    ERROR,
    JSON,
    NOT_MODIFIED,
    STATS_HEADERS,
    TEXT,
    UNAVAILABLE,
    headers,
    json_body,
    response,
)
from orchestrator.http.route import Access, Route

__all__ = ["ROUTES"]


def _asset(path: str, kind: str, media: str) -> Route:
    view = page.stylesheet if kind == "stylesheet" else page.script
    return Route(
        path, view, Access.PUBLIC, f"The status page's {kind}", name=f"status{kind.capitalize()}",
        tag="status page", params=("If-None-Match",),
        responses={"200": response(f"the {kind}", {media: TEXT}, *ASSET_HEADERS),
                   "304": response(NOT_MODIFIED, None, *ASSET_HEADERS)},
    )  # fmt: skip


ROUTES: tuple[Route, ...] = (
    Route(
        "/",
        views.index,
        Access.PUBLIC,
        "Every route this server has, or the status page for browsers",
        name="index",
        tag="meta",
        params=("pretty", "If-None-Match"),
        responses={
            "200": response(
                "the routes (JSON), or the status page when `Accept` names "
                "`text/html` above `application/json`",
                {**json_body("Index"), "text/html": TEXT},
                "Vary",
            ),
            "304": response(NOT_MODIFIED + " (the status page only)", None, *ASSET_HEADERS),
        },
    ),
    Route(
        "/health",
        views.health,
        Access.PROBE,
        "Aggregated health, computed fresh",
        name="health",
        tag="probes",
        params=("verbose", "pretty"),
        responses={
            "200": response("every component is healthy", json_body("Health"), "Cache-Control"),
            "503": response("a component is unhealthy", json_body("Health"), "Cache-Control"),
        },
    ),
    Route(
        "/health/{component}",
        views.health_component,
        Access.PROBE,
        "One component's health",
        name="healthComponent",
        tag="probes",
        params=("component", "pretty"),
        responses={
            "200": response(
                "the component is healthy", json_body("ComponentHealth"), "Cache-Control"
            ),
            "404": response(
                "`not_found`: no component of that name (the detail lists them)", ERROR
            ),
            "503": response(
                "the component is unhealthy", json_body("ComponentHealth"), "Cache-Control"
            ),
        },
    ),
    Route(
        "/live",
        views.live,
        Access.PROBE,
        "Liveness: 200 whenever the event loop answers",
        name="live",
        tag="probes",
        responses={"200": response("alive", json_body("Live"), "Cache-Control")},
    ),
    Route(
        "/ready",
        views.ready,
        Access.PROBE,
        "Readiness: running, healthy and not draining",
        name="ready",
        tag="probes",
        responses={
            "200": response("ready", json_body("Ready"), "Cache-Control"),
            "503": {
                **response("not ready: draining or unhealthy", json_body("Ready"), "Cache-Control"),
                "headers": {**headers("Cache-Control"), "Retry-After": DRAINING},
            },
        },
    ),
    Route(
        "/stats",
        views.stats,
        Access.PROTECTED,
        "Every statistic, from a snapshot rebuilt at most once per stats_ttl",
        name="stats",
        tag="stats",
        params=("pretty", "If-None-Match"),
        responses={
            "200": response("the snapshot", json_body("Stats"), *STATS_HEADERS),
            "304": response(NOT_MODIFIED, None, *STATS_HEADERS),
            "500": UNAVAILABLE,
        },
    ),
    Route(
        "/stats/{section}",
        views.stats_section,
        Access.PROTECTED,
        "One section of the stats snapshot",
        name="statsSection",
        tag="stats",
        params=("section", "pretty"),
        responses={
            "200": response("the section", json_body("StatsSection")),
            "404": response("`not_found`: no section of that name (the detail lists them)", ERROR),
            "500": UNAVAILABLE,
        },
    ),
    Route(
        "/metrics",
        views.metrics,
        Access.PROTECTED,
        "Prometheus exposition of the stats snapshot",
        name="metrics",
        tag="stats",
        quiet=True,  # Prometheus scrapes it all day long
        responses={
            "200": response(
                "Prometheus text (`version=0.0.4`), or OpenMetrics when `Accept` "
                "asks for it; gzip-encoded when `Accept-Encoding` allows",
                {"text/plain": TEXT, "application/openmetrics-text": TEXT},
                "Cache-Control",
                "Vary",
            ),
            "500": UNAVAILABLE,
        },
    ),
    Route(
        "/openapi.json",
        views.openapi_document,
        Access.PUBLIC,
        "This OpenAPI 3.1 document",
        name="openapi",
        tag="meta",
        responses={
            "200": response("the document", {JSON: {"schema": {"type": "object"}}}, "Cache-Control")
        },
    ),
    _asset("/static/status.css", "stylesheet", "text/css"),
    _asset("/static/status.js", "script", "text/javascript"),
    Route(
        "/admin/drain",
        views.admin_drain,
        Access.ADMIN,
        "Readiness off by hand (the instance leaves load balancers)",
        method="POST",
        name="adminDrain",
        tag="admin",
        responses={"200": response("draining", json_body("Drain"), "Cache-Control")},
    ),
    Route(
        "/admin/undrain",
        views.admin_undrain,
        Access.ADMIN,
        "Readiness back under health",
        method="POST",
        name="adminUndrain",
        tag="admin",
        responses={"200": response("not draining", json_body("Drain"), "Cache-Control")},
    ),
    Route(
        "/debug/jobs",
        debug.jobs,
        Access.DEBUG,
        "Jobs in flight (oldest first), the last 100 failures, the slowest of the last minute",
        name="debugJobs",
        tag="debug",
        params=("jobsLimit", "pretty"),
        responses={
            "200": response("the jobs", json_body("DebugJobs"), "Cache-Control"),
            "404": response("`not_found`: the application keeps no such data", ERROR),
        },
    ),
    Route(
        "/debug/tasks",
        debug.tasks,
        Access.DEBUG,
        "Every asyncio task of the loop with its stack; ?group merges identical stacks",
        name="debugTasks",
        tag="debug",
        params=("tasksLimit", "group", "pretty"),
        responses={"200": response("the tasks", json_body("DebugTasks"), "Cache-Control")},
    ),
    Route(
        "/debug/profile",
        debug.profile,
        Access.DEBUG,
        "A sampling profile of everything the event loop runs for N seconds (pyinstrument)",
        name="debugProfile",
        tag="debug",
        params=("seconds", "format"),
        responses={
            "200": response(
                "the profile: speedscope JSON (open it in speedscope.app), text or HTML",
                {JSON: {"schema": {"type": "object"}}, "text/plain": TEXT, "text/html": TEXT},
                "Cache-Control",
            ),
            "409": response("`profile_running`: one profile at a time", ERROR),
        },
    ),
    Route(
        "/debug/loggers",
        debug.loggers,
        Access.DEBUG,
        "The log level now, the configured one, and when a change turns back",
        name="debugLoggers",
        tag="debug",
        params=("pretty",),
        responses={"200": response("the levels", json_body("Loggers"), "Cache-Control")},
    ),
    Route(
        "/debug/loggers",
        debug.set_loggers,
        Access.DEBUG,
        "Change the log level for a while (at most an hour); it turns back by itself",
        method="PUT",
        name="debugLoggersChange",
        tag="debug",
        body={"required": True, "content": json_body("LoggersChange")},
        responses={
            "200": response("changed", json_body("Loggers"), "Cache-Control"),
            "400": response("`bad_request`: not a level, or seconds out of 1..3600", ERROR),
            "409": response("`logging_not_configured`: logging is not orchestrator's", ERROR),
        },
    ),
    Route(
        "/debug/config",
        debug.config,
        Access.DEBUG,
        "The settings in force and where each came from; secrets as a count",
        name="debugConfig",
        tag="debug",
        params=("pretty",),
        responses={
            "200": response("the settings", json_body("DebugConfig"), "Cache-Control"),
            "404": response("`not_found`: the application keeps no such data", ERROR),
        },
    ),
    Route(
        "/debug/events",
        debug.events,
        Access.DEBUG,
        "Notable events as they happen (Server-Sent Events)",
        name="debugEvents",
        tag="debug",
        responses={
            "200": response(
                "the stream, until the client hangs up or the application stops",
                {"text/event-stream": TEXT},
                "Cache-Control",
            ),
            "503": response("`too_many_subscribers`, or `not_running` once it stops", ERROR),
        },
    ),
)
"""Every route, in the order of the index and the documentation."""

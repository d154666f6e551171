"""Typed keys for application and request state."""

from __future__ import annotations

from aiohttp import web

from orchestrator.config import HttpSettings
from orchestrator.http.metrics import MetricsRenderer
from orchestrator.http.openapi.document import Document
from orchestrator.http.route import Route
from orchestrator.http.snapshot import SnapshotCache
from orchestrator.http.state import HttpState
from orchestrator.types import Clock, Observable

__all__ = [
    "AUTHORISED",
    "CLOCK",
    "DOCUMENT",
    "METRICS",
    "OBSERVABLE",
    "ROUTE_TABLE",
    "SETTINGS",
    "SNAPSHOT",
    "STARTED",
    "STATE",
]

OBSERVABLE = web.AppKey("observable", Observable)
SETTINGS = web.AppKey("settings", HttpSettings)
SNAPSHOT = web.AppKey("snapshot", SnapshotCache)
METRICS = web.AppKey("metrics", MetricsRenderer)
STATE = web.AppKey("state", HttpState)
CLOCK = web.AppKey("clock", Clock)
ROUTE_TABLE = web.AppKey("routes", tuple[Route, ...])
"""The routes this application has (the route table's, for its settings)."""
DOCUMENT = web.AppKey("openapi", Document)
"""Its OpenAPI document."""
STARTED = web.RequestKey("started", float)
"""``time.perf_counter()`` when the request entered the chain (for ``Server-Timing``)."""
AUTHORISED = web.RequestKey("authorised", bool)
"""Whether the request carried a valid token (True when no token is configured)."""

"""Helpers of the HTTP tests: the canary token and the type of the ``serve`` fixture."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestClient

__all__ = ["CANARY", "Serve"]

CANARY = "canary-7f3a9c-TOKEN-d41d8cd9e800"
"""A token that must never appear in a log line, a response body or an error page."""

Serve = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]
"""``serve(**http_settings)``: a test client of a running application's API."""

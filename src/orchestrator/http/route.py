"""The route record: everything about one endpoint, written once.

A ``Route`` carries its path, method, view, access class, what it serves and how the
OpenAPI document describes it. ``routes.ROUTES`` is the one table; the registration, the
OpenAPI paths, the ``GET /`` index, the public and probe sets and the docs' checks are all
derived from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aiohttp.typedefs import Handler

from orchestrator.config import HttpSettings

__all__ = [
    "CATCH_ALL",
    "CATCH_ALL_PATTERN",
    "Access",
    "Route",
    "exempt_paths",
    "public_paths",
    "served",
]

CATCH_ALL = "/{tail}"
"""Canonical path of the last route, which takes every request no other route matched."""
CATCH_ALL_PATTERN = "/{tail:.*}"
"""How that route is registered: any path."""


class Access(StrEnum):
    """Who may call a route, and how it is treated."""

    PUBLIC = "public"
    """No token needed (the index, the status page, the OpenAPI document); rate limited."""
    PROBE = "probe"
    """No token needed, never rate limited, successes logged at debug: polled by machines."""
    PROTECTED = "protected"
    """Needs the token when one is configured."""
    ADMIN = "admin"
    """Changes state; exists only when a token is configured, and always needs it."""
    DEBUG = "debug"
    """Debugging tools; exist only when a token is configured, and always need it."""


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint.

    Args:
        path: the path as registered (``/health/{component}``).
        view: the aiohttp handler.
        access: the access class.
        summary: one line: what it serves (the index and the OpenAPI summary).
        method: ``GET`` (which answers ``HEAD`` too), ``POST``, ``PUT``...
        name: the OpenAPI operation's name (``health`` → ``getHealth``).
        tag: the OpenAPI tag.
        params: names of the OpenAPI parameters it takes.
        responses: OpenAPI response objects by status, besides the ones every route has.
        body: the OpenAPI request body, for a route that takes one.
        quiet: successful requests are logged at debug (machines poll it).
    """

    path: str
    view: Handler
    access: Access
    summary: str = ""
    method: str = "GET"
    name: str = ""
    tag: str = ""
    params: tuple[str, ...] = ()
    responses: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None
    quiet: bool = False

    @property
    def token_only(self) -> bool:
        """Whether the route exists only when a token is configured."""
        return self.access in (Access.ADMIN, Access.DEBUG)

    @property
    def logged_quietly(self) -> bool:
        """Whether successes are logged at debug."""
        return self.quiet or self.access is Access.PROBE


def served(routes: Iterable[Route], settings: HttpSettings) -> tuple[Route, ...]:
    """The routes a server with ``settings`` has: token-only ones only with a token."""
    return tuple(r for r in routes if not r.token_only or settings.http_token)


def public_paths(routes: Iterable[Route], settings: HttpSettings) -> frozenset[str]:
    """Paths served without a token: ``http_public_paths``, or the public and probe routes."""
    if settings.http_public_paths is not None:
        return frozenset(settings.http_public_paths)
    return frozenset(r.path for r in routes if r.access in (Access.PUBLIC, Access.PROBE))


def exempt_paths(routes: Iterable[Route], settings: HttpSettings) -> frozenset[str]:
    """Paths never rate limited: ``rate_limit_exempt_paths``, or the probe routes."""
    if settings.rate_limit_exempt_paths is not None:
        return frozenset(settings.rate_limit_exempt_paths)
    return frozenset(r.path for r in routes if r.access is Access.PROBE)

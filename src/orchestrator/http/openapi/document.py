"""The OpenAPI 3.1 document of the routes a server has, for its settings.

``spec(settings, routes)`` documents the routes ``create_app`` registers for those settings
and nothing else: token-only routes only with a token, ``security: []`` on the public
routes, 401 only where a token is needed, and the rate-limit headers and 429 only where
the limiter applies. Each route's own responses come from its record.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import orjson

from orchestrator.config import HttpSettings
from orchestrator.http.openapi.parts import ERROR, HEADERS, PARAMETERS, headers, ref, response
from orchestrator.http.openapi.schemas import SCHEMAS
from orchestrator.http.route import Route, exempt_paths, public_paths, served
from orchestrator.version import __version__

__all__ = ["REFERENCE", "Document", "spec"]

REFERENCE = HttpSettings(http_token=("documented",))
"""The settings of docs/openapi.yaml: the defaults, with a token configured."""

_DESCRIPTION = (
    "Every body is JSON, errors included (`{error, detail, request_id}`). A method that a "
    "path does not serve answers 405 with `Allow`, and a path that matches no route 404; "
    "with a token configured, a caller without a valid one gets 401 for both instead. See "
    "docs/http-api.md."
)


def _operation(method: str, route: Route, protected: bool, limited: bool) -> dict[str, Any]:
    responses = {code: dict(body) for code, body in route.responses.items()}
    if method in ("get", "head"):
        responses["400"] = response(
            "`bad_request`: a flag with another value, a GET or HEAD with a body, or a "
            "malformed request (the connection closes)",
            ERROR,
        )
    if protected:
        responses["401"] = response(
            "`unauthorized`: no valid bearer token", ERROR, "WWW-Authenticate"
        )
    if limited:
        responses["429"] = response(
            "`too_many_requests`: the client's bucket is empty", ERROR, "Retry-After"
        )
    extra = ("X-Request-ID", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
    for body in responses.values():
        body["headers"] = {**body["headers"], **headers(*extra[: 4 if limited else 1])}
        if method == "head":
            body.pop("content", None)
    params = [ref("parameters", name) for name in route.params]
    operation: dict[str, Any] = {
        "operationId": method + route.name[0].upper() + route.name[1:],
        "tags": [route.tag],
        "summary": route.summary,
        "parameters": [*params, ref("parameters", "X-Request-ID")],
        "responses": dict(sorted(responses.items())),
    }
    if route.body is not None:
        operation["requestBody"] = dict(route.body)
    if not protected:
        operation["security"] = []
    return operation


def spec(settings: HttpSettings, routes: Sequence[Route]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the routes a server with ``settings`` has."""
    token = bool(settings.http_token)
    public = public_paths(routes, settings)
    exempt = exempt_paths(routes, settings)
    paths: dict[str, Any] = {}
    for route in served(routes, settings):
        protected = token and (route.token_only or route.path not in public)
        limited = settings.rate_limited and route.path not in exempt
        methods = ("get", "head") if route.method == "GET" else (route.method.lower(),)
        item = paths.setdefault(route.path, {})
        for method in methods:
            item[method] = _operation(method, route, protected, limited)
    components: dict[str, Any] = copy.deepcopy(
        {"schemas": SCHEMAS, "parameters": PARAMETERS, "headers": HEADERS}
    )
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "orchestrator HTTP API",
            "version": __version__,
            "summary": "Health, readiness, statistics and metrics of an orchestrator process",
            "description": _DESCRIPTION,
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "paths": paths,
        "components": components,
    }
    if token:
        components["securitySchemes"] = {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "one of the configured `http_token` values",
            },
        }
        doc["security"] = [{"bearerAuth": []}]
    return doc


class Document:
    """A server's own document, serialised on first use and kept."""

    def __init__(self, settings: HttpSettings, routes: Sequence[Route]) -> None:
        self._settings = settings
        self._routes = tuple(routes)
        self._bytes: bytes | None = None

    def bytes(self) -> bytes:
        """The document as JSON bytes."""
        if self._bytes is None:
            self._bytes = orjson.dumps(spec(self._settings, self._routes))
        return self._bytes

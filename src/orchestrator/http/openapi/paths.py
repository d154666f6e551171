"""The operations: one entry per route, with its parameters, responses and security.

``spec(settings)`` documents the routes ``create_app`` registers for those settings and
nothing else: the admin routes only with a token, ``security: []`` on the public routes,
401 only where a token is needed, and the rate-limit headers and 429 only where the limiter
applies.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

import orjson

from orchestrator.config import HttpSettings
from orchestrator.http.openapi.schemas import COMPONENTS, SCHEMAS, SECTIONS
from orchestrator.version import __version__

__all__ = ["ADMIN_PATHS", "REFERENCE", "ROUTES", "document", "spec", "summaries"]

JSON = "application/json"

ADMIN_PATHS = ("/admin/drain", "/admin/undrain")
"""POST routes that exist only when a token is configured."""

REFERENCE = HttpSettings(http_token=("documented",))
"""The settings of docs/openapi.yaml: the defaults, with a token configured."""


@dataclass(frozen=True, slots=True)
class _Route:
    """How one path is documented: operation name, tag, parameters and own responses."""

    name: str
    tag: str
    summary: str
    params: tuple[str, ...]
    responses: dict[str, dict[str, Any]]


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json(schema: str) -> dict[str, Any]:
    return {JSON: {"schema": _ref("schemas", schema)}}


def _headers(*names: str) -> dict[str, Any]:
    return {name: _ref("headers", name) for name in names}


def _response(
    description: str, content: dict[str, Any] | None = None, *headers: str
) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "headers": _headers(*headers)}
    if content is not None:
        out["content"] = content
    return out


_TEXT = {"schema": {"type": "string"}}
_ERROR = _json("Error")
_NOT_MODIFIED = "not modified: `If-None-Match` names the current ETag (no body)"
_STATS_HEADERS = ("ETag", "Cache-Control", "X-Cache", "X-Snapshot-Age-Ms", "Server-Timing")
_ASSET_HEADERS = ("ETag", "Cache-Control")
_UNAVAILABLE = _response("`stats_unavailable`: the statistics could not be built", _ERROR)
_DRAINING = {"description": "while a timed drain lasts (at stop): the seconds it has left, "
                             "at least 1; absent for an admin drain",
             "schema": {"type": "string", "pattern": "^[0-9]+$"}}  # fmt: skip


def _asset(kind: str, media: str) -> _Route:
    return _Route(
        f"status{kind.capitalize()}", "status page", f"The status page's {kind}",
        ("If-None-Match",),
        {"200": _response(f"the {kind}", {media: _TEXT}, *_ASSET_HEADERS),
         "304": _response(_NOT_MODIFIED, None, *_ASSET_HEADERS)},
    )  # fmt: skip


ROUTES: dict[str, _Route] = {
    "/": _Route(
        "index",
        "meta",
        "The endpoints this API serves, or the status page for browsers",
        ("pretty", "If-None-Match"),
        {
            "200": _response(
                "the endpoint index (JSON), or the status page when `Accept` names "
                "`text/html` above `application/json`",
                {**_json("Index"), "text/html": _TEXT},
                "Vary",
            ),
            "304": _response(_NOT_MODIFIED + " (the status page only)", None, *_ASSET_HEADERS),
        },
    ),
    "/health": _Route(
        "health",
        "probes",
        "Aggregated health, computed fresh",
        ("verbose", "pretty"),
        {
            "200": _response("every component is healthy", _json("Health"), "Cache-Control"),
            "503": _response("a component is unhealthy", _json("Health"), "Cache-Control"),
        },
    ),
    "/health/{component}": _Route(
        "healthComponent",
        "probes",
        "One component's health",
        ("component", "pretty"),
        {
            "200": _response("the component is healthy", _json("ComponentHealth"), "Cache-Control"),
            "404": _response("`not_found`: no component of that name", _ERROR),
            "503": _response(
                "the component is unhealthy", _json("ComponentHealth"), "Cache-Control"
            ),
        },
    ),
    "/live": _Route(
        "live",
        "probes",
        "Liveness: 200 whenever the event loop answers",
        (),
        {"200": _response("alive", _json("Live"), "Cache-Control")},
    ),
    "/ready": _Route(
        "ready",
        "probes",
        "Readiness: running, healthy and not draining",
        (),
        {
            "200": _response("ready", _json("Ready"), "Cache-Control"),
            "503": {
                **_response("not ready: draining or unhealthy", _json("Ready"), "Cache-Control"),
                "headers": {**_headers("Cache-Control"), "Retry-After": _DRAINING},
            },
        },
    ),
    "/stats": _Route(
        "stats",
        "stats",
        "Every statistic, from a snapshot rebuilt at most once per stats_ttl",
        ("pretty", "If-None-Match"),
        {
            "200": _response("the snapshot", _json("Stats"), *_STATS_HEADERS),
            "304": _response(_NOT_MODIFIED, None, *_STATS_HEADERS),
            "500": _UNAVAILABLE,
        },
    ),
    "/stats/{section}": _Route(
        "statsSection",
        "stats",
        "One section of the stats snapshot",
        ("section", "pretty"),
        {
            "200": _response("the section", _json("StatsSection")),
            "404": _response("`not_found`: no section of that name", _ERROR),
            "500": _UNAVAILABLE,
        },
    ),
    "/metrics": _Route(
        "metrics",
        "stats",
        "Prometheus exposition of the stats snapshot",
        (),
        {
            "200": _response(
                "Prometheus text (`version=0.0.4`), or OpenMetrics when `Accept` asks "
                "for it; gzip-encoded when `Accept-Encoding` allows",
                {"text/plain": _TEXT, "application/openmetrics-text": _TEXT},
                "Cache-Control",
                "Vary",
            ),
            "500": _UNAVAILABLE,
        },
    ),
    "/openapi.json": _Route(
        "openapi",
        "meta",
        "This OpenAPI 3.1 document",
        (),
        {"200": _response("the document", {JSON: {"schema": {"type": "object"}}}, "Cache-Control")},
    ),
    "/static/status.css": _asset("stylesheet", "text/css"),
    "/static/status.js": _asset("script", "text/javascript"),
    "/admin/drain": _Route(
        "adminDrain",
        "admin",
        "Readiness off by hand (the instance leaves load balancers)",
        (),
        {"200": _response("draining", _json("Drain"), "Cache-Control")},
    ),
    "/admin/undrain": _Route(
        "adminUndrain",
        "admin",
        "Readiness back under health",
        (),
        {"200": _response("not draining", _json("Drain"), "Cache-Control")},
    ),
}
"""Every documented path; the admin paths are POST, the others GET and HEAD."""


def _string(description: str, **schema: Any) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string", **schema}}


_FLAG = (
    "a flag: empty, `1`, `true`, `yes` or `on` turn it on; `0`, `false`, `no` or `off` "
    "(any case) turn it off; any other value is a 400"
)
_FLAG_WORDS = ("1", "true", "yes", "on", "0", "false", "no", "off")
_FLAG_PATTERN = (
    "^("
    + "|".join(  # any case: JSON Schema patterns have no flags
        "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)
        for word in _FLAG_WORDS
    )
    + ")?$"
)

PARAMETERS: dict[str, dict[str, Any]] = {
    "verbose": {"name": "verbose", "in": "query", "allowEmptyValue": True,
                **_string("add `checks` with each component's verdict and reason (without the "
                          "token a reason reads as hidden); " + _FLAG, pattern=_FLAG_PATTERN)},
    "pretty": {"name": "pretty", "in": "query", "allowEmptyValue": True,
               **_string("indent the JSON body by two spaces; " + _FLAG, pattern=_FLAG_PATTERN)},
    "component": {"name": "component", "in": "path", "required": True,
                  **_string("a component name", enum=list(COMPONENTS))},
    "section": {"name": "section", "in": "path", "required": True,
                **_string("an object-valued section of the snapshot", enum=list(SECTIONS))},
    "If-None-Match": {"name": "If-None-Match", "in": "header",
                      **_string("ETags (or `*`): answer 304 when one names the current body")},
    "X-Request-ID": {"name": "X-Request-ID", "in": "header",
                     **_string("echoed when 1-128 characters of `[A-Za-z0-9._-]`, otherwise "
                               "replaced by a generated id")},
}  # fmt: skip

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {"required": True, **_string("the request's id (also in error bodies)")},
    "RateLimit-Limit": {"required": True, **_string("the bucket size", pattern="^[0-9]+$")},
    "RateLimit-Remaining": {"required": True,
                            **_string("requests left now", pattern="^[0-9]+$")},
    "RateLimit-Reset": {"required": True,
                        **_string("seconds until the bucket is full", pattern="^[0-9]+$")},
    "Retry-After": {"required": True, **_string("seconds to wait", pattern="^[0-9]+$")},
    "WWW-Authenticate": {"required": True,
                         **_string('`Bearer realm="orchestrator"` (+ `error="invalid_token"`)',
                                   pattern="^Bearer ")},
    "ETag": {"required": True, **_string("strong validator of the body", pattern='^".+"$')},
    "Cache-Control": {"required": True, **_string("caching policy")},
    "Vary": {"required": True, **_string("request headers that select the representation")},
    "X-Cache": {"required": True, **_string("served from the snapshot or built for this request",
                                            enum=["hit", "miss"])},
    "X-Snapshot-Age-Ms": {"required": True,
                          **_string("age of the snapshot in milliseconds", pattern="^[0-9]+$")},
    "Server-Timing": {**_string("time spent in the app", pattern="^app;dur=[0-9.]+$")},
}  # fmt: skip


def _operation(method: str, route: _Route, protected: bool, limited: bool) -> dict[str, Any]:
    responses = {code: dict(body) for code, body in route.responses.items()}
    if method != "post":
        responses["400"] = _response("`bad_request`: a flag with another value, a GET or HEAD "
                                     "with a body, or a malformed request (the connection "
                                     "closes)", _ERROR)  # fmt: skip
    if protected:
        responses["401"] = _response("`unauthorized`: no valid bearer token", _ERROR,
                                     "WWW-Authenticate")  # fmt: skip
    if limited:
        responses["429"] = _response("`too_many_requests`: the client's bucket is empty", _ERROR,
                                     "Retry-After")  # fmt: skip
    extra = ("X-Request-ID", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
    for body in responses.values():
        body["headers"] = {**body["headers"], **_headers(*extra[: 4 if limited else 1])}
        if method == "head":
            body.pop("content", None)
    params = [_ref("parameters", name) for name in route.params]
    operation: dict[str, Any] = {
        "operationId": method + route.name[0].upper() + route.name[1:],
        "tags": [route.tag],
        "summary": route.summary,
        "parameters": [*params, _ref("parameters", "X-Request-ID")],
        "responses": dict(sorted(responses.items())),
    }
    if not protected:
        operation["security"] = []
    return operation


def spec(settings: HttpSettings | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API that ``create_app`` builds for ``settings``."""
    settings = settings or HttpSettings()
    token = bool(settings.http_token)
    public = set(settings.http_public_paths)
    exempt = set(settings.rate_limit_exempt_paths)
    paths: dict[str, Any] = {}
    for path, route in ROUTES.items():
        admin = path in ADMIN_PATHS
        if admin and not token:
            continue
        protected = token and (admin or path not in public)
        limited = settings.rate_limited and path not in exempt
        methods = ("post",) if admin else ("get", "head")
        paths[path] = {m: _operation(m, route, protected, limited) for m in methods}
    components: dict[str, Any] = copy.deepcopy(
        {"schemas": SCHEMAS, "parameters": PARAMETERS, "headers": HEADERS}
    )
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "orchestrator HTTP API",
            "version": __version__,
            "summary": "Health, readiness, statistics and metrics of an orchestrator process",
            "description": (
                "Every body is JSON, errors included (`{error, detail, request_id}`). A "
                "method that a path does not serve answers 405 with `Allow`, and a path that "
                "matches no route 404; with a token configured, a caller without a valid one "
                "gets 401 for both instead. See docs/http-api.md."
            ),
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "paths": paths,
        "components": components,
    }
    if token:
        components["securitySchemes"] = {
            "bearerAuth": {"type": "http", "scheme": "bearer",
                           "description": "one of the configured `http_token` values"},
        }  # fmt: skip
        doc["security"] = [{"bearerAuth": []}]
    return doc


def summaries() -> dict[str, str]:
    """One line per documented path: what it serves."""
    return {path: route.summary for path, route in ROUTES.items()}


@functools.lru_cache(maxsize=16)
def document(settings: HttpSettings) -> bytes:
    """``spec(settings)`` serialised with orjson, built once per distinct settings."""
    return orjson.dumps(spec(settings))

"""Building blocks of the OpenAPI document: responses, parameters and headers.

The route table (``http/routes.py``) describes each route's own responses with these; the
document (``document.py``) adds what every route has (401, 429, 400, the request id).
"""

from __future__ import annotations

from typing import Any

from orchestrator.http.openapi.schemas import COMPONENTS, SECTIONS

__all__ = [
    "ASSET_HEADERS",
    "DRAINING",
    "ERROR",
    "HEADERS",
    "JSON",
    "NOT_MODIFIED",
    "PARAMETERS",
    "STATS_HEADERS",
    "TEXT",
    "UNAVAILABLE",
    "headers",
    "json_body",
    "ref",
    "response",
]

JSON = "application/json"


def ref(kind: str, name: str) -> dict[str, str]:
    """A reference to ``#/components/<kind>/<name>``."""
    return {"$ref": f"#/components/{kind}/{name}"}


def json_body(schema: str) -> dict[str, Any]:
    """A JSON content object of the named schema."""
    return {JSON: {"schema": ref("schemas", schema)}}


def headers(*names: str) -> dict[str, Any]:
    """References to the named response headers."""
    return {name: ref("headers", name) for name in names}


def response(
    description: str, content: dict[str, Any] | None = None, *names: str
) -> dict[str, Any]:
    """A response object: its description, body (None: none) and header names."""
    out: dict[str, Any] = {"description": description, "headers": headers(*names)}
    if content is not None:
        out["content"] = content
    return out


TEXT = {"schema": {"type": "string"}}
ERROR = json_body("Error")
NOT_MODIFIED = "not modified: `If-None-Match` names the current ETag (no body)"
STATS_HEADERS = ("ETag", "Cache-Control", "X-Cache", "X-Snapshot-Age-Ms", "Server-Timing")
ASSET_HEADERS = ("ETag", "Cache-Control")
UNAVAILABLE = response("`stats_unavailable`: the statistics could not be built", ERROR)
DRAINING = {
    "description": "while a timed drain lasts (at stop): the seconds it has left, at least 1; "
    "absent for an admin drain",
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}


def _string(description: str, **schema: Any) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string", **schema}}


_FLAG = (
    "a flag: empty, `1`, `true`, `yes` or `on` turn it on; `0`, `false`, `no` or `off` "
    "(any case) turn it off; any other value is a 400"
)
_FLAG_WORDS = ("1", "true", "yes", "on", "0", "false", "no", "off")
_FLAG_PATTERN = (  # any case: JSON Schema patterns have no flags
    "^("
    + "|".join(
        "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)
        for word in _FLAG_WORDS
    )
    + ")?$"
)


def _flag(name: str, what: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "allowEmptyValue": True,
        **_string(f"{what}; {_FLAG}", pattern=_FLAG_PATTERN),
    }


PARAMETERS: dict[str, dict[str, Any]] = {
    "verbose": _flag(
        "verbose",
        "add `checks` with each component's verdict and reason (without the token a reason "
        "reads as hidden)",
    ),
    "pretty": _flag("pretty", "indent the JSON body by two spaces"),
    "component": {
        "name": "component",
        "in": "path",
        "required": True,
        **_string("a component name", enum=list(COMPONENTS)),
    },
    "section": {
        "name": "section",
        "in": "path",
        "required": True,
        **_string("an object-valued section of the snapshot", enum=list(SECTIONS)),
    },
    "jobsLimit": {
        "name": "limit",
        "in": "query",
        "description": "jobs in flight listed at most (default 100)",
        "schema": {"type": "integer", "minimum": 1, "maximum": 10_000},
    },
    "tasksLimit": {
        "name": "limit",
        "in": "query",
        "description": "tasks listed at most (default 1,000)",
        "schema": {"type": "integer", "minimum": 1, "maximum": 100_000},
    },
    "group": _flag("group", "merge tasks with identical stacks, counting them"),
    "seconds": {
        "name": "seconds",
        "in": "query",
        "description": "how long to profile (default 10)",
        "schema": {"type": "integer", "minimum": 1, "maximum": 60},
    },
    "format": {
        "name": "format",
        "in": "query",
        **_string("the profile's format (default speedscope)", enum=["speedscope", "text", "html"]),
    },
    "If-None-Match": {
        "name": "If-None-Match",
        "in": "header",
        **_string("ETags (or `*`): answer 304 when one names the current body"),
    },
    "X-Request-ID": {
        "name": "X-Request-ID",
        "in": "header",
        **_string(
            "echoed when 1-128 characters of `[A-Za-z0-9._-]`, otherwise replaced by a generated id"
        ),
    },
}
"""Every parameter a route may name in its ``params``."""


def _required(description: str, **schema: Any) -> dict[str, Any]:
    return {"required": True, **_string(description, **schema)}


HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": _required("the request's id (also in error bodies)"),
    "RateLimit-Limit": _required("the bucket size", pattern="^[0-9]+$"),
    "RateLimit-Remaining": _required("requests left now", pattern="^[0-9]+$"),
    "RateLimit-Reset": _required("seconds until the bucket is full", pattern="^[0-9]+$"),
    "Retry-After": _required("seconds to wait", pattern="^[0-9]+$"),
    "WWW-Authenticate": _required(
        '`Bearer realm="orchestrator"` (+ `error="invalid_token"`)', pattern="^Bearer "
    ),
    "ETag": _required("strong validator of the body", pattern='^".+"$'),
    "Cache-Control": _required("caching policy"),
    "Vary": _required("request headers that select the representation"),
    "X-Cache": _required(
        "served from the snapshot or built for this request", enum=["hit", "miss"]
    ),
    "X-Snapshot-Age-Ms": _required("age of the snapshot in milliseconds", pattern="^[0-9]+$"),
    "Server-Timing": _string("time spent in the app", pattern="^app;dur=[0-9.]+$"),
}
"""Every response header a route may name."""

"""Errors: the one place that turns exceptions into JSON error responses."""

from __future__ import annotations

import structlog
from aiohttp import web

from orchestrator.errors import NotRunning, OrchestratorError
from orchestrator.http.api_error import ApiError
from orchestrator.http.responses import error_response

__all__ = ["render_error"]

log = structlog.get_logger("orchestrator.http")

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 406: "not_acceptable", 408: "request_timeout",
          413: "payload_too_large", 414: "uri_too_long", 429: "too_many_requests",
          431: "headers_too_large", 500: "internal", 503: "unavailable"}  # fmt: skip

_ORCHESTRATOR_STATUS: dict[type[OrchestratorError], tuple[int, str]] = {
    NotRunning: (503, "not_running"),
}

# Headers of aiohttp's HTTP exceptions worth keeping on the JSON response.
_KEEP = ("Allow", "Location", "Retry-After", "WWW-Authenticate")


def _detail(status: int) -> str:
    if status == 404:
        return "no such endpoint; GET / lists them"
    if status == 405:
        return "method not allowed; see the Allow header"
    return web.Response(status=status).reason or "error"


def render_error(
    exc: Exception, request: web.Request, request_id: str, route: str | None = None
) -> tuple[web.StreamResponse, str | None]:
    """The JSON response for ``exc`` (``{"error", "detail", "request_id"}``) and its code.

    ``ApiError`` keeps its status, code, detail and headers; aiohttp's ``HTTPException``
    keeps its status (and ``Allow``/``Retry-After``/``WWW-Authenticate``), never its text;
    an ``OrchestratorError`` maps through one table; anything else is a 500 ``internal``,
    logged once with its traceback. Nothing from the request is echoed.
    """
    headers: dict[str, str] = {}
    if isinstance(exc, ApiError):
        status, code, detail, headers = exc.status, exc.code, exc.detail, exc.headers
    elif isinstance(exc, web.HTTPException):
        if exc.status < 400:  # redirects and 304s are responses, not errors
            return exc, None
        status, code, detail = exc.status, _CODES.get(exc.status, "error"), _detail(exc.status)
        headers = {k: exc.headers[k] for k in _KEEP if k in exc.headers}
    elif isinstance(exc, OrchestratorError):
        status, code = _ORCHESTRATOR_STATUS.get(type(exc), (500, "internal"))
        detail = _detail(status)
    else:
        log.error("http_handler_failed", method=request.method, route=route, exc_info=exc)
        status, code, detail = 500, "internal", "internal error"
    response = error_response(status, code, detail, request_id=request_id, headers=headers)
    return response, code

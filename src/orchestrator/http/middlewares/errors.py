"""Errors middleware: the one place that turns exceptions into JSON error responses."""

from __future__ import annotations

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from orchestrator.errors import NotRunning, OrchestratorError
from orchestrator.http.errors import ApiError
from orchestrator.http.responses import error_response

__all__ = ["errors_middleware"]

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


def errors_middleware() -> Middleware:
    """Render every exception as ``{"error", "detail"}`` JSON with the right status.

    ``ApiError`` keeps its status and code; aiohttp's ``HTTPException`` keeps its status
    (and ``Allow``/``Retry-After``/``WWW-Authenticate``), never its text; an
    ``OrchestratorError`` maps through one table; anything else is a 500 ``internal``
    logged once with its traceback. Nothing from the request is echoed.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(exc.status, exc.code, exc.detail, headers=exc.headers)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {k: exc.headers[k] for k in _KEEP if k in exc.headers}
            code = _CODES.get(exc.status, "error")
            return error_response(exc.status, code, _detail(exc.status), headers=headers)
        except OrchestratorError as exc:
            status, code = _ORCHESTRATOR_STATUS.get(type(exc), (500, "internal"))
            return error_response(status, code, _detail(status))
        except Exception:
            log.exception("http_handler_failed", path=request.path)
            return error_response(500, "internal", "internal error")

    return middleware

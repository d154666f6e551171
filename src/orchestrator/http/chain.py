"""The request chain: one aiohttp middleware that runs each concern in order.

Outermost first: request id → access log → errors → (CORS preflight) → rate limit → auth.
Each concern lives in its own module under ``middlewares/``; running them as plain calls
inside a single aiohttp middleware avoids one coroutine layer per concern on every request.
"""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from structlog.contextvars import bind_contextvars, reset_contextvars

from orchestrator.config import HttpSettings
from orchestrator.http.client import ClientResolver, group_address
from orchestrator.http.keys import AUTHORISED, STARTED
from orchestrator.http.middlewares.access_log import AccessLog
from orchestrator.http.middlewares.auth import TokenAuth
from orchestrator.http.middlewares.cors import Cors
from orchestrator.http.middlewares.errors import render_error
from orchestrator.http.middlewares.rate_limit import RateLimiter
from orchestrator.http.middlewares.request_id import RequestIds
from orchestrator.http.state import HttpState

__all__ = ["build_chain"]


def build_chain(settings: HttpSettings, state: HttpState) -> Middleware:
    """The middleware for ``settings``; counters go to ``state``."""
    request_ids = RequestIds()
    access_log = AccessLog(frozenset(settings.rate_limit_exempt_paths) | {"/metrics"},
                           settings.access_log_probe_sample)  # fmt: skip
    resolve_client = ClientResolver(settings.trusted_proxies)
    limiter = (
        RateLimiter(settings.rate_limit or 1.0, settings.burst, settings.rate_limit_max_clients)
        if settings.rate_limited
        else None
    )
    auth = TokenAuth(settings.http_token) if settings.http_token else None
    cors = Cors(settings.cors_origins) if settings.cors_origins else None
    public = frozenset(settings.http_public_paths)
    exempt = frozenset(settings.rate_limit_exempt_paths)
    state.limiter, state.auth = limiter, auth
    perf = time.perf_counter

    @web.middleware
    async def chain(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[STARTED] = started = perf()
        rid = request_ids(request)
        bound = bind_contextvars(request_id=rid)
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else None
        client = resolve_client(request)
        limit_headers = None
        error = None
        try:
            identity = auth.identify(request) if auth is not None else None
            request[AUTHORISED] = auth is None or identity is not None
            if cors is not None and cors.is_preflight(request):
                response: web.StreamResponse = cors.preflight(request)
            else:
                if limiter is not None and route not in exempt:
                    limit_headers = await limiter.admit(identity or group_address(client))
                if auth is not None and identity is None and route not in public:
                    raise auth.challenge(request)
                response = await handler(request)
        except Exception as exc:
            response, error = render_error(exc, request, rid)
        headers = response.headers
        headers["X-Request-ID"] = rid
        if limit_headers is not None:
            headers.update(limit_headers)
        if cors is not None:
            cors.decorate(request, response)
        state.count(response.status)
        access_log.record(request, response, route, perf() - started, client, error)
        reset_contextvars(**bound)
        return response

    return chain

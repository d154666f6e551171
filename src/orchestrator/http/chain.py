"""The request chain: each route's handler wrapped in every concern, in order.

Outermost first: request id → access log → errors → (CORS preflight) → rate limit → auth.
Each concern lives in its own module under ``concerns/``. They run as plain calls
inside one wrapper per route, built when the route is registered, rather than as aiohttp
middlewares: no coroutine layer per concern, and the route-dependent decisions (public?
exempt from rate limiting? a probe?) are made once per route instead of once per request.
Requests that match no route reach a catch-all route wrapped the same way, so 404 and 405
answers go through the whole chain too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Handler
from structlog.contextvars import bind_contextvars, reset_contextvars

from orchestrator.config import HttpSettings
from orchestrator.http.api_error import ApiError
from orchestrator.http.client import ClientResolver, group_address
from orchestrator.http.concerns.access_log import AccessLog
from orchestrator.http.concerns.auth import TokenAuth
from orchestrator.http.concerns.cors import Cors
from orchestrator.http.concerns.error_mapping import render_error
from orchestrator.http.concerns.rate_limit import RateLimiter
from orchestrator.http.concerns.request_id import HEADER, RequestIds
from orchestrator.http.keys import AUTHORISED, STARTED
from orchestrator.http.route import CATCH_ALL, Route, exempt_paths, public_paths
from orchestrator.http.state import HttpState
from orchestrator.http.views import allowed_methods

__all__ = ["Chain"]

_NO_BODY = frozenset({"GET", "HEAD"})


class Chain:
    """Builds the per-route wrappers for ``settings`` and ``routes``; counters go to ``state``."""

    def __init__(
        self,
        settings: HttpSettings,
        state: HttpState,
        routes: Sequence[Route],
        request_ids: RequestIds | None = None,
    ) -> None:
        self.request_ids = request_ids or RequestIds()
        self.access_log = AccessLog(settings.access_log_probe_sample)
        self.resolve_client = ClientResolver(settings.trusted_proxies, settings.forwarded_header)
        self.limiter = (
            RateLimiter(settings.rate_limit or 1.0, settings.burst, settings.rate_limit_max_clients)
            if settings.rate_limited
            else None
        )
        self.auth = TokenAuth(settings.http_token) if settings.http_token else None
        self.cors = Cors(settings.cors_origins) if settings.cors_origins else None
        self.public = public_paths(routes, settings)
        self.exempt = exempt_paths(routes, settings)
        self.state = state
        state.limiter, state.auth = self.limiter, self.auth

    async def _public_path(self, request: web.Request) -> bool:
        """For a request that matched no route: is its path a public route's (then 405)?

        Only the catch-all route asks; revealing that a public path exists reveals nothing.
        """
        resource = request.match_info.route.resource
        if resource is None or resource.canonical != CATCH_ALL:
            return False
        return bool(await allowed_methods(request, self.public))

    def wrap(self, record: Route | None, fallback: Handler | None = None) -> Handler:
        """A route's view behind every concern; None: ``fallback`` for requests of no route."""
        handler = record.view if record is not None else fallback
        assert handler is not None
        route = record.path if record is not None else None
        request_ids, resolve_client, access_log = (
            self.request_ids,
            self.resolve_client,
            self.access_log,
        )
        auth, cors, state = self.auth, self.cors, self.state
        limiter = self.limiter if route not in self.exempt else None
        protected = auth is not None and (
            route not in self.public or (record is not None and record.token_only)
        )
        probe = record is not None and record.logged_quietly
        perf = time.perf_counter

        async def chained(request: web.Request) -> web.StreamResponse:
            request[STARTED] = started = perf()
            rid = request_ids(request)
            bound = bind_contextvars(request_id=rid)
            client = resolve_client(request)
            limit_headers = None
            error = None
            close = False
            try:
                identity = None
                if auth is not None:  # without auth, views read AUTHORISED's default (True)
                    identity = auth.identify(request)
                    request[AUTHORISED] = identity is not None
                if cors is not None and cors.is_preflight(request):
                    response: web.StreamResponse = cors.preflight(request)
                else:
                    if request.body_exists and request.method in _NO_BODY:
                        close = True
                        raise ApiError(400, "bad_request", "a GET or HEAD request has no body")
                    if limiter is not None:
                        limit_headers = await limiter.admit(identity or group_address(client))
                    if protected and identity is None and not await self._public_path(request):
                        raise auth.challenge(request)  # type: ignore[union-attr]
                    response = await handler(request)
            except Exception as exc:
                response, error = render_error(exc, request, rid, route)
            try:
                headers = response.headers
                headers[HEADER] = rid
                if close or state.draining:
                    response.force_close()  # draining: no keep-alive, so stopping cuts nothing
                if limit_headers is not None:
                    headers.update(limit_headers)
                if cors is not None:
                    cors.decorate(request, response)
                state.count(route, response.status)
                access_log.record(
                    method=request.method, path=request.path, route=route,
                    status=response.status, duration=perf() - started,
                    sent=_sent(request, response), client=client,
                    user_agent=request.headers.get("User-Agent", ""), probe=probe,
                    request_id=rid, error=error,
                )  # fmt: skip
            finally:
                reset_contextvars(**bound)  # keep-alive requests share a task: never leak ids
            return response

        return chained


def _sent(request: web.Request, response: web.StreamResponse) -> int:
    """Bytes of body sent: none for HEAD, whatever a streamed response wrote."""
    if request.method == "HEAD":
        return 0
    if response.prepared:
        return response.body_length
    body = getattr(response, "body", None)
    return len(body) if isinstance(body, bytes | bytearray) else 0

"""CORS for browser dashboards: allowed origins only, preflight answered."""

from __future__ import annotations

from aiohttp import web

from orchestrator.http.concerns.request_id import HEADER

__all__ = ["Cors"]

_EXPOSE = ", ".join(("ETag", HEADER, "X-Cache", "Retry-After", "RateLimit-Limit",
                     "RateLimit-Remaining", "RateLimit-Reset"))  # fmt: skip


class Cors:
    """Adds ``Access-Control-*`` headers for allowed origins (``*`` allows any).

    Args:
        origins: allowed origins, e.g. ``("https://grafana.example.com",)`` or ``("*",)``.
    """

    def __init__(self, origins: tuple[str, ...]) -> None:
        self._any = "*" in origins
        self._origins = frozenset(origins)

    def allowed(self, request: web.Request) -> str | None:
        """The value of ``Access-Control-Allow-Origin`` for this request, or None."""
        origin = request.headers.get("Origin")
        if origin is None:
            return None
        if self._any:
            return "*"
        return origin if origin in self._origins else None

    def is_preflight(self, request: web.Request) -> bool:
        """An ``OPTIONS`` request from an allowed origin asking for a method."""
        return (
            request.method == "OPTIONS"
            and "Access-Control-Request-Method" in request.headers
            and self.allowed(request) is not None
        )

    def preflight(self, request: web.Request) -> web.Response:
        """The 204 answer to a preflight request."""
        response = web.Response(status=204)
        response.headers.update({
            "Access-Control-Allow-Methods": "GET, HEAD",
            "Access-Control-Allow-Headers": f"Authorization, If-None-Match, {HEADER}",
            "Access-Control-Max-Age": "600",
        })  # fmt: skip
        return response

    def decorate(self, request: web.Request, response: web.StreamResponse) -> None:
        """Add the CORS headers to a response for an allowed origin."""
        origin = self.allowed(request)
        if origin is None:
            return
        headers = response.headers
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Expose-Headers"] = _EXPOSE
        if origin != "*":
            vary = headers.get("Vary")
            headers["Vary"] = f"{vary}, Origin" if vary else "Origin"

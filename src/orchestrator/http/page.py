"""The status page: a self-contained HTML page, its stylesheet and script, for browsers.

The files live in ``static/`` inside the package and are read once, on first use. The
page loads nothing but its own two assets and the JSON endpoints it polls, so it works
offline and under a strict ``Content-Security-Policy`` without inline code.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from orchestrator.http.etag import etag_of, not_modified

__all__ = ["CSP", "ASSETS", "Asset", "script", "status_page", "stylesheet", "wants_html"]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
"""The page's policy: its own files and same-origin requests only, nothing inline."""


class Asset:
    """One file of ``static/``, read on first use and served from memory with an ETag.

    Args:
        name: the file name inside ``static/``.
        content_type: its media type (with charset).
    """

    def __init__(self, name: str, content_type: str) -> None:
        self.name = name
        self.content_type = content_type
        self._loaded: tuple[bytes, str] | None = None

    def load(self) -> tuple[bytes, str]:
        """The file's bytes and entity tag (read from the package once)."""
        if self._loaded is None:
            body = (resources.files("orchestrator.http") / "static" / self.name).read_bytes()
            self._loaded = body, etag_of(body)
        return self._loaded

    def response(self, request: web.Request) -> web.Response:
        """The file (or a 304 when ``If-None-Match`` names it) with the page's headers."""
        body, etag = self.load()
        headers = {
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": CSP,
            "Referrer-Policy": "no-referrer",
        }
        if not_modified(request, etag):
            response = web.Response(status=304, headers=headers)
        else:
            headers["Content-Type"] = self.content_type
            response = web.Response(body=body, headers=headers)
        response.etag = etag
        return response


ASSETS = {
    "/": Asset("status.html", "text/html; charset=utf-8"),
    "/static/status.css": Asset("status.css", "text/css; charset=utf-8"),
    "/static/status.js": Asset("status.js", "text/javascript; charset=utf-8"),
}
"""The page and its assets by route."""


def _quality(params: list[str]) -> float:
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value.strip())))
            except ValueError:
                return 0.0
    return 1.0


def wants_html(request: web.Request) -> bool:
    """Whether ``Accept`` names ``text/html`` explicitly, above any ``application/json``.

    Wildcards (``*/*``, ``text/*``) do not count: curl and scripts keep getting JSON.
    """
    html = json = 0.0
    for value in request.headers.getall("Accept", ()):
        for item in value.split(","):
            media, *params = item.split(";")
            media = media.strip().lower()
            if media == "text/html":
                html = max(html, _quality(params))
            elif media == "application/json":
                json = max(json, _quality(params))
    return html > json


async def status_page(request: web.Request) -> web.Response:
    """``GET /`` for browsers: the status page."""
    response = ASSETS["/"].response(request)
    response.headers["Vary"] = "Accept"
    return response


async def stylesheet(request: web.Request) -> web.Response:
    """``GET /static/status.css``: the page's stylesheet."""
    return ASSETS["/static/status.css"].response(request)


async def script(request: web.Request) -> web.Response:
    """``GET /static/status.js``: the page's script."""
    return ASSETS["/static/status.js"].response(request)

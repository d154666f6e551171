"""The HTTP API as an application's last stage: started once every component runs, stopped
before any of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.config import HttpSettings
from orchestrator.errors import HttpServerError
from orchestrator.types import Clock, Observable, StatsDict

if TYPE_CHECKING:
    from orchestrator.http.server import HttpServer

__all__ = ["HttpStage"]


class HttpStage:
    """Serves ``observable`` over HTTP when ``enable_http`` is set; does nothing otherwise
    (and aiohttp is then never imported).

    A bind failure, which the server logs, fails the start only with ``http_required``;
    otherwise the application runs on without HTTP.
    """

    def __init__(self, observable: Observable, settings: HttpSettings, clock: Clock) -> None:
        self._settings = settings
        self.server: HttpServer | None = None
        if settings.enable_http:
            from orchestrator.http.server import HttpServer

            self.server = HttpServer(observable, settings, clock=clock)

    async def start(self) -> None:
        """Bind and serve.

        Raises:
            HttpServerError: the server could not bind and ``http_required`` is set.
        """
        if self.server is None:
            return
        try:
            await self.server.start()
        except HttpServerError:
            if self._settings.http_required:
                raise

    async def stop(self) -> None:
        """Stop serving (requests in flight finish within ``http_shutdown_timeout``)."""
        if self.server is not None:
            await self.server.stop()

    def drain(self) -> float:
        """Turn readiness 503 for ``drain_delay`` seconds while the server still answers;
        returns that delay (0 when nothing is served)."""
        if self.server is None or self.server.status != "running":
            return 0.0
        self.server.drain(seconds=self._settings.drain_delay)
        return self._settings.drain_delay

    @property
    def port(self) -> int | None:
        """The bound port, or None when HTTP is disabled, failed or stopped."""
        return None if self.server is None else self.server.port

    @property
    def url(self) -> str | None:
        """``http://host:port`` of the API, or None."""
        return None if self.server is None else self.server.url

    def stats(self) -> StatsDict:
        """The server's stats, or ``{"state": "disabled"}``."""
        return {"state": "disabled"} if self.server is None else self.server.stats()

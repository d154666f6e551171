"""HttpServer: the AppRunner/TCPSite lifecycle, bind errors and draining."""

from __future__ import annotations

import errno as errno_names
import ipaddress
from collections.abc import Sequence
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from orchestrator.clock import MonotonicClock
from orchestrator.config import HttpSettings
from orchestrator.errors import HttpServerError
from orchestrator.http.app import create_app
from orchestrator.http.guard import ConnectionGuard, GuardedRunner
from orchestrator.http.snapshot import SnapshotCache
from orchestrator.http.state import HttpState
from orchestrator.types import Clock, Observable, StatsDict

__all__ = ["HttpServer"]

log = structlog.get_logger("orchestrator.http")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


HEAD_GRACE = 0.1
"""Seconds a stopping server waits for request heads already being received."""


class HttpServer:
    """Serves ``create_app(observable)`` on ``http_host:http_port``.

    ``start`` binds (port 0 picks a free port) or raises ``HttpServerError`` after logging
    ``http_server_failed`` and releasing everything it set up. ``stop`` stops listening,
    lets requests in flight finish within ``http_shutdown_timeout``, and is idempotent.
    ``routes`` adds ``(method, path, handler)`` routes behind the same request chain.
    """

    def __init__(
        self,
        observable: Observable,
        settings: HttpSettings,
        *,
        clock: Clock | None = None,
        routes: Sequence[tuple[str, str, Handler]] = (),
    ) -> None:
        self._observable = observable
        self._routes = routes
        self.settings = settings
        self._clock = clock or MonotonicClock()
        self.state = HttpState()
        self.snapshot = SnapshotCache(
            observable.get_stats, ttl=settings.stats_ttl, clock=self._clock,
            slow_threshold=settings.stats_slow_threshold,
        )  # fmt: skip
        self.guard = ConnectionGuard(settings.http_header_timeout, settings.http_max_connections)
        self.status = "stopped" if settings.enable_http else "disabled"
        self.error: str | None = None
        self.port: int | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str | None:
        """``http://host:port`` of the bound server, or None."""
        if self.port is None:
            return None
        host = self.settings.http_host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind and serve.

        Raises:
            HttpServerError: when binding fails (port in use, permission, bad host).
        """
        s = self.settings
        self.state.draining = False
        app = create_app(self._observable, s, clock=self._clock, state=self.state,
                         snapshot=self.snapshot, routes=self._routes)  # fmt: skip
        runner = GuardedRunner(app, guard=self.guard, access_log=None, handle_signals=False,
                               shutdown_timeout=s.http_shutdown_timeout,
                               keepalive_timeout=s.http_keepalive_timeout)  # fmt: skip
        try:
            await runner.setup()
            site = web.TCPSite(runner, s.http_host, s.http_port)
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            self.status, self.port = "failed", None
            code = errno_names.errorcode.get(exc.errno or 0, str(exc.errno))
            self.error = f"{code}: {exc.strerror or exc}"
            log.error("http_server_failed", host=s.http_host, port=s.http_port,
                      errno=exc.errno, reason=self.error)  # fmt: skip
            raise HttpServerError(
                f"cannot serve HTTP on {s.http_host}:{s.http_port}: {self.error}"
            ) from exc
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self.status, self.error = "running", None
        log.info("http_server_started", host=s.http_host, port=self.port, url=self.url,
                 auth=bool(s.http_token), rate_limit=s.rate_limit)  # fmt: skip
        if not s.http_token and not _is_loopback(s.http_host):
            log.warning("http_unauthenticated", host=s.http_host,
                        detail="no http_token: /stats is served unauthenticated")  # fmt: skip

    def drain(self, draining: bool = True) -> None:
        """Turn readiness 503 (or back to normal) while the server keeps answering."""
        self.state.draining = draining

    async def stop(self) -> None:
        """Stop listening and finish requests in flight (bounded by the shutdown timeout)."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self.status = "stopping"
        try:
            # Stop listening first, then let request heads already on the wire arrive, so
            # closing idle keep-alive connections cuts no request the server never read.
            for site in list(runner.sites):
                await site.stop()
            await self.guard.heads_received(HEAD_GRACE)
            await runner.cleanup()
        finally:
            self.status, self.port = "stopped", None
            log.info("http_server_stopped")

    def stats(self) -> StatsDict:
        """State, address, request counters and snapshot-cache counters."""
        out: dict[str, Any] = {
            "state": self.status,
            "host": self.settings.http_host,
            "port": self.port,
            "url": self.url,
            **self.state.stats(),
            "connections": self.guard.stats(),
            "snapshot": self.snapshot.stats(),
        }
        if self.error is not None:
            out["error"] = self.error
        return out

"""HttpServer: the AppRunner lifecycle, its listener, bind errors and draining."""

from __future__ import annotations

import asyncio
import errno as errno_names
import ipaddress
import os
import socket
from collections.abc import Sequence
from typing import Any

import structlog
from aiohttp import web

from orchestrator.config import HttpSettings
from orchestrator.errors import HttpServerError
from orchestrator.http.app import HttpLayer
from orchestrator.http.client import host_port
from orchestrator.http.guard import ConnectionGuard, protocol_factory
from orchestrator.http.route import CATCH_ALL, Route
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


LISTEN_BACKLOG = 128
"""Connections the kernel queues before the server accepts them (aiohttp's default)."""

ACCEPT_TURNS = 3
"""Loop turns between the last ``accept()`` and the listener's close.

asyncio hands a connection it has accepted to its protocol later: a task creates the
transport on the next turn and schedules ``connection_made`` for the turn after. A
listener closed in between loses the connection (Python 3.11 drops it unanswered), and
the guard would not know it yet to wait for its request head.
"""


async def _close_listener(listener: asyncio.Server) -> None:
    """Stop accepting, let accepted connections reach their protocol, then close.

    Connections still in the kernel's queue are reset by the close: to their clients this
    is a refused connect. Every connection accepted before is served or closed cleanly.
    """
    loop = asyncio.get_running_loop()
    for sock in listener.sockets:
        try:
            loop.remove_reader(sock.fileno())
        except NotImplementedError:  # a loop without readers (Windows' proactor)
            break
    for _ in range(ACCEPT_TURNS):
        await asyncio.sleep(0)
    listener.close()


def _bind_error(exc: OSError) -> str:
    """``EADDRINUSE: address already in use``, or why the host did not resolve."""
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host: {(exc.strerror or str(exc)).lower()}"
    if exc.errno is None:
        return str(exc)
    code = errno_names.errorcode.get(exc.errno, str(exc.errno))
    return f"{code}: {os.strerror(exc.errno).lower()}"


class HttpServer:
    """Serves the HTTP layer of ``observable`` (``HttpLayer``) on ``http_host:http_port``.

    ``start`` binds (port 0 picks a free port) or raises ``HttpServerError`` after logging
    ``http_server_failed`` and releasing everything it set up. ``stop`` stops listening,
    lets requests in flight finish within ``http_shutdown_timeout``, and is idempotent.
    ``routes`` adds routes behind the same request chain.
    """

    def __init__(
        self,
        observable: Observable,
        settings: HttpSettings,
        *,
        clock: Clock | None = None,
        routes: Sequence[Route] = (),
    ) -> None:
        self.settings = settings
        self.layer = layer = HttpLayer(observable, settings, clock=clock, routes=routes)
        self.state, self.snapshot = layer.state, layer.snapshot
        self.guard = ConnectionGuard(
            settings.http_header_timeout, settings.http_max_connections,
            request_ids=layer.request_ids,
        )  # fmt: skip
        self.status = "stopped" if settings.enable_http else "disabled"
        self.error: str | None = None
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None

    @property
    def url(self) -> str | None:
        """``http://host:port`` of the bound server, or None.

        A wildcard bind address is replaced by the loopback address of its family, which
        is where a client on this machine reaches it: ``::`` binds IPv6 only.
        """
        if self.port is None:
            return None
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(
            self.settings.http_host, self.settings.http_host
        )
        return f"http://{host_port(host, self.port)}"

    async def start(self) -> None:
        """Bind and serve.

        Raises:
            HttpServerError: when binding fails (port in use, permission, bad host).
        """
        s = self.settings
        self.state.draining, self.state.drain_until = False, None
        parts = self.layer.assemble()
        runner = web.AppRunner(
            parts.app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=s.http_shutdown_timeout,
        )
        try:
            await runner.setup()
            assert runner.server is not None
            connections = protocol_factory(
                runner.server,
                self.guard,
                parts.fast_probes,
                access_log=None,
                keepalive_timeout=s.http_keepalive_timeout,
            )
            listener = await asyncio.get_running_loop().create_server(
                connections, s.http_host, s.http_port, backlog=LISTEN_BACKLOG
            )
        except OSError as exc:
            await runner.cleanup()
            self.status, self.port = "failed", None
            self.error = _bind_error(exc)
            log.error("http_server_failed", host=s.http_host, port=s.http_port,
                      errno=exc.errno, reason=self.error)  # fmt: skip
            raise HttpServerError(
                f"cannot serve HTTP on {host_port(s.http_host, s.http_port)}: {self.error}"
            ) from exc
        self._runner, self._listener = runner, listener
        self.port = int(listener.sockets[0].getsockname()[1])
        self.status, self.error = "running", None
        log.info("http_server_started", host=s.http_host, port=self.port, url=self.url,
                 auth=bool(s.http_token), rate_limit=s.rate_limit)  # fmt: skip
        if not s.http_token and not _is_loopback(s.http_host):
            log.warning("http_unauthenticated", host=s.http_host,
                        detail="no http_token: /stats is served unauthenticated")  # fmt: skip

    def routes(self) -> set[str]:
        """The canonical path of every route the running server has (empty when stopped)."""
        if self._runner is None:
            return set()
        app = self._runner.app
        return {r.canonical for r in app.router.resources()} - {CATCH_ALL}

    def drain(self, draining: bool = True, *, seconds: float | None = None) -> None:
        """Turn readiness 503 (or back to normal) while the server keeps answering.

        Args:
            draining: on or off.
            seconds: how long the drain lasts, announced in ``/ready``'s ``Retry-After``.
        """
        self.state.draining = draining
        self.state.drain_until = (
            self.layer.clock.now() + seconds if draining and seconds is not None else None
        )

    async def stop(self) -> None:
        """Stop listening and finish requests in flight (bounded by the shutdown timeout)."""
        runner, self._runner = self._runner, None
        listener, self._listener = self._listener, None
        if runner is None:
            return
        self.status = "stopping"
        try:
            if listener is not None:
                await _close_listener(listener)
            # Let the request heads of accepted connections arrive, so that closing idle
            # connections cuts no request the server has accepted. They get the time a
            # request in flight gets: a client on a busy machine may send its head late.
            await self.guard.heads_received(self.settings.http_shutdown_timeout)
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

"""Connection guard: header timeout, connection cap and safe answers to malformed requests.

aiohttp has no timeout for a client that is still sending its request head (its idle
timer, armed at connect and after each response, is stood down while a head is awaited),
no cap on open connections, and answers a
malformed request with a text page that repeats part of the offending line (an
``Authorization`` header included) while its ``aiohttp.server`` logger prints a
traceback. ``protocol_factory`` gives the listener a request handler that closes the first
kind, keeps the second bounded (evicting the oldest connection still sending its head
before refusing a new one), and answers the third with a JSON 4xx that echoes nothing.

Each chunk of bytes goes to the probe fast path first when it is on (``fast_probe.py``
parses it and may answer a plain probe at once); everything else is aiohttp's own.

It subclasses aiohttp's ``RequestHandler`` and reads the private attributes named in
``PRIVATES``: aiohttp is pinned to the tested minor release, and
``tests/http/test_aiohttp_internals.py`` fails with a clear message when one of them
changes, or when this module reads one that is not listed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from orchestrator.http.client import host_port
from orchestrator.http.concerns.request_id import HEADER, RequestIds
from orchestrator.http.fast_probe import FastProbes
from orchestrator.http.responses import error_response

__all__ = ["PRIVATES", "ConnectionGuard", "GuardedRequestHandler", "protocol_factory"]

PRIVATES = ("_request_count", "_payload_parser", "_request_in_progress", "_loop",
            "_keepalive_handle")  # fmt: skip
"""The private attributes of aiohttp's ``RequestHandler`` this module reads."""

log = structlog.get_logger("orchestrator.http.guard")


@dataclass(slots=True)
class ConnectionGuard:
    """Limits and counters shared by every connection of one server."""

    header_timeout: float = 10.0
    max_connections: int = 1000
    active: int = 0
    rejected_total: int = 0
    evicted_total: int = 0
    header_timeouts_total: int = 0
    bad_requests_total: int = 0
    request_ids: RequestIds = field(default_factory=RequestIds)
    # Connections still sending a request head, oldest first (the eviction candidates).
    pending: dict[GuardedRequestHandler, None] = field(default_factory=dict)
    _settled: asyncio.Event | None = None

    def forget(self, handler: GuardedRequestHandler) -> None:
        """``handler`` no longer waits for its request head."""
        self.pending.pop(handler, None)
        if not self.pending and self._settled is not None:
            self._settled.set()

    async def heads_received(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until no connection is half-way through a head."""
        if not self.pending:
            return
        self._settled = asyncio.Event()
        try:
            async with asyncio.timeout(timeout):
                await self._settled.wait()
        except TimeoutError:
            pass
        finally:
            self._settled = None

    def stats(self) -> dict[str, Any]:
        """Counters for the ``http`` stats section."""
        return {
            "active": self.active,
            "max": self.max_connections,
            "rejected_total": self.rejected_total,
            "evicted_total": self.evicted_total,
            "header_timeouts_total": self.header_timeouts_total,
            "bad_requests_total": self.bad_requests_total,
        }


class GuardedRequestHandler(RequestHandler):
    """aiohttp's request handler with a header timeout, the cap and JSON errors."""

    guard: ConnectionGuard

    def __init__(
        self,
        manager: Server,
        *,
        guard: ConnectionGuard,
        fast: FastProbes | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, **kwargs)
        self.guard = guard
        self.fast = fast
        self._peer = "unknown"
        self._header_timer: Any = None
        self._counted = False
        self._head = self._last_head = _HeadShape()

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        guard = self.guard
        guard.active += 1
        self._counted = True
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self._peer = str(peer[0])
        log.debug("http_connection_accepted", peer=_address(peer))
        if guard.active > guard.max_connections and not self._evict_oldest_pending():
            guard.rejected_total += 1
            log.debug("http_connection_rejected", active=guard.active)
            self.force_close()
            return
        self._arm()

    def _evict_oldest_pending(self) -> bool:
        for victim in self.guard.pending:
            if victim is not self:
                self.guard.evicted_total += 1
                log.debug("http_connection_evicted", reason="still sending its request head")
                victim._disarm()
                victim.force_close()
                return True
        return False

    def _arm(self) -> None:
        if self._header_timer is None:
            # While a head is awaited the header timeout governs, not aiohttp's idle timer
            # (armed at connect and after each response; it re-arms after the next one):
            # with both running, a shorter keep-alive cut slow heads, and equal ones raced
            # to close the connection, leaving it uncounted when the idle timer won.
            if self._keepalive_handle is not None:
                self._keepalive_handle.cancel()
                self._keepalive_handle = None
            self._header_timer = self._loop.call_later(
                self.guard.header_timeout, self._on_header_timeout
            )
            self.guard.pending[self] = None

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
            self.guard.forget(self)

    def _on_header_timeout(self) -> None:
        self._header_timer = None
        self.guard.forget(self)
        self.guard.header_timeouts_total += 1
        log.debug("http_header_timeout", timeout_seconds=self.guard.header_timeout)
        self.force_close()

    def data_received(self, data: bytes) -> None:
        in_head = self._payload_parser is None and not self._request_in_progress
        if in_head:
            self._head.feed(data)
        before = self._request_count
        if self.fast is None:
            super().data_received(data)
        else:  # aiohttp parses; a lone plain probe is answered at once
            self.fast.received(self, data, super().data_received, self._peer)
        if self._request_count != before:
            self._disarm()  # a whole request head arrived (or one the parser refused)
            self._last_head, self._head = self._head, _HeadShape()
        elif data and in_head:
            self._arm()  # the start of a request head: it must complete in time

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        if self._counted:
            self._counted = False
            self.guard.active -= 1
        super().connection_lost(exc)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A JSON error that repeats nothing of the request; one log line, no traceback."""
        if request.writer.output_size > 0:  # a response is under way: nothing can be sent
            raise ConnectionError("response already started")
        rid = self.guard.request_ids.new()
        if status >= 500:
            code, detail = "internal", "internal error"
            log.error("http_handler_failed", request_id=rid, error=type(exc).__name__)
        else:
            self.guard.bad_requests_total += 1
            code, detail = "bad_request", "malformed request"
            head = self._last_head
            if isinstance(exc, LineTooLong) and head.long_request_line(self.max_line_size):
                status, code, detail = 414, "uri_too_long", "request line too long"
            elif isinstance(exc, LineTooLong):
                status, code, detail = 431, "headers_too_large", "a header line is too long"
            elif head.lines > self.max_headers:
                status, code, detail = 431, "headers_too_large", "too many header lines"
            if not isinstance(exc, BadHttpMethod):  # non-HTTP noise on the port stays quiet
                log.info("http_bad_request", request_id=rid, status=status,
                         error=type(exc).__name__)  # fmt: skip
        response = error_response(status, code, detail, request_id=rid,
                                  headers={HEADER: rid})  # fmt: skip
        response.force_close()
        return response


class _HeadShape:
    """Where a request head's first line ends, and how many lines it has: enough to tell a
    request line that is too long (414) from header lines that are (431)."""

    __slots__ = ("first_line_end", "lines", "seen")

    def __init__(self) -> None:
        self.seen = 0
        self.lines = 0
        self.first_line_end: int | None = None

    def feed(self, data: bytes) -> None:
        if self.first_line_end is None:
            i = data.find(b"\n")
            if i >= 0:
                self.first_line_end = self.seen + i
        self.seen += len(data)
        self.lines += data.count(b"\n")

    def long_request_line(self, limit: int) -> bool:
        return self.first_line_end is None or self.first_line_end > limit


def _address(peer: Any) -> str:
    """``host:port`` (``[host]:port`` for IPv6) of a socket address; ``?`` when unknown."""
    if not isinstance(peer, tuple) or len(peer) < 2:
        return "?"
    return host_port(str(peer[0]), peer[1])


def protocol_factory(
    server: Server, guard: ConnectionGuard, fast: FastProbes | None = None, **kwargs: Any
) -> Callable[[], GuardedRequestHandler]:
    """What ``loop.create_server`` calls for each connection: a guarded request handler.

    Args:
        server: the runner's ``server`` (``AppRunner.server``), which routes the requests.
        guard: the limits and counters.
        fast: the probe fast path (None: every request takes the chain).
        kwargs: for aiohttp's ``RequestHandler`` (``keepalive_timeout``, ``access_log``...).
    """
    loop = asyncio.get_running_loop()

    def make() -> GuardedRequestHandler:
        return GuardedRequestHandler(server, guard=guard, fast=fast, loop=loop, **kwargs)

    return make

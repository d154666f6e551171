"""The probe fast path: ``/health``, ``/ready`` and ``/live`` answered as their bytes arrive.

On Python 3.11 aiohttp answers a request three event-loop turns after its bytes arrive
(the connection's task wakes, then the request's own task runs). Each turn of a loop busy
with jobs can take milliseconds, so under load a probe waited three of them: 16 ms at
150 % of the job capacity (docs/performance.md). The connection guard hands each chunk of
bytes to :meth:`FastProbes.received`, which answers a complete request of the usual probe
shape in the turn its bytes arrived, with the answer the view gives (both come from
``probe.py``), and skips the request and response objects and the per-request tasks.

Only the plainest requests qualify, and everything else takes the full chain: ``GET``
over HTTP/1.1, a path without a query, no body, no ``Authorization`` (callers with a token
may see reasons), no ``Origin`` when CORS is on, not while draining, no trusted proxies
to resolve, nothing else in flight on the connection, and routes that are public and
exempt from rate limiting. The answer has the chain's headers (``X-Request-ID`` from a
sane incoming one or a fresh one, ``Cache-Control: no-store``), is counted per route
and logged through the chain's access log.

To answer in that turn, this module works inside aiohttp's ``RequestHandler``: it holds
back the wake-up of the connection's task while aiohttp parses (``_waiter``), takes the
parsed request off aiohttp's queue (``_messages``, ``_parser``), and restarts the
keep-alive timer as aiohttp's own request loop does after an answer. Those private names
are listed in ``PRIVATES``: aiohttp is pinned to the tested minor release, and
``tests/http/test_aiohttp_internals.py`` checks that each still exists and that this
module reads no other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import formatdate

import orjson
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.http_parser import RawRequestMessage
from aiohttp.web_protocol import RequestHandler

from orchestrator.http.chain import Chain
from orchestrator.http.concerns.request_id import HEADER
from orchestrator.http.probe import PROBES, probe
from orchestrator.types import Observable

__all__ = ["PRIVATES", "FastProbes"]

PRIVATES = (
    "_waiter",
    "_messages",
    "_parser",
    "_keepalive_timeout",
    "_next_keepalive_close_time",
    "_keepalive_handle",
    "_process_keepalive",
    "_loop",
)
"""The private attributes of aiohttp's ``RequestHandler`` this module reads or sets."""

_REASONS = {200: b"OK", 503: b"Service Unavailable"}
_HEADER = HEADER.encode()


class _Date:
    """The ``Date`` header's value, formatted once per second."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def __call__(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second, self._value = now, formatdate(now, usegmt=True).encode()
        return self._value


class FastProbes:
    """Answers the plain probe requests of one application.

    Args:
        observable: what ``/health`` and ``/ready`` report on.
        chain: the application's chain: its request ids, access log, state and the
            route decisions (public, exempt) the fast path must agree with.
        cors: whether CORS is on (then a request with ``Origin`` takes the chain).
    """

    def __init__(self, observable: Observable, chain: Chain, *, cors: bool) -> None:
        self._observable = observable
        self._chain = chain
        self._cors = cors
        self._may_see = chain.auth is None  # no token configured: reasons are public
        self._date = _Date()
        self._paths = frozenset(
            path
            for path in PROBES
            if path in chain.public
            and (path in chain.exempt or chain.limiter is None)
            and chain.resolve_client.direct
        )

    def received(
        self, handler: RequestHandler, data: bytes, parse: Callable[[bytes], None], peer: str
    ) -> None:
        """Let aiohttp parse ``data``; answer at once a lone plain probe it completes.

        Args:
            handler: the connection's request handler.
            data: the bytes that arrived.
            parse: aiohttp's own ``data_received`` for ``handler``.
            peer: the client's address, for the access log.
        """
        waiter = handler._waiter
        if waiter is None or waiter.done():  # the connection is busy: aiohttp queues
            parse(data)
            return
        handler._waiter = None  # aiohttp must not wake the connection's task before we look
        try:
            parse(data)
        finally:
            handler._waiter = waiter
        messages = handler._messages
        if messages and not (len(messages) == 1 and self._answered(handler, peer)):
            waiter.set_result(None)

    def _answered(self, handler: RequestHandler, peer: str) -> bool:
        """Answer the one request waiting, when it is a plain probe."""
        message, _ = handler._messages[0]
        transport = handler.transport
        if not isinstance(message, RawRequestMessage) or transport is None:
            return False
        try:
            response = self.answer(message, peer)
        except Exception:  # e.g. an Observable whose health() raises: the chain answers 500
            return False
        if response is None:
            return False
        handler._messages.popleft()
        if handler._parser is not None:
            handler._parser.message_consumed()
        transport.write(response)
        if message.should_close:
            handler.force_close()
        elif handler._keepalive_timeout > 0:  # idle again: the keep-alive timer runs from now
            loop = handler._loop
            close_time = loop.time() + handler._keepalive_timeout
            handler._next_keepalive_close_time = close_time
            if handler._keepalive_handle is None:
                handler._keepalive_handle = loop.call_at(close_time, handler._process_keepalive)
        return True

    def answer(self, message: RawRequestMessage, peer: str) -> bytes | None:
        """The whole response to ``message`` (head and body), or None: take the chain."""
        path = message.path
        if path not in self._paths or not self._plain(message) or self._chain.state.draining:
            return None
        started = time.perf_counter()
        status, data = probe(path, self._observable, self._may_see)
        body = orjson.dumps(data)
        headers = message.headers
        rid = self._chain.request_ids.given(headers.get(HEADER))
        head = b"".join((
            b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]),
            b"Cache-Control: no-store\r\nContent-Type: application/json\r\n",
            b"%s: %s\r\nContent-Length: %d\r\n" % (_HEADER, rid.encode(), len(body)),
            b"Date: %s\r\nServer: %s\r\n" % (self._date(), SERVER_SOFTWARE.encode()),
            b"Connection: close\r\n\r\n" if message.should_close else b"\r\n",
        ))  # fmt: skip
        state = self._chain.state
        state.count(path, status)
        state.fast_probes_total += 1
        self._chain.access_log.record(
            method="GET", path=path, route=path, status=status,
            duration=time.perf_counter() - started, sent=len(body), client=peer,
            user_agent=headers.get("User-Agent", ""), probe=True, request_id=rid,
        )  # fmt: skip
        return head + body

    def _plain(self, message: RawRequestMessage) -> bool:
        headers = message.headers
        return (
            message.method == "GET"
            and message.version == (1, 1)
            and not message.upgrade
            and not message.chunked
            and headers.get("Content-Length", "0") == "0"
            and "Authorization" not in headers
            and not (self._cors and "Origin" in headers)
        )

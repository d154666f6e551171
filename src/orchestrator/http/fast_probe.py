"""The probe fast path: ``/health``, ``/ready`` and ``/live`` answered as their bytes arrive.

On Python 3.11 aiohttp answers a request three event-loop turns after its bytes arrive
(the connection's task wakes, then the request's own task runs). Each turn of a loop busy
with jobs can take milliseconds, so under load a probe waited three of them: 16 ms at
150 % of the job capacity (docs/performance.md). The connection guard hands each complete
request of the usual probe shape to :meth:`FastProbes.answer` first, which writes the
same answer the view would, in the turn the bytes arrived, and skips the request and
response objects and the per-request tasks.

Only the plainest requests qualify, and everything else takes the full chain: ``GET``
over HTTP/1.1, a path without a query, no body, no ``Authorization`` (callers with a token
may see reasons), no ``Origin`` when CORS is on, not while draining, no trusted proxies
to resolve, nothing else in flight on the connection, and routes that are public and
exempt from rate limiting. The answer has the chain's headers (``X-Request-ID`` from a
sane incoming one or a fresh one, ``Cache-Control: no-store``), is counted per route
and logged exactly as the chain would log it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.http_parser import RawRequestMessage

from orchestrator.http.chain import Chain
from orchestrator.http.views import LIVE, readiness
from orchestrator.types import Observable

__all__ = ["FAST_PROBES", "FastProbes"]

_REASONS = {200: b"OK", 503: b"Service Unavailable"}


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
        self._health_cache: tuple[Any, bytes] | None = None
        answers: dict[str, Callable[[], tuple[int, bytes]]] = {
            "/health": self._health, "/ready": self._ready, "/live": self._live}  # fmt: skip
        self._answers = {
            path: answer
            for path, answer in answers.items()
            if path in chain.public
            and (path in chain.exempt or chain.limiter is None)
            and chain.resolve_client.direct
        }

    def answer(self, message: RawRequestMessage, peer: str) -> bytes | None:
        """The whole response to ``message`` (head and body), or None: take the chain."""
        answer = self._answers.get(message.path)
        if answer is None or not self._plain(message) or self._chain.state.draining:
            return None
        started = time.perf_counter()
        status, body = answer()
        headers = message.headers
        rid = self._chain.request_ids.given(headers.get("X-Request-ID"))
        head = b"".join((
            b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]),
            b"Cache-Control: no-store\r\nContent-Type: application/json\r\n",
            b"X-Request-ID: %s\r\nContent-Length: %d\r\n" % (rid.encode(), len(body)),
            b"Date: %s\r\nServer: %s\r\n" % (self._date(), SERVER_SOFTWARE.encode()),
            b"Connection: close\r\n\r\n" if message.should_close else b"\r\n",
        ))  # fmt: skip
        state = self._chain.state
        state.count(message.path, status)
        state.fast_probes_total += 1
        self._chain.access_log.record_fields(
            message.path, True, peer, method="GET", path=message.path, status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 3), bytes=len(body),
            user_agent=headers.get("User-Agent", "")[:200], request_id=rid,
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

    def _health(self) -> tuple[int, bytes]:
        report = self._observable.health()
        body = report.to_dict()
        key = (body["timestamp"], tuple(body["components"].items()))
        cached = self._health_cache
        if cached is None or cached[0] != key:  # a verdict changed, or the second ticked
            cached = self._health_cache = (key, orjson.dumps(body))
        return (200 if report.healthy else 503), cached[1]

    def _ready(self) -> tuple[int, bytes]:
        body, status = readiness(self._observable.health(), self._may_see)
        return status, orjson.dumps(body)

    def _live(self) -> tuple[int, bytes]:
        return 200, LIVE


FAST_PROBES = web.AppKey("fast_probes", FastProbes)
"""An application's fast path, when ``fast_probes`` is on (the server hands it to the guard)."""

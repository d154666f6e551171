"""Parity: the probe fast path answers and logs exactly as the chain does.

The same request goes to two servers over the same Observable, one with the fast path
and one without; status line, headers (all but ``Date``), body, counters and the access
log line (all but its duration) must be the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import structlog
from structlog.contextvars import merge_contextvars

from orchestrator.config import HttpSettings
from orchestrator.http.probe import PROBES
from orchestrator.http.server import HttpServer
from tests.http.helpers import CANARY, Connection, FixedHealth, get

ORIGIN = "https://dash.example"


@dataclass(frozen=True)
class Case:
    settings: dict[str, Any]
    headers: tuple[str, ...]
    fast: bool
    """Whether the fast path answers this request (else both servers use the chain)."""


CASES = {
    "no-token": Case({}, (), fast=True),
    "token-set": Case({"http_token": (CANARY,)}, (), fast=True),
    "token-sent": Case({"http_token": (CANARY,)}, (f"Authorization: Bearer {CANARY}",), False),
    "cors": Case({"cors_origins": (ORIGIN,)}, (), fast=True),
    "cors-origin": Case({"cors_origins": (ORIGIN,)}, (f"Origin: {ORIGIN}",), fast=False),
    "token-and-cors": Case({"http_token": (CANARY,), "cors_origins": (ORIGIN,)}, (), True),
}


@dataclass
class Answer:
    status: str
    headers: dict[str, str]
    body: bytes
    log: dict[str, Any]
    fast_total: int
    by_route: dict[str, dict[str, int]]


async def ask(server: HttpServer, request: str) -> Answer:
    """Send ``request`` on a new connection; the answer, its log line and the counters."""
    assert server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        conn = Connection(reader, writer)
        with structlog.testing.capture_logs(processors=[merge_contextvars]) as logs:
            await conn.send(request)
            status, headers, body = await conn.response()
    finally:
        writer.close()
    (line,) = [dict(e) for e in logs if e["event"] == "http_request_served"]
    stats = server.stats()
    return Answer(status, headers, body, line, stats["fast_probes_total"],
                  stats["requests_by_route"])  # fmt: skip


Start = Callable[..., Awaitable[HttpServer]]
"""``start(observable, fast, **settings)``: a running HttpServer on 127.0.0.1."""


@pytest.fixture
async def servers() -> AsyncIterator[Start]:
    """Start servers; each is stopped after the test."""
    started: list[HttpServer] = []

    async def start(observable: FixedHealth, fast: bool, **settings: Any) -> HttpServer:
        http = HttpSettings(http_host="127.0.0.1", http_port=0, fast_probes=fast, **settings)
        server = HttpServer(observable, http)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


@pytest.mark.parametrize("healthy", [True, False], ids=["healthy", "unhealthy"])
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
@pytest.mark.parametrize("path", PROBES)
async def test_the_fast_path_answers_and_logs_as_the_chain(
    servers: Start, path: str, case: Case, healthy: bool
) -> None:
    """Same status, headers, body, counters and access-log line (fields and their order)."""
    observable = FixedHealth(healthy)
    fast = await servers(observable, True, **case.settings)
    chain = await servers(observable, False, **case.settings)
    request = get(path, "X-Request-ID: parity-1", "User-Agent: parity/1.0", *case.headers)
    via_fast, via_chain = await ask(fast, request), await ask(chain, request)
    assert (via_fast.fast_total, via_chain.fast_total) == (int(case.fast), 0)
    assert via_fast.status == via_chain.status
    assert via_fast.body == via_chain.body
    for answer in (via_fast, via_chain):
        answer.headers.pop("date")
        answer.log.pop("duration_ms")
    assert via_fast.headers == via_chain.headers
    assert list(via_fast.log.items()) == list(via_chain.log.items())
    assert via_fast.log["request_id"] == "parity-1"
    assert via_fast.by_route == via_chain.by_route

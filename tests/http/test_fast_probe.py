"""The probe fast path: plain probes answered as their bytes arrive, with the chain's
answer; everything else, and anything in flight, takes the chain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import structlog

from orchestrator import Application
from orchestrator.clock import FakeClock
from orchestrator.config import HttpSettings
from orchestrator.health import HealthReport
from orchestrator.http.server import HttpServer
from tests.fakes import make_app
from tests.http.helpers import Connection, get


@pytest.fixture
async def connect(app: Application) -> AsyncIterator[type[Connection]]:
    writers: list[asyncio.StreamWriter] = []
    port = app.http_server.port
    assert port is not None

    async def opened() -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writers.append(writer)
        return Connection(reader, writer)

    yield opened  # type: ignore[misc]
    for writer in writers:
        writer.close()


def fast_total(app: Application) -> int:
    return int(app.get_stats()["http"]["fast_probes_total"])


@pytest.mark.parametrize("path", ["/health", "/ready", "/live"])
async def test_a_plain_probe_gets_the_chains_answer_on_the_fast_path(
    app: Application, connect: Connection, path: str
) -> None:
    """The same status, headers and body as through the chain (an ``Authorization``
    header sends a request through it; no token is configured here)."""
    conn = await connect()  # type: ignore[operator]
    before = fast_total(app)
    await conn.send(get(path))
    fast = await conn.response()
    await conn.send(get(path, "Authorization: Bearer x"))
    chained = await conn.response()
    assert fast_total(app) == before + 1
    assert fast[0] == chained[0] == "HTTP/1.1 200 OK"
    for headers in (fast[1], chained[1]):
        del headers["date"], headers["x-request-id"]
    assert fast[1] == chained[1]
    assert set(fast[1]) == {"cache-control", "content-type", "content-length", "server"}
    if path != "/health":  # /health's timestamp may tick between the two
        assert fast[2] == chained[2]


async def test_the_request_id_is_the_clients_when_sane(
    app: Application, connect: Connection
) -> None:
    conn = await connect()  # type: ignore[operator]
    await conn.send(get("/live", "X-Request-ID: probe-42"))
    first = await conn.response()
    await conn.send(get("/live", "X-Request-ID: a b"))
    second = await conn.response()
    assert first[1]["x-request-id"] == "probe-42"
    assert second[1]["x-request-id"] != "a b"


async def test_pipelined_requests_keep_their_order(app: Application, connect: Connection) -> None:
    """Two requests in one write: the second waits its turn behind the first (both take
    the chain), so the answers come in order."""
    conn = await connect()  # type: ignore[operator]
    before = fast_total(app)
    await conn.send(get("/stats/router"), get("/live"))
    first, second = await conn.response(), await conn.response()
    assert b'"capacity"' in first[2]
    assert second[2] == b'{"status":"alive"}'
    assert fast_total(app) == before
    await conn.send(get("/live"))  # idle again: this one is fast
    assert (await conn.response())[2] == b'{"status":"alive"}'
    assert fast_total(app) == before + 1


@pytest.mark.parametrize(
    "request_text",
    [get("/health?verbose"), get("/ready", "Origin: https://x.example"),
     "GET /live HTTP/1.0\r\n\r\n", "HEAD /live HTTP/1.1\r\nHost: t\r\n\r\n",
     get("/stats"), get("/health", "Content-Length: 2") + "{}"],
    ids=["query", "origin-without-cors", "http-1.0", "head", "not-a-probe", "a-body"],
)  # fmt: skip
async def test_other_requests_take_the_chain(
    app: Application, connect: Connection, request_text: str
) -> None:
    conn = await connect()  # type: ignore[operator]
    before = fast_total(app)
    await conn.send(request_text)
    status, headers, _ = await conn.response(head=request_text.startswith("HEAD"))
    assert "x-request-id" in headers
    origin_only = "Origin" in request_text  # no CORS configured: Origin changes nothing
    assert fast_total(app) == before + (1 if origin_only else 0), status


async def test_connection_close_is_honoured(app: Application, connect: Connection) -> None:
    conn = await connect()  # type: ignore[operator]
    before = fast_total(app)
    await conn.send(get("/ready", "Connection: close"))
    status, headers, body = await conn.response()
    assert (status, headers["connection"], body) == ("HTTP/1.1 200 OK", "close", b'{"ready":true}')
    assert await conn.closed()
    assert fast_total(app) == before + 1


async def test_a_503_verdict_is_counted_and_logged_as_the_chain_does(
    app: Application, connect: Connection
) -> None:
    """A stopped recycler: /health 503 on the fast path, logged at info with the request
    id (a probe's 503 is a verdict), counted under its route as a 5xx."""
    await app.recycler.stop()
    conn = await connect()  # type: ignore[operator]
    with structlog.testing.capture_logs() as logs:
        await conn.send(get("/health", "X-Request-ID: rid-503"))
        status, _, body = await conn.response()
    assert status == "HTTP/1.1 503 Service Unavailable"
    assert b'"recycler":false' in body
    served = [e for e in logs if e["event"] == "http_request_served"]
    assert served == [{"event": "http_request_served", "log_level": "info", "route": "/health",
                       "client": "127.0.0.1", "method": "GET", "path": "/health",
                       "status": 503, "duration_ms": served[0]["duration_ms"],
                       "bytes": len(body), "user_agent": "", "request_id": "rid-503"}]  # fmt: skip
    assert app.get_stats()["http"]["requests_by_route"]["/health"]["5xx"] >= 1


async def test_an_idle_connection_still_times_out(clock: FakeClock) -> None:
    """After a fast answer the keep-alive timer runs again: the server closes the idle
    connection after http_keepalive_timeout (0.2 s here, real time)."""
    app = make_app(clock, http=True, http_keepalive_timeout=0.2)
    await app.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", app.http_server.port)
        conn = Connection(reader, writer)
        for _ in range(3):
            await conn.send(get("/live"))
            assert (await conn.response())[2] == b'{"status":"alive"}'
        assert fast_total(app) == 3
        assert await conn.closed()
        writer.close()
    finally:
        await app.stop(timeout=1.0)


async def test_off_every_request_takes_the_chain(clock: FakeClock) -> None:
    app = make_app(clock, http=True, fast_probes=False)
    await app.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", app.http_server.port)
        conn = Connection(reader, writer)
        await conn.send(get("/health"), get("/ready"))
        assert (await conn.response())[0] == (await conn.response())[0] == "HTTP/1.1 200 OK"
        assert fast_total(app) == 0
        writer.close()
    finally:
        await app.stop(timeout=1.0)


class BrokenHealth:
    """An Observable whose health() raises."""

    def get_stats(self) -> dict[str, object]:
        return {}

    def health(self) -> HealthReport:
        raise RuntimeError("health exploded")


async def test_a_failing_health_check_falls_back_to_the_chains_500() -> None:
    """An exception on the fast path is not the connection's end: the chain answers."""
    server = HttpServer(BrokenHealth(), HttpSettings(http_host="127.0.0.1", http_port=0))
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        conn = Connection(reader, writer)
        with structlog.testing.capture_logs():
            await conn.send(get("/health"))
            status, headers, body = await conn.response()
        assert status == "HTTP/1.1 500 Internal Server Error"
        assert b'"error"' in body
        assert "x-request-id" in headers
        assert server.state.fast_probes_total == 0
        writer.close()
    finally:
        await server.stop()


async def test_a_probe_route_made_private_is_never_answered_without_the_token(
    clock: FakeClock,
) -> None:
    """With /health out of ``http_public_paths``, a plain GET /health is a 401 from the
    chain; /live, still public, is answered on the fast path."""
    app = make_app(clock, http=True, http_token=("secret-token",), http_public_paths=("/live",))
    await app.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", app.http_server.port)
        conn = Connection(reader, writer)
        await conn.send(get("/health"))
        status, _, body = await conn.response()
        assert status == "HTTP/1.1 401 Unauthorized"
        assert b'"error"' in body
        await conn.send(get("/live"))
        assert (await conn.response())[2] == b'{"status":"alive"}'
        assert fast_total(app) == 1
        writer.close()
    finally:
        await app.stop(timeout=1.0)


async def test_a_rate_limited_probe_route_takes_the_chain(clock: FakeClock) -> None:
    """With no route exempt from rate limiting, probes are limited like the rest: the
    second /live within the minute is a 429, and none is answered on the fast path."""
    app = make_app(clock, http=True, rate_limit=1 / 60, rate_limit_burst=1,
                   rate_limit_exempt_paths=())  # fmt: skip
    await app.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", app.http_server.port)
        conn = Connection(reader, writer)
        with structlog.testing.capture_logs():
            await conn.send(get("/live"))
            assert (await conn.response())[0] == "HTTP/1.1 200 OK"
            await conn.send(get("/live"))
            assert (await conn.response())[0] == "HTTP/1.1 429 Too Many Requests"
        assert fast_total(app) == 0
        writer.close()
    finally:
        await app.stop(timeout=1.0)

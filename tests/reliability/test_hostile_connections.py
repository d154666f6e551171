"""Hostile connections: slow heads, idle keep-alive, too many connections, malformed requests."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import orjson
import pytest
import structlog

from orchestrator import Application, FakeClock
from tests.fakes import make_app
from tests.http.helpers import CANARY

HEAD = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
async def guarded(clock: FakeClock) -> AsyncIterator[Application]:
    """An application whose server has short header and keep-alive timeouts and a small cap."""
    app = make_app(clock, http=True, http_header_timeout=0.3, http_keepalive_timeout=0.3,
                   http_max_connections=20, rate_limit=None)  # fmt: skip
    await app.start()
    yield app
    await app.stop(timeout=1.0)


async def connect(app: Application) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    assert app.http_port is not None
    return await asyncio.open_connection("127.0.0.1", app.http_port)


async def connect_with(
    app: Application, sent: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to ``app`` with ``sent`` already written.

    The bytes are in the server's socket before the server accepts the connection (the
    kernel completes the handshake; the loop accepts on its next turn), so its timers, armed
    at accept, cannot run out before it has read them, however long a busy machine stalls.
    """
    assert app.http_port is not None
    sock = socket.create_connection(("127.0.0.1", app.http_port))
    sock.sendall(sent)
    return await asyncio.open_connection(sock=sock)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response (status, headers, body) from a raw stream."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Whether the server closes the connection (EOF) within 5 s."""
    async with asyncio.timeout(5):
        return await reader.read() == b""


async def fresh_health(app: Application) -> tuple[int, float]:
    started = time.perf_counter()
    reader, writer = await connect_with(app, HEAD)
    status, _, _ = await read_response(reader)
    elapsed = time.perf_counter() - started
    writer.close()
    return status, elapsed


async def test_slow_request_head_closed_after_header_timeout(guarded: Application) -> None:
    """A client trickling its request head is disconnected after http_header_timeout."""
    reader, writer = await connect_with(guarded, b"GET /health HTTP/1.1\r\nHo")
    assert await closed_by_server(reader)
    writer.close()
    assert guarded.get_stats()["http"]["connections"]["header_timeouts_total"] == 1


async def test_slow_head_is_the_header_timeouts_even_with_a_shorter_keepalive(
    clock: FakeClock,
) -> None:
    """A head on its way is the header timeout's, not the keep-alive timer's: the connection
    is not cut before http_header_timeout, and the close is counted as a header timeout.

    aiohttp arms its idle timer at connect and after each response; when it closed the
    connection first, the head went uncounted (with equal timeouts this raced under load).
    """
    header_timeout = 0.5
    app = make_app(clock, http=True, http_header_timeout=header_timeout,
                   http_keepalive_timeout=0.05, rate_limit=None)  # fmt: skip
    await app.start()
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        reader, writer = await connect_with(app, b"GET /health HTTP/1.1\r\nHo")
        assert await closed_by_server(reader)
        closed_after = loop.time() - started
        writer.close()
        assert closed_after >= header_timeout
        assert app.get_stats()["http"]["connections"]["header_timeouts_total"] == 1
    finally:
        await app.stop(timeout=1.0)


async def test_silent_connection_closed_after_header_timeout(guarded: Application) -> None:
    """A connection that never sends a byte is closed too."""
    reader, writer = await connect(guarded)
    assert await closed_by_server(reader)
    writer.close()


async def test_idle_keepalive_closed(guarded: Application) -> None:
    """After a response, an idle keep-alive connection is closed after the keep-alive timeout."""
    reader, writer = await connect_with(guarded, HEAD)
    status, headers, _ = await read_response(reader)
    assert status == 200
    assert headers.get("connection", "keep-alive").lower() != "close"
    assert await closed_by_server(reader)
    writer.close()


async def test_slow_heads_cannot_crowd_out_a_fresh_client(clock: FakeClock) -> None:
    """At the connection cap, the oldest slow head is evicted so /health still answers."""
    # the default header timeout: every slow head is still pending when the fresh client
    # comes, however long that takes on a busy machine (0.3 s was not always enough)
    app = make_app(clock, http=True, http_max_connections=20, rate_limit=None)
    await app.start()
    try:
        slow = [await connect_with(app, b"GET /stats HTTP/1.1\r\n") for _ in range(20)]
        status, _ = await fresh_health(app)
        assert status == 200
        connections = app.get_stats()["http"]["connections"]
        assert connections["evicted_total"] >= 1
        assert connections["active"] <= 20
        for _, writer in slow:
            writer.close()
    finally:
        await app.stop(timeout=1.0)


async def test_busy_connections_at_the_cap_refuse_newcomers(clock: FakeClock) -> None:
    """When no connection can be evicted, a new one over the cap is closed at once."""
    app = make_app(clock, http=True, http_max_connections=2, rate_limit=None)
    await app.start()
    try:
        held = []
        for _ in range(2):  # keep-alive connections between requests: not evictable
            reader, writer = await connect_with(app, HEAD)
            assert (await read_response(reader))[0] == 200
            held.append(writer)
        reader, writer = await connect(app)
        assert await closed_by_server(reader)
        writer.close()
        assert app.get_stats()["http"]["connections"]["rejected_total"] == 1
        for w in held:
            w.close()
    finally:
        await app.stop(timeout=1.0)


@pytest.mark.slow
async def test_thousand_slow_heads_and_health_under_50ms(clock: FakeClock) -> None:
    """With 1,000 slow-header connections open, /health on a fresh connection takes < 50 ms."""
    app = make_app(
        clock, http=True, rate_limit=None
    )  # defaults: 1,000 connections, 10 s header timeout
    await app.start()
    slow: list[asyncio.StreamWriter] = []
    try:
        for _ in range(1000):
            _, writer = await connect(app)
            writer.write(b"GET /stats HTTP/1.1\r\nX-Slow: ")
            slow.append(writer)
        await asyncio.gather(*(w.drain() for w in slow))
        timings = []
        for _ in range(5):
            status, elapsed = await fresh_health(app)
            assert status == 200
            timings.append(elapsed)
        assert min(timings) < 0.050, timings
        assert sorted(timings)[2] < 0.050, timings
    finally:
        for writer in slow:
            writer.close()
        await app.stop(timeout=1.0)


MALFORMED: dict[str, tuple[bytes, int, str]] = {
    "huge-header": (
        b"GET /health HTTP/1.1\r\nAuthorization: Bearer " + CANARY.encode() + b"A" * 9000
        + b"\r\n\r\n", 431, "headers_too_large"),
    "too-many-headers": (
        b"GET /health HTTP/1.1\r\n"
        + b"".join(b"X-H%d: %s\r\n" % (i, CANARY.encode()) for i in range(200)) + b"\r\n",
        431, "headers_too_large"),
    "long-url": (
        b"GET /health/" + CANARY.encode() * 600 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        414, "uri_too_long"),
    "long-query": (
        b"GET /health?q=" + CANARY.encode() * 600 + b" HTTP/1.1\r\n\r\n", 414, "uri_too_long"),
    "bad-request-line": (
        b"GET /health HTTP/9.9 " + CANARY.encode() + b"\r\n\r\n", 400, "bad_request"),
    "cl-and-te": (
        b"GET /health HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n"
        b"Authorization: Bearer " + CANARY.encode() + b"\r\n\r\n0\r\n\r\n", 400, "bad_request"),
    "binary-garbage": (bytes(range(256)) + CANARY.encode() + b"\r\n\r\n", 400, "bad_request"),
    "body-on-get": (
        b"GET /health HTTP/1.1\r\nContent-Length: 5\r\nAuthorization: Bearer " + CANARY.encode()
        + b"\r\n\r\nhello", 400, "bad_request"),
    "space-before-colon": (b"GET /health HTTP/1.1\r\nHost : x\r\n\r\n", 400, "bad_request"),
}  # fmt: skip
"""Malformed requests: the bytes, the status and the error code they get."""


@pytest.mark.parametrize("name", list(MALFORMED), ids=list(MALFORMED))
async def test_malformed_request_gets_json_4xx_and_close(guarded: Application, name: str) -> None:
    """Malformed requests get the right JSON 4xx (414 for a long request line, 431 for long or
    too many header lines), the connection closes, nothing is echoed or traced."""
    data, expected_status, expected_code = MALFORMED[name]
    with structlog.testing.capture_logs() as logs:
        reader, writer = await connect_with(guarded, data)
        status, headers, body = await read_response(reader)
        assert await closed_by_server(reader)
        writer.close()
    assert status == expected_status
    assert headers["content-type"].startswith("application/json")
    assert orjson.loads(body)["error"] == expected_code
    assert headers["x-request-id"] == orjson.loads(body)["request_id"]
    assert CANARY.encode() not in body
    assert b"Traceback" not in body
    assert CANARY not in repr(logs)
    assert len([e for e in logs if e.get("log_level") in ("info", "warning", "error")]) <= 1


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


async def test_memory_flat_under_malformed_flood(guarded: Application) -> None:
    """Thousands of malformed requests leave the process's resident memory about flat."""

    async def one(payload: bytes) -> None:
        reader, writer = await connect_with(guarded, payload)
        await read_response(reader)
        writer.close()

    payloads = [data for data, _, _ in MALFORMED.values()]
    for i in range(100):  # warm up allocators and caches
        await one(payloads[i % len(payloads)])
    before = rss_bytes()
    for i in range(2000):
        await one(payloads[i % len(payloads)])
    growth = rss_bytes() - before
    assert growth < 10 * 1024 * 1024, growth

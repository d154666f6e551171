"""Canaries: the private parts of aiohttp and aiolimiter this project relies on.

Each test names what changed and where it is used, so that an upgrade that breaks one
fails here, clearly, rather than as a strange bug under load.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web
from aiohttp.http_parser import RawRequestMessage
from aiohttp.web_protocol import RequestHandler
from aiolimiter import AsyncLimiter

from orchestrator.http.concerns.rate_limit import fill_level

GUARD = "src/orchestrator/http/guard.py (the connection guard)"


async def _view(request: web.BaseRequest) -> web.Response:
    return web.Response()


def test_aiohttp_is_the_tested_minor_release() -> None:
    """The pin in pyproject.toml and the installed aiohttp agree: 3.14."""
    assert aiohttp.__version__.startswith("3.14."), (
        f"aiohttp {aiohttp.__version__} is not the tested 3.14: re-check the internals below "
        f"({GUARD}) before moving the pin in pyproject.toml and runtime-requirements.txt"
    )


@pytest.mark.parametrize(
    "name",
    ["_request_count", "_payload_parser", "_request_in_progress", "max_line_size",
     "max_headers", "transport",
     # the probe fast path (guard.py, _answer_fast)
     "_waiter", "_messages", "_parser", "_keepalive_timeout", "_next_keepalive_close_time",
     "_keepalive_handle", "_process_keepalive"],
)  # fmt: skip
async def test_request_handler_keeps_the_attributes_the_guard_reads(name: str) -> None:
    """The guard reads these attributes of aiohttp's RequestHandler."""
    handler = RequestHandler(web.Server(_view), loop=asyncio.get_running_loop())
    assert hasattr(handler, name), f"aiohttp's RequestHandler lost {name!r}, used by {GUARD}"


@pytest.mark.parametrize(
    "name", ["connection_made", "data_received", "connection_lost", "handle_error", "force_close"]
)
def test_request_handler_keeps_the_methods_the_guard_overrides(name: str) -> None:
    """The guard overrides or calls these methods of aiohttp's RequestHandler."""
    assert callable(getattr(RequestHandler, name, None)), (
        f"aiohttp's RequestHandler lost {name}(), used by {GUARD}"
    )


async def test_the_fast_path_can_hold_back_the_connections_wake_up() -> None:
    """The fast path sets ``_waiter`` aside while aiohttp parses: aiohttp must still read
    it from the attribute (not from elsewhere) to wake the connection's task, and leave
    each parsed request in ``_messages``; the parser must have ``message_consumed()``."""
    handler = RequestHandler(web.Server(_view), loop=asyncio.get_running_loop())
    assert callable(getattr(handler._parser, "message_consumed", None)), (
        f"aiohttp's request parser lost message_consumed(), called by {GUARD}"
    )

    class Transport(asyncio.Transport):
        def get_extra_info(self, name: str, default: object = None) -> object:
            return default

        def close(self) -> None:
            pass

        def is_closing(self) -> bool:
            return False

    handler.connection_made(Transport())
    try:
        await asyncio.sleep(0)  # the connection's task starts and waits for a request
        waiter = handler._waiter
        assert waiter is not None
        assert not waiter.done()
        handler._waiter = None
        handler.data_received(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        handler._waiter = waiter
        assert not waiter.done(), f"aiohttp wakes the connection another way: see {GUARD}"
        assert len(handler._messages) == 1
        message = handler._messages[0][0]
        assert isinstance(message, RawRequestMessage)
        assert message.path == "/health"
    finally:
        handler.force_close()
        handler.connection_lost(None)


async def test_aiolimiter_level_is_readable() -> None:
    """The RateLimit-* headers read aiolimiter's private fill level through fill_level()."""
    bucket = AsyncLimiter(5, 1)
    assert hasattr(bucket, "_level"), (
        "aiolimiter lost AsyncLimiter._level, read by fill_level() in "
        "src/orchestrator/http/concerns/rate_limit.py for the RateLimit-* headers"
    )
    for _ in range(2):
        await bucket.acquire()
    assert bucket.has_capacity()
    assert fill_level(bucket) == pytest.approx(2.0, abs=0.05)

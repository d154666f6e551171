"""Canaries: the private parts of aiohttp and aiolimiter this project relies on.

Each test names what changed and where it is used, so that an upgrade that breaks one
fails here, clearly, rather than as a strange bug under load.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

import aiohttp
import pytest
from aiohttp import web
from aiohttp.http_parser import RawRequestMessage
from aiohttp.web_protocol import RequestHandler
from aiolimiter import AsyncLimiter

import orchestrator.http
from orchestrator.http.concerns.rate_limit import fill_level

GUARD = "src/orchestrator/http/guard.py (the connection guard)"
FAST = "src/orchestrator/http/fast_probe.py (the probe fast path)"

HANDLER_PRIVATES = frozenset(
    name for name in dir(RequestHandler) if name.startswith("_") and not name.startswith("__")
)
"""Every private name of aiohttp's RequestHandler (and its base protocol)."""


def http_modules() -> list[ModuleType]:
    """Every module of ``orchestrator.http``, subpackages included."""
    found = pkgutil.walk_packages(orchestrator.http.__path__, "orchestrator.http.")
    return [importlib.import_module(info.name) for info in found]


def undeclared(source: str, declared: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """(read but not declared, declared but not read): the private names of aiohttp's
    RequestHandler that ``source`` touches, against a module's ``PRIVATES``."""
    read = {
        node.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr in HANDLER_PRIVATES
    }
    return read - set(declared), set(declared) - read


DECLARED = [
    (module.__name__, name) for module in http_modules() for name in getattr(module, "PRIVATES", ())
]
"""(module, private name) for each name a module lists in its ``PRIVATES``."""


async def _view(request: web.BaseRequest) -> web.Response:
    return web.Response()


def test_aiohttp_is_the_tested_minor_release() -> None:
    """The pin in pyproject.toml and the installed aiohttp agree: 3.14."""
    assert aiohttp.__version__.startswith("3.14."), (
        f"aiohttp {aiohttp.__version__} is not the tested 3.14: re-check the internals below "
        f"({GUARD}, {FAST}) before moving the pin in pyproject.toml and runtime-requirements.txt"
    )


def test_the_privates_are_declared_where_they_are_used() -> None:
    """The guard and the fast path are the modules that declare aiohttp internals."""
    assert {module for module, _ in DECLARED} == {
        "orchestrator.http.guard",
        "orchestrator.http.fast_probe",
    }


@pytest.mark.parametrize("module", http_modules(), ids=lambda m: m.__name__)
def test_a_module_reads_only_the_privates_it_declares(module: ModuleType) -> None:
    """Every private name of aiohttp's RequestHandler a module touches is in its
    ``PRIVATES``, and every name there is touched (the canaries below check those)."""
    assert module.__file__ is not None
    source = Path(module.__file__).read_text()
    missing, unused = undeclared(source, getattr(module, "PRIVATES", ()))
    path = f"src/{module.__name__.replace('.', '/')}.py"
    assert not missing, (
        f"{path} reads aiohttp's private {sorted(missing)}: add them to its PRIVATES, so "
        "that tests/http/test_aiohttp_internals.py watches them"
    )
    assert not unused, f"{path} lists {sorted(unused)} in PRIVATES but reads none of them"


def test_the_scan_catches_an_undeclared_private() -> None:
    """The check above names a private read but not declared, and one declared but not
    read; the module's own underscore names are no concern of it."""
    source = (
        "class Handler(RequestHandler):\n"
        "    def wake(self):\n"
        "        self._peer = 'x'\n"
        "        self._waiter = None\n"
        "        return self._loop.time()\n"
    )
    assert undeclared(source, ("_waiter", "_keepalive_handle")) == (
        {"_loop"},
        {"_keepalive_handle"},
    )


@pytest.mark.parametrize(("module", "name"), DECLARED, ids=[f"{m}:{n}" for m, n in DECLARED])
async def test_request_handler_keeps_the_privates_we_read(module: str, name: str) -> None:
    """aiohttp's RequestHandler still has every private attribute a module declares."""
    handler = RequestHandler(web.Server(_view), loop=asyncio.get_running_loop())
    assert hasattr(handler, name), f"aiohttp's RequestHandler lost {name!r}, used by {module}"


@pytest.mark.parametrize("name", ["max_line_size", "max_headers", "transport"])
async def test_request_handler_keeps_the_attributes_the_guard_reads(name: str) -> None:
    """The guard reads these public attributes of aiohttp's RequestHandler."""
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
        f"aiohttp's request parser lost message_consumed(), called by {FAST}"
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
        assert not waiter.done(), f"aiohttp wakes the connection another way: see {FAST}"
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

"""Schemathesis against a live server: no 5xx and no response outside the OpenAPI document.

The document is ``spec(settings, ROUTES)`` of the server under test, so every operation the app
registers is exercised, with the bearer token and without it, and every response is held
to the document: its status, content type, body schema and headers (all default checks).
``make soak`` (``ORCHESTRATOR_SOAK=1``) raises the number of examples per operation.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import schemathesis
import structlog
from hypothesis import settings

from orchestrator import Application, Job
from orchestrator.config import HttpSettings
from orchestrator.http.openapi import spec
from orchestrator.http.routes import ROUTES

SOAK = os.environ.get("ORCHESTRATOR_SOAK") == "1"
MAX_EXAMPLES = 500 if SOAK else 25
TOKEN = "schemathesis-7c1e0f"
SECURED = HttpSettings(http_token=(TOKEN,), rate_limit=100_000.0)
"""A token, and a limiter that stays out of the way but still sends its headers."""
OPEN = HttpSettings(rate_limit=20.0)
"""No token (so no admin routes), and a limit of 20 requests/s: some answers are 429s."""
ApiCase = schemathesis.Case[Any]
PROBES = ("/health", "/health/{component}", "/ready")
"""Routes whose 503 is a verdict (unhealthy, or draining after POST /admin/drain)."""


def load(
    http: HttpSettings, token: str | None = None, *, quick: bool = False
) -> schemathesis.schemas.BaseSchema:
    """``spec(http)`` for schemathesis, sending ``token`` where the document requires one."""
    operations: list[dict[str, Any]] = [{
        "include-path": list(PROBES),
        "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}},
    }, {  # a profile lasts as long as asked: always ask for the shortest
        "include-path": "/debug/profile",
        "parameters": {"query.seconds": 1},
    }]  # fmt: skip
    config: dict[str, Any] = {
        "request-timeout": 5,
        "generation": {"max-examples": MAX_EXAMPLES},
        "operations": operations,
    }
    if token is not None:
        config["auth"] = {"openapi": {"bearerAuth": {"bearer": token}}}
    if quick:  # generated examples only: no exhaustive coverage phase
        config["phases"] = {"coverage": {"enabled": False}}
    schema = schemathesis.openapi.from_dict(
        spec(http, ROUTES), config=schemathesis.Config.from_dict(config)
    )
    # An event stream lasts until the instance drains: tests/http/test_debug.py reads it.
    return schema.exclude(path="/debug/events")


with_token = load(SECURED, TOKEN).exclude(path="/debug/profile")
profiling = load(SECURED, TOKEN, quick=True).include(path="/debug/profile")
"""The profile, each call a second long: tested with fewer examples."""
anonymous = load(SECURED)
open_api = load(OPEN)


class LiveServer:
    """An application with HTTP on 127.0.0.1 (free port), run by a loop on its own thread."""

    def __init__(self, http: HttpSettings) -> None:
        self.http = http
        self.url = ""
        self._ready = threading.Event()
        self._stop: Callable[[], object] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="live-server", daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError("the live server did not start") from self._error
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._stop()
        self._thread.join(10)
        assert not self._thread.is_alive(), "the live server did not stop"

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by __enter__
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        http = self.http.replace(enable_http=True, http_host="127.0.0.1", http_port=0)
        app = Application(http=http)

        @app.handler("echo")
        async def echo(job: Job) -> object:
            return job.payload

        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._stop = lambda: loop.call_soon_threadsafe(stopped.set)
        await app.start()
        try:
            await app.submit("echo", {"n": 1})
            assert app.http_url is not None
            self.url = app.http_url
            self._ready.set()
            await stopped.wait()
        finally:
            await app.stop(timeout=5.0)


def get_json(url: str, token: str | None = None) -> Any:
    """GET ``url`` and decode its JSON body, waiting out a 429 or two."""
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    for _ in range(3):
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return orjson.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code != 429:
                raise
            time.sleep(float(exc.headers.get("Retry-After", "1")))
    raise AssertionError(f"{url} stayed rate limited")


@pytest.fixture(scope="module")
def quiet_logs() -> None:
    """Access log at warning: what the servers of this module bind when they start."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


@pytest.fixture(scope="module")
def secured(quiet_logs: None) -> Iterator[str]:
    """The base URL of a running application with a token."""
    with LiveServer(SECURED) as server:
        yield server.url


@pytest.fixture(scope="module")
def open_server(quiet_logs: None) -> Iterator[str]:
    """The base URL of a running application without a token and with a tight rate limit."""
    with LiveServer(OPEN) as server:
        yield server.url


SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None)


@with_token.parametrize()
@SETTINGS
def test_with_token(case: ApiCase, secured: str) -> None:
    """With the token, every request gets a documented status, content type, body, headers."""
    case.call_and_validate(base_url=secured)


@profiling.parametrize()
@settings(max_examples=3, deadline=None)
def test_profile_with_token(case: ApiCase, secured: str) -> None:
    """A profile asked with the token conforms too (1 s each; one at a time)."""
    case.call_and_validate(base_url=secured)


@anonymous.parametrize()
@SETTINGS
def test_without_token(case: ApiCase, secured: str) -> None:
    """Without the token, protected operations answer 401 and public ones conform."""
    case.call_and_validate(base_url=secured)


@open_api.parametrize()
@SETTINGS
def test_without_token_configured(case: ApiCase, open_server: str) -> None:
    """Without a token configured (no admin routes) and rate limited: 429s conform too."""
    case.call_and_validate(base_url=open_server)


@pytest.mark.parametrize(("server", "token"), [("secured", TOKEN), ("open_server", None)],
                         ids=["secured", "open"])  # fmt: skip
def test_no_server_error_was_served(
    server: str, token: str | None, request: pytest.FixtureRequest
) -> None:
    """The server's own counters: no 5xx on any route but a probe's 503 verdict."""
    base: str = request.getfixturevalue(server)
    by_route = get_json(base + "/stats/http", token)["requests_by_route"]
    errors = {route: c["5xx"] for route, c in by_route.items() if c["5xx"] and route not in PROBES}
    assert errors == {}, by_route

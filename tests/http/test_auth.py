"""Token auth: the matched route decides; tokens compared on bytes; 401 never 500."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient
from yarl import URL

from orchestrator import FakeClock
from orchestrator.config import HttpSettings
from orchestrator.http import HttpServer
from tests.fakes import make_app
from tests.http.helpers import CANARY, Serve
from tests.http.test_server import StaticObservable

RIGHT = {"Authorization": f"Bearer {CANARY}"}
CREDENTIALS: dict[str, Any] = {
    "none": {},
    "right": RIGHT,
    "lowercase-scheme": {"Authorization": f"bearer {CANARY}"},
    "wrong": {"Authorization": "Bearer not-the-token-at-all-000000"},
    "prefix": {"Authorization": f"Bearer {CANARY[:-1]}"},
    "longer": {"Authorization": f"Bearer {CANARY}x"},
    "other-scheme": {"Authorization": f"Basic {CANARY}"},
    "no-scheme": {"Authorization": CANARY},
    "empty": {"Authorization": "Bearer "},
    "non-ascii": {"Authorization": "Bearer tökén-ñ"},
    "8kb": {"Authorization": "Bearer " + "a" * 8000},
}
OK_CREDENTIALS = {"right", "lowercase-scheme"}

PROTECTED = ["/stats", "/stats/router", "/nope"]
PUBLIC = ["/", "/health", "/health/pool", "/live", "/ready"]


async def client_with_token(serve: Serve) -> TestClient[web.Request, web.Application]:
    return await serve(http_token=(CANARY,), rate_limit=None)


@pytest.mark.parametrize("credential", list(CREDENTIALS), ids=list(CREDENTIALS))
@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("path", PROTECTED, ids=PROTECTED)
async def test_protected_routes(serve: Serve, path: str, method: str, credential: str) -> None:
    """Protected routes answer 401 with WWW-Authenticate unless the right token is sent."""
    client = await client_with_token(serve)
    async with client.request(method, path, headers=CREDENTIALS[credential]) as resp:
        body = await resp.read()
        if credential in OK_CREDENTIALS:
            assert resp.status == (404 if path == "/nope" else 200)
        else:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"].startswith('Bearer realm="orchestrator"')
            assert resp.headers["X-Request-ID"]
        assert CANARY.encode() not in body


@pytest.mark.parametrize("credential", ["none", "wrong", "right"])
@pytest.mark.parametrize("path", PUBLIC, ids=PUBLIC)
async def test_public_routes(serve: Serve, path: str, credential: str) -> None:
    """Public routes answer whatever the credential, never 401."""
    client = await client_with_token(serve)
    async with client.get(path, headers=CREDENTIALS[credential]) as resp:
        assert resp.status == 200


VARIANTS = ["/stats/", "/%73tats", "//stats", "/STATS", "/stats/./", "/./stats", "/stats%2F",
            "/stats/../stats", "/health/../stats"]  # fmt: skip


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANTS)
async def test_path_variants_of_protected_route(serve: Serve, variant: str) -> None:
    """Encoded, doubled, dotted and cased variants of /stats never serve stats without a token."""
    client = await client_with_token(serve)
    url = client.make_url("").with_path(variant, encoded=True)
    async with client.session.get(URL(str(url), encoded=True)) as resp:
        body = await resp.read()
        assert resp.status in (401, 404)
        assert b'"registry"' not in body


async def test_duplicated_authorization_header_is_401(serve: Serve) -> None:
    """Two Authorization headers (even both right) are ambiguous: 401."""
    client = await client_with_token(serve)
    headers = [("Authorization", f"Bearer {CANARY}"), ("Authorization", f"Bearer {CANARY}")]
    async with client.get("/stats", headers=headers) as resp:
        assert resp.status == 401


async def test_several_tokens_each_accepted(serve: Serve) -> None:
    """Every configured token is accepted."""
    other = "second-token-0123456789"
    client = await serve(http_token=(CANARY, other), rate_limit=None)
    for token in (CANARY, other):
        async with client.get("/stats", headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 200


async def test_verbose_reasons_need_the_token(serve: Serve) -> None:
    """Without the token a reason reads as hidden, the same in every route; with it, shown."""
    client = await client_with_token(serve)
    hidden = "hidden: send a valid bearer token to see it"
    async with client.get("/health?verbose") as resp:
        body = await resp.json()
    pool, router = body["checks"]["pool"], body["checks"]["router"]
    assert (pool["healthy"], pool["reason"]) == (True, hidden)
    assert (router["healthy"], router["reason"]) == (True, None)  # none to hide
    async with client.get("/health/pool") as resp:
        assert (await resp.json())["reason"] == hidden
    async with client.get("/health?verbose", headers=RIGHT) as resp:
        body = await resp.json()
    assert body["checks"]["pool"]["reason"] == "no connection factory configured"
    async with client.get("/health/pool", headers=RIGHT) as resp:
        assert (await resp.json())["reason"] == "no connection factory configured"


async def test_no_token_means_open(serve: Serve) -> None:
    """Without a configured token every route is open and reasons are visible."""
    client = await serve(rate_limit=None)
    async with client.get("/stats") as resp:
        assert resp.status == 200
    async with client.get("/health/pool") as resp:
        assert (await resp.json())["reason"] == "no connection factory configured"


async def test_unauthorised_counted_and_logged_without_token(clock: FakeClock) -> None:
    """A 401 is counted and logged at info with its code; the token never reaches a log."""
    app = make_app(clock, http=True, http_token=(CANARY,), rate_limit=None)
    with structlog.testing.capture_logs() as logs:
        await app.start()
        async with aiohttp.ClientSession() as session:
            for credential in CREDENTIALS.values():
                async with session.get(f"{app.http_url}/stats", headers=credential) as resp:
                    await resp.read()
            clock.advance(app.http_settings.stats_ttl)  # let the snapshot expire
            async with session.get(f"{app.http_url}/stats/http", headers=RIGHT) as resp:
                http = await resp.json()
        await app.stop(timeout=1.0)
    denied = [e for e in logs if e.get("status") == 401]
    assert len(denied) == len(CREDENTIALS) - len(OK_CREDENTIALS)
    assert all(e["log_level"] == "info" and e["error"] == "unauthorized" for e in denied)
    assert CANARY not in repr(logs)
    assert http["auth"] == {"enabled": True, "failures_total": len(denied)}


async def test_non_loopback_without_token_warns() -> None:
    """Binding a non-loopback address with no token logs http_unauthenticated."""
    settings = HttpSettings(enable_http=True, http_host="0.0.0.0", http_port=0)
    server = HttpServer(StaticObservable(), settings)
    with structlog.testing.capture_logs() as logs:
        await server.start()
        await server.stop()
    assert [e["log_level"] for e in logs if e["event"] == "http_unauthenticated"] == ["warning"]


async def test_loopback_or_token_does_not_warn() -> None:
    """Loopback binds, and binds with a token, do not warn."""
    for settings in (
        HttpSettings(enable_http=True, http_host="127.0.0.1", http_port=0),
        HttpSettings(enable_http=True, http_host="0.0.0.0", http_port=0, http_token=(CANARY,)),
    ):
        server = HttpServer(StaticObservable(), settings)
        with structlog.testing.capture_logs() as logs:
            await server.start()
            await server.stop()
        assert not [e for e in logs if e["event"] == "http_unauthenticated"]
        assert CANARY not in repr(logs)


def test_token_never_in_settings_repr() -> None:
    """The settings' repr (as logged or printed) does not show the token."""
    assert CANARY not in repr(HttpSettings(http_token=(CANARY,)))


@pytest.mark.parametrize("bad", ["", "has space", "tab\tin", "ünicode", "new\nline"])
def test_invalid_token_rejected_without_echo(bad: str) -> None:
    """An invalid token is a ConfigError whose message does not contain it."""
    from orchestrator import ConfigError

    with pytest.raises(ConfigError) as info:
        HttpSettings(http_token=("valid-token-123", bad))
    if bad:
        assert bad not in str(info.value)


@pytest.mark.parametrize("path", ["/live", "/health", "/"], ids=["live", "health", "index"])
async def test_wrong_method_on_public_route_is_405_without_token(serve: Serve, path: str) -> None:
    """A wrong method on a public route answers 405 with Allow, token or not."""
    client = await client_with_token(serve)
    async with client.request("DELETE", path) as resp:
        assert resp.status == 405
        assert "GET" in resp.headers["Allow"]


async def test_wrong_method_on_protected_route_is_401_without_token(serve: Serve) -> None:
    """A wrong method on a protected route answers 401 to a caller without the token."""
    client = await client_with_token(serve)
    async with client.request("DELETE", "/stats") as resp:
        assert resp.status == 401
    async with client.request("DELETE", "/stats", headers=RIGHT) as resp:
        assert resp.status == 405

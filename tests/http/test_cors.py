"""CORS: allowed origins get headers and preflight answers; others get nothing."""

from __future__ import annotations

import pytest

from orchestrator.config import HttpSettings
from orchestrator.errors import ConfigError
from tests.http.helpers import Serve

DASH = "https://dash.example.com"


async def test_allowed_origin_gets_headers(serve: Serve) -> None:
    """GET from an allowed origin carries Access-Control-Allow-Origin and Vary."""
    client = await serve(cors_origins=(DASH,))
    async with client.get("/health", headers={"Origin": DASH}) as resp:
        assert resp.headers["Access-Control-Allow-Origin"] == DASH
        assert resp.headers["Vary"] == "Origin"
        assert "X-Request-ID" in resp.headers["Access-Control-Expose-Headers"]


async def test_other_origin_gets_nothing(serve: Serve) -> None:
    """An origin not in the list gets no CORS headers."""
    client = await serve(cors_origins=(DASH,))
    async with client.get("/health", headers={"Origin": "https://evil.example"}) as resp:
        assert "Access-Control-Allow-Origin" not in resp.headers


async def test_no_cors_by_default(serve: Serve) -> None:
    """Without cors_origins, no CORS headers and OPTIONS is 405."""
    client = await serve()
    async with client.get("/health", headers={"Origin": DASH}) as resp:
        assert "Access-Control-Allow-Origin" not in resp.headers
    headers = {"Origin": DASH, "Access-Control-Request-Method": "GET"}
    async with client.options("/stats", headers=headers) as resp:
        assert resp.status == 405


async def test_preflight_answered_without_token(serve: Serve) -> None:
    """A preflight from an allowed origin is 204 with the CORS headers, even with auth on."""
    client = await serve(cors_origins=(DASH,), http_token=("a-token-for-cors-1234",))
    headers = {"Origin": DASH, "Access-Control-Request-Method": "GET",
               "Access-Control-Request-Headers": "authorization"}  # fmt: skip
    async with client.options("/stats", headers=headers) as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == DASH
        assert "GET" in resp.headers["Access-Control-Allow-Methods"]
        assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]


async def test_wildcard(serve: Serve) -> None:
    """cors_origins=("*",) allows any origin with a literal *."""
    client = await serve(cors_origins=("*",))
    async with client.get("/live", headers={"Origin": "https://any.example"}) as resp:
        assert resp.headers["Access-Control-Allow-Origin"] == "*"


def test_bad_origin_rejected() -> None:
    """An origin that is not * or http(s) is a ConfigError."""
    with pytest.raises(ConfigError):
        HttpSettings(cors_origins=("dash.example.com",))

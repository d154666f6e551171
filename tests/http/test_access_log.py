"""Access log: one event per request, probes quiet, failures loud, no secrets."""

from __future__ import annotations

import logging

import pytest
import structlog

from orchestrator.log_level import LEVEL
from tests.http.helpers import CANARY, Serve


async def test_one_event_with_all_fields(serve: Serve) -> None:
    """A request logs exactly one http_request_served event with every field."""
    client = await serve()
    with structlog.testing.capture_logs() as logs:
        async with client.get("/stats/router", headers={"User-Agent": "probe/1.0"}) as resp:
            body = await resp.read()
    events = [e for e in logs if e["event"] == "http_request_served"]
    assert len(events) == 1
    event = events[0]
    assert event["log_level"] == "info"
    assert event["method"] == "GET"
    assert event["path"] == "/stats/router"
    assert event["route"] == "/stats/{section}"
    assert event["status"] == 200
    assert event["bytes"] == len(body)
    assert event["client"] == "127.0.0.1"
    assert event["user_agent"] == "probe/1.0"
    assert 0 <= event["duration_ms"] < 1000


async def test_head_is_logged_with_no_body_bytes(serve: Serve) -> None:
    """A HEAD request sends headers only, and its log line says 0 bytes."""
    client = await serve()
    with structlog.testing.capture_logs() as logs:
        async with client.head("/stats/router") as resp:
            assert resp.status == 200
            assert await resp.read() == b""
    (event,) = [e for e in logs if e["event"] == "http_request_served"]
    assert (event["method"], event["bytes"]) == ("HEAD", 0)


@pytest.mark.parametrize("path", ["/health", "/live", "/ready", "/health/workers"])
async def test_successful_probes_at_debug(serve: Serve, path: str) -> None:
    """Successful probe requests are logged at debug, not info."""
    client = await serve()
    LEVEL.configure(logging.DEBUG)  # the application set up logging at info when it started
    with structlog.testing.capture_logs() as logs:
        async with client.get(path) as resp:
            assert resp.status == 200
    assert [e["log_level"] for e in logs if e["event"] == "http_request_served"] == ["debug"]


async def test_probe_sampling(serve: Serve) -> None:
    """access_log_probe_sample=1 logs every successful probe at info."""
    client = await serve(access_log_probe_sample=1.0)
    with structlog.testing.capture_logs() as logs:
        async with client.get("/live") as resp:
            assert resp.status == 200
    assert [e["log_level"] for e in logs if e["event"] == "http_request_served"] == ["info"]


async def test_failures_logged_with_reason(serve: Serve) -> None:
    """Failed requests are logged at info with their error code."""
    client = await serve(http_token=(CANARY,))
    with structlog.testing.capture_logs() as logs:
        async with client.get("/nope", headers={"Authorization": f"Bearer {CANARY}"}) as resp:
            await resp.read()
        async with client.get("/stats") as resp:
            await resp.read()
    served = [(e["status"], e["error"], e["log_level"]) for e in logs if "status" in e]
    assert served == [(404, "not_found", "info"), (401, "unauthorized", "info")]


async def test_authorization_never_logged(serve: Serve) -> None:
    """Neither the Authorization header nor the token appears in any log event."""
    client = await serve(http_token=(CANARY,))
    with structlog.testing.capture_logs() as logs:
        for headers in (
            {"Authorization": f"Bearer {CANARY}"},
            {"Authorization": f"Bearer {CANARY}x"},
        ):
            async with client.get("/stats", headers=headers) as resp:
                assert CANARY.encode() not in await resp.read()
    assert logs
    assert CANARY not in repr(logs)
    assert "Authorization" not in repr(logs)

"""Request ids: echoed when sane, generated otherwise, on every response and log line."""

from __future__ import annotations

import pytest
import structlog
from structlog.contextvars import merge_contextvars

from tests.http.helpers import CANARY, Serve


@pytest.mark.parametrize("incoming", ["abc-123", "A.b_c-9", "x" * 128])
async def test_sane_id_echoed(serve: Serve, incoming: str) -> None:
    """A sane X-Request-ID is echoed back unchanged."""
    client = await serve()
    async with client.get("/live", headers={"X-Request-ID": incoming}) as resp:
        assert resp.headers["X-Request-ID"] == incoming


@pytest.mark.parametrize("incoming", ["x" * 129, "has space", "semi;colon", "<script>", ""])
async def test_insane_id_replaced(serve: Serve, incoming: str) -> None:
    """An id that is too long or has other characters is replaced by a generated one."""
    client = await serve()
    async with client.get("/live", headers={"X-Request-ID": incoming}) as resp:
        rid = resp.headers["X-Request-ID"]
    assert rid != incoming
    assert len(rid) <= 128


async def test_generated_ids_unique(serve: Serve) -> None:
    """Generated ids differ per request."""
    client = await serve()
    ids = set()
    for _ in range(50):
        async with client.get("/live") as resp:
            ids.add(resp.headers["X-Request-ID"])
    assert len(ids) == 50


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/live", {}, 200),
        ("GET", "/nope", {"Authorization": f"Bearer {CANARY}"}, 404),
        ("POST", "/live", {"Authorization": f"Bearer {CANARY}"}, 405),
        ("GET", "/stats", {}, 401),
        ("GET", "/stats", {"Authorization": f"Bearer {CANARY}"}, 200),
    ],
    ids=["200", "404", "405", "401", "200-auth"],
)
async def test_id_on_every_response(
    serve: Serve, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    """Every response, errors included, carries X-Request-ID; error bodies repeat it."""
    client = await serve(http_token=(CANARY,))
    async with client.request(method, path, headers=headers) as resp:
        assert resp.status == status
        rid = resp.headers["X-Request-ID"]
        if status >= 400:
            assert (await resp.json())["request_id"] == rid


async def test_id_on_429(serve: Serve) -> None:
    """A 429 carries the request id too."""
    client = await serve(rate_limit=1 / 60, rate_limit_burst=1)
    async with client.get("/stats") as resp:
        assert resp.status == 200
    async with client.get("/stats", headers={"X-Request-ID": "limited-1"}) as resp:
        assert resp.status == 429
        assert resp.headers["X-Request-ID"] == "limited-1"


async def test_log_lines_carry_request_id(serve: Serve) -> None:
    """Log lines written while serving a request carry its id (bound in structlog context)."""
    client = await serve()
    with structlog.testing.capture_logs(processors=[merge_contextvars]) as logs:
        async with client.get("/stats", headers={"X-Request-ID": "trace-me-1"}) as resp:
            assert resp.status == 200
    served = [e for e in logs if e["event"] == "http_request_served"]
    assert len(served) == 1
    assert served[0]["request_id"] == "trace-me-1"
    with structlog.testing.capture_logs(processors=[merge_contextvars]) as logs:
        structlog.get_logger().info("after_request")
    assert "request_id" not in logs[0]

"""The endpoints of the HTTP API on a real server: shapes, statuses and headers."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
import pytest

from orchestrator import Application, FakeClock, Job, PoolExhausted

COMPONENTS = ["registry", "pool", "router", "workers", "lifecycle", "recycler"]


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with session.get(url) as resp:
        body = await resp.read()
        return resp.status, orjson.loads(body) if body else None, resp


async def test_health_exact_shape_when_healthy(
    app: Application, session: aiohttp.ClientSession
) -> None:
    """GET /health answers 200 with exactly healthy, timestamp and the six components."""
    status, body, resp = await get(session, f"{app.http_url}/health")
    assert status == 200
    assert resp.content_type == "application/json"
    assert list(body) == ["healthy", "timestamp", "components"]
    assert body["healthy"] is True
    assert body["timestamp"].endswith("Z")
    assert len(body["timestamp"]) == 20
    assert body["components"] == dict.fromkeys(COMPONENTS, True)


async def test_health_503_names_the_failing_component(
    app: Application, session: aiohttp.ClientSession
) -> None:
    """Stopping the recycler loop for real turns /health 503 with recycler false, then back."""
    await app.recycler.stop()
    status, body, _ = await get(session, f"{app.http_url}/health?verbose")
    assert status == 503
    assert body["healthy"] is False
    assert body["components"]["recycler"] is False
    assert body["checks"]["recycler"]["healthy"] is False
    assert body["checks"]["recycler"]["reason"] == "recycler sweep loop is not running"
    assert all(body["components"][c] for c in COMPONENTS if c != "recycler")
    await app.recycler.start()
    status, body, _ = await get(session, f"{app.http_url}/health")
    assert (status, body["healthy"]) == (200, True)


async def test_health_503_when_pool_starved(
    clock: FakeClock, session: aiohttp.ClientSession
) -> None:
    """A waiter starved of a connection makes pool unhealthy over HTTP until the window passes."""
    release, holding = asyncio.Event(), asyncio.Event()

    class Factory:
        async def connect(self) -> object:
            return object()

        async def close(self, conn: object) -> None:
            return None

    app = Application(clock=clock, connection_factory=Factory(), pool_max_size=1,
                      enable_http=True, http_port=0, http_host="127.0.0.1")  # fmt: skip

    @app.handler("hold")
    async def hold(job: Job) -> None:
        holding.set()
        await release.wait()

    async with app:
        holder = asyncio.ensure_future(app.submit("hold"))
        await holding.wait()
        with pytest.raises(PoolExhausted, match="no connection available"):
            await app.pool.acquire(timeout=0.01)
        status, body, _ = await get(session, f"{app.http_url}/health/pool")
        assert status == 503
        assert body["healthy"] is False
        assert "timed out for a connection" in body["reason"]
        release.set()
        await holder
        clock.advance(60)
        status, body, _ = await get(session, f"{app.http_url}/health/pool")
        assert (status, body["healthy"]) == (200, True)


@pytest.mark.parametrize("name", COMPONENTS, ids=COMPONENTS)
async def test_health_component(
    app: Application, session: aiohttp.ClientSession, name: str
) -> None:
    """GET /health/{component} returns that component alone."""
    status, body, _ = await get(session, f"{app.http_url}/health/{name}")
    assert status == 200
    assert body["component"] == name
    assert body["healthy"] is True


async def test_health_unknown_component_404(
    app: Application, session: aiohttp.ClientSession
) -> None:
    """An unknown component name is a 404 naming the valid ones, never the input."""
    for name in ("database", "%3Cscript%3Ealert(1)%3C%2Fscript%3E", "x" * 3000):
        status, body, _resp = await get(session, f"{app.http_url}/health/{name}")
        assert status == 404
        assert body["error"] == "not_found"
        assert body["detail"] == (
            "no component with that name; components: " + ", ".join(COMPONENTS)
        )
        raw = orjson.dumps(body)
        assert b"script" not in raw
        assert b"xxx" not in raw
        assert b"database" not in raw


async def test_live_200_even_when_unhealthy(
    app: Application, session: aiohttp.ClientSession
) -> None:
    """/live stays 200 while a component is unhealthy; /ready turns 503 naming it."""
    await app.recycler.stop()
    status, body, _ = await get(session, f"{app.http_url}/live")
    assert (status, body) == (200, {"status": "alive"})
    status, body, _ = await get(session, f"{app.http_url}/ready")
    assert status == 503
    assert body["ready"] is False
    assert "recycler" in body["reason"]
    await app.recycler.start()


async def test_ready_200_when_running(app: Application, session: aiohttp.ClientSession) -> None:
    """/ready is 200 while running and healthy."""
    status, body, _ = await get(session, f"{app.http_url}/ready")
    assert (status, body) == (200, {"ready": True})


async def test_ready_503_live_200_while_draining(
    session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """During stop() with a job in flight, /ready is 503 (draining) and /live still 200."""
    from tests.fakes import make_app

    app = make_app(clock, http=True)
    release, started = asyncio.Event(), asyncio.Event()

    @app.handler("slow")
    async def slow(job: Job) -> str:
        started.set()
        await release.wait()
        return "done"

    await app.start()
    url = app.http_url
    job = asyncio.ensure_future(app.submit("slow"))
    await started.wait()
    stopping = asyncio.ensure_future(app.stop(timeout=5.0))
    for _ in range(100):
        if app.state == "draining":
            break
        await asyncio.sleep(0)
    assert app.state == "draining"
    status, body, resp = await get(session, f"{url}/ready")
    assert status == 503
    assert body == {"ready": False, "reason": "draining"}
    assert resp.headers["Retry-After"] == "1"  # no drain delay: at least 1 s
    status, _, _ = await get(session, f"{url}/live")
    assert status == 200
    release.set()
    assert await job == "done"
    await stopping
    assert app.http_url is None


VOLATILE = {"uptime_seconds", "started_at", "generated_at", "age_seconds", "idle_seconds",
            "requests_by_route",
            "requests_total", "snapshot", "last_sweep_at", "transitions"}  # fmt: skip


def strip_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_volatile(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [strip_volatile(v) for v in value]
    return value


async def test_stats_equals_get_stats(app: Application, session: aiohttp.ClientSession) -> None:
    """/stats has the structure and values of get_stats(), plus generated_at."""
    assert await app.submit("echo", 1) == 1
    status, body, resp = await get(session, f"{app.http_url}/stats")
    assert status == 200
    expected = app.get_stats()
    assert set(body) == set(expected) | {"generated_at"}
    assert strip_volatile(body) == strip_volatile(orjson.loads(orjson.dumps(expected)))
    assert body["registry"]["kinds"]["echo"]["succeeded_total"] == 1
    assert resp.headers["ETag"].startswith('"')


async def test_stats_pretty_indents(app: Application, session: aiohttp.ClientSession) -> None:
    """?pretty returns the same JSON indented by two spaces."""
    async with session.get(f"{app.http_url}/stats?pretty") as resp:
        text = await resp.text()
    assert text.startswith('{\n  "application": {\n    "name": "orchestrator"')
    assert orjson.loads(text)["router"]["capacity"] == 1024


@pytest.mark.parametrize(
    "section", [*COMPONENTS, "application", "http"], ids=[*COMPONENTS, "application", "http"]
)
async def test_stats_section(
    app: Application, session: aiohttp.ClientSession, section: str
) -> None:
    """GET /stats/{section} returns one section of the stats."""
    status, body, _ = await get(session, f"{app.http_url}/stats/{section}")
    assert status == 200
    assert set(body) == set(app.get_stats()[section])


async def test_stats_unknown_section_404(app: Application, session: aiohttp.ClientSession) -> None:
    """An unknown stats section (or a scalar key) is a 404 naming the sections, not the input."""
    for name in ("nope", "generated_at", "%3Cscript%3E"):
        status, body, _ = await get(session, f"{app.http_url}/stats/{name}")
        assert (status, body["error"]) == (404, "not_found")
        assert body["detail"] == (
            "no stats section with that name; sections: application, "
            + ", ".join(COMPONENTS)
            + ", http"
        )


@pytest.mark.parametrize(
    ("query", "pretty"),
    [("", False), ("?pretty", True), ("?pretty=", True), ("?pretty=1", True),
     ("?pretty=TRUE", True), ("?pretty=yes", True), ("?pretty=on", True), ("?pretty=0", False),
     ("?pretty=false", False), ("?pretty=No", False), ("?pretty=off", False)],
    ids=lambda v: repr(v),
)  # fmt: skip
async def test_flags_are_parsed_not_just_present(
    app: Application, session: aiohttp.ClientSession, query: str, pretty: bool
) -> None:
    """?pretty=0 and ?pretty=false are off; empty, 1, true, yes and on are on."""
    async with session.get(f"{app.http_url}/stats/router{query}") as resp:
        assert resp.status == 200
        assert (b"\n  " in await resp.read()) is pretty


@pytest.mark.parametrize("path", ["/stats?pretty=2", "/health?verbose=maybe", "/?pretty=<b>"])
async def test_a_flag_with_another_value_is_a_400(
    app: Application, session: aiohttp.ClientSession, path: str
) -> None:
    """Any other flag value is a 400 that says what is accepted and repeats nothing."""
    status, body, _ = await get(session, f"{app.http_url}{path}")
    assert (status, body["error"]) == (400, "bad_request")
    assert "0, false, no or off" in body["detail"]
    assert "maybe" not in body["detail"]
    assert "<b>" not in body["detail"]


async def test_verbose_false_adds_no_checks(
    app: Application, session: aiohttp.ClientSession
) -> None:
    """?verbose=false is the plain health answer."""
    _, body, _ = await get(session, f"{app.http_url}/health?verbose=false")
    assert "checks" not in body


@pytest.mark.parametrize("token", [False, True], ids=["no-token", "token"])
async def test_index_lists_every_route_of_the_router(
    clock: FakeClock, session: aiohttp.ClientSession, token: bool
) -> None:
    """GET / names every route the server's router has (enumerated, not a list), and no other."""
    from tests.fakes import make_app
    from tests.http.helpers import CANARY

    app = make_app(clock, http=True, http_token=(CANARY,) if token else ())
    await app.start()
    try:
        headers = {"Authorization": f"Bearer {CANARY}"} if token else {}
        async with session.get(f"{app.http_url}/", headers=headers) as resp:
            body = await resp.json()
        routes = app.http_server.routes()
    finally:
        await app.stop(timeout=1.0)
    assert set(body["endpoints"]) == routes
    assert "/metrics" in routes
    assert ("/admin/drain" in routes) is token
    assert all(body["endpoints"][path] for path in routes)  # each says what it serves


PATHS = ["/", "/health", "/health/pool", "/live", "/ready", "/stats", "/stats/router"]


@pytest.mark.parametrize("path", PATHS, ids=PATHS)
async def test_head_matches_get(
    app: Application, session: aiohttp.ClientSession, path: str
) -> None:
    """HEAD answers like GET: same status and content type, no body."""
    async with session.get(f"{app.http_url}{path}") as resp:
        get_status, get_type = resp.status, resp.content_type
    async with session.head(f"{app.http_url}{path}") as resp:
        assert resp.status == get_status
        assert resp.content_type == get_type
        assert await resp.read() == b""


async def test_unknown_path_404_json(app: Application, session: aiohttp.ClientSession) -> None:
    """An unknown path is 404 JSON with error not_found, never HTML."""
    async with session.get(f"{app.http_url}/does/not/exist") as resp:
        assert resp.status == 404
        assert resp.content_type == "application/json"
        body = await resp.json()
    assert body["error"] == "not_found"
    assert "does/not/exist" not in str(body)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_wrong_method_405_json_with_allow(
    app: Application, session: aiohttp.ClientSession, method: str
) -> None:
    """A wrong method is 405 JSON with an Allow header."""
    async with session.request(method, f"{app.http_url}/health") as resp:
        assert resp.status == 405
        assert resp.content_type == "application/json"
        assert set(resp.headers["Allow"].split(",")) == {"GET", "HEAD"}
        assert (await resp.json())["error"] == "method_not_allowed"


async def test_requests_counted_by_status_class(
    app: Application, session: aiohttp.ClientSession
) -> None:
    """get_stats()["http"]["requests_total"] counts responses by status class."""
    before = app.get_stats()["http"]["requests_total"]
    await get(session, f"{app.http_url}/live")
    await get(session, f"{app.http_url}/nope")
    after = app.get_stats()["http"]["requests_total"]
    assert after["2xx"] - before["2xx"] == 1
    assert after["4xx"] - before["4xx"] == 1
    http = app.get_stats()["http"]
    assert http["state"] == "running"
    assert http["port"] == app.http_port

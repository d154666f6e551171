"""Draining: readiness turns 503 first while the server answers; admin drain; hurry."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
import structlog

from orchestrator import FakeClock, Job, NotRunning
from orchestrator.components.lifecycle import State
from tests.fakes import make_app, until
from tests.http.helpers import CANARY, Serve

AUTH = {"Authorization": f"Bearer {CANARY}"}


async def status(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, str]]:
    async with session.get(url) as resp:
        await resp.read()
        return resp.status, dict(resp.headers)


async def test_drain_delay_keeps_serving_with_ready_503(
    clock: FakeClock, session: aiohttp.ClientSession
) -> None:
    """For drain_delay, /ready is 503 with the drain time left as Retry-After, /live 200.

    The drain's 503s are expected: logged at info, not warning. Then HTTP stops.
    """
    app = make_app(clock, http=True, drain_delay=5.0)
    await app.start()
    url = app.http_url
    stopping = asyncio.ensure_future(app.stop(timeout=1.0))
    await until(lambda: clock.sleepers >= 2)  # recycler loop + the drain delay
    assert app.state is State.DRAINING
    with structlog.testing.capture_logs() as logs:
        ready, headers = await status(session, f"{url}/ready")
    assert ready == 503
    assert headers["Retry-After"] == "5"
    (served,) = [e for e in logs if e["event"] == "http_request_served"]
    assert (served["status"], served["log_level"]) == (503, "info")
    assert (await status(session, f"{url}/live"))[0] == 200
    assert (await status(session, f"{url}/health"))[0] == 503  # lifecycle is draining
    clock.advance(3.2)
    assert (await status(session, f"{url}/ready"))[1]["Retry-After"] == "2"  # 1.8 s left
    clock.advance(1.7)
    await asyncio.sleep(0)
    assert not stopping.done()
    assert (await status(session, f"{url}/ready"))[1]["Retry-After"] == "1"  # 0.1 s left
    assert (await status(session, f"{url}/live"))[0] == 200
    clock.advance(0.1)
    await stopping
    assert app.get_stats()["application"]["state"] == "stopped"
    assert app.http_url is None


async def test_hurry_cuts_the_drain_short(clock: FakeClock) -> None:
    """hurry() ends the drain at once; a job still running gets NotRunning."""
    app = make_app(clock, http=True, drain_delay=300.0)
    started = asyncio.Event()

    @app.handler("forever", timeout=None)
    async def forever(job: Job) -> None:
        started.set()
        await asyncio.Event().wait()

    await app.start()
    job = asyncio.ensure_future(app.submit("forever"))
    await started.wait()
    stopping = asyncio.ensure_future(app.stop(timeout=300.0))
    await until(lambda: app.state is State.DRAINING)
    app.hurry()
    async with asyncio.timeout(5):
        await stopping
    with pytest.raises(NotRunning):
        await job
    assert app.state is State.STOPPED


async def test_admin_drain_and_undrain(serve: Serve) -> None:
    """POST /admin/drain turns readiness 503 (health unchanged); /admin/undrain restores it."""
    client = await serve(http_token=(CANARY,))
    async with client.post("/admin/drain") as resp:
        assert resp.status == 401
    async with client.post("/admin/drain", headers=AUTH) as resp:
        assert (resp.status, await resp.json()) == (200, {"draining": True})
    async with client.get("/ready") as resp:
        assert resp.status == 503
        assert (await resp.json())["reason"] == "draining"
        assert "Retry-After" not in resp.headers  # an admin drain has no announced end
    async with client.get("/health") as resp:
        assert resp.status == 200
    async with client.get("/live") as resp:
        assert resp.status == 200
    async with client.post("/admin/undrain", headers=AUTH) as resp:
        assert (resp.status, await resp.json()) == (200, {"draining": False})
    async with client.get("/ready") as resp:
        assert resp.status == 200
    async with client.get("/admin/drain", headers=AUTH) as resp:
        assert resp.status == 405


async def test_admin_routes_absent_without_token(serve: Serve) -> None:
    """Without a configured token the admin routes do not exist (404)."""
    client = await serve()
    for path in ("/admin/drain", "/admin/undrain"):
        async with client.post(path) as resp:
            assert resp.status == 404
    async with client.get("/ready") as resp:
        assert resp.status == 200

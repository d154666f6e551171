"""deploy/prometheus/blackbox.yml with a real blackbox_exporter probing a real application."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator import Application, FakeClock
from orchestrator.components.lifecycle import State
from tests.fakes import make_app, until
from tests.ops.deploy_files import BLACKBOX, require_binary
from tests.ops.test_prometheus_scrape import free_port

DEADLINE_SECONDS = 20.0


@pytest.fixture
async def exporter(tmp_path: Path) -> AsyncIterator[str]:
    """blackbox_exporter on 127.0.0.1 with deploy/prometheus/blackbox.yml; yields its URL."""
    binary = require_binary("prometheus-blackbox-exporter")
    port = free_port()
    log = tmp_path / "blackbox.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            binary, f"--config.file={BLACKBOX}", f"--web.listen-address=127.0.0.1:{port}",
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            deadline = asyncio.get_running_loop().time() + DEADLINE_SECONDS
            while True:  # poll a real process until it listens, with a deadline
                try:
                    async with session.get(f"{url}/-/healthy") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                assert process.returncode is None, log.read_text()
                assert asyncio.get_running_loop().time() < deadline, log.read_text()
                await asyncio.sleep(0.1)  # sleep-ok: polling a real exporter process
        yield url
    finally:
        process.terminate()
        async with asyncio.timeout(15):
            await process.wait()


async def probe(exporter: str, module: str, target: str) -> dict[str, float]:
    """The samples of one ``/probe`` of ``target`` with ``module``, by name."""
    params = {"module": module, "target": target}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{exporter}/probe", params=params) as resp,
    ):
        assert resp.status == 200
        text = await resp.text()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


@pytest.mark.slow
async def test_probes_succeed_when_healthy_and_fail_while_draining(exporter: str) -> None:
    """probe_success is 1 for /health and /ready while healthy, 0 for both while draining."""
    clock = FakeClock()
    app: Application = make_app(clock, http=True, drain_delay=60.0)
    await app.start()
    stopping = None
    try:
        base = app.http_url
        for module, path in (("orchestrator_health", "/health"), ("orchestrator_ready", "/ready")):
            got = await probe(exporter, module, f"{base}{path}")
            assert (got["probe_success"], got["probe_http_status_code"]) == (1, 200), module
        stopping = asyncio.ensure_future(app.stop(timeout=1.0))
        await until(lambda: app.state is State.DRAINING)
        for module, path in (("orchestrator_health", "/health"), ("orchestrator_ready", "/ready")):
            got = await probe(exporter, module, f"{base}{path}")
            assert (got["probe_success"], got["probe_http_status_code"]) == (0, 503), module
    finally:
        if stopping is None:
            stopping = asyncio.ensure_future(app.stop(timeout=1.0))
        await until(lambda: clock.sleepers >= 1)
        clock.advance(60.0)
        await stopping

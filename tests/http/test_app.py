"""The HTTP layer's one assembly point: what a layer keeps, what each assembly makes."""

from __future__ import annotations

import aiohttp
import pytest

from orchestrator import FakeClock
from orchestrator.config import HttpSettings
from orchestrator.http.app import HttpLayer
from orchestrator.http.keys import SNAPSHOT, STATE
from orchestrator.http.server import HttpServer
from tests.http.helpers import FixedHealth


@pytest.mark.parametrize("fast", [True, False], ids=["fast-probes", "no-fast-probes"])
def test_each_assembly_is_a_new_app_over_the_layers_state(fast: bool) -> None:
    """Two assemblies: two applications (a server starts with a fresh one), one state,
    one snapshot cache; the fast path is a part only when ``fast_probes`` is on."""
    layer = HttpLayer(FixedHealth(True), HttpSettings(fast_probes=fast), clock=FakeClock())
    first, second = layer.assemble(), layer.assemble()
    assert first.app is not second.app
    for parts in (first, second):
        assert parts.app[STATE] is layer.state
        assert parts.app[SNAPSHOT] is layer.snapshot
        assert (parts.fast_probes is not None) is fast
    if fast:
        assert first.fast_probes is not second.fast_probes


async def test_a_restarted_server_keeps_its_counters() -> None:
    """Stopped and started again, a server serves a new application but counts on, and
    serves from the same snapshot (one build: the fake clock stands still)."""
    settings = HttpSettings(http_host="127.0.0.1", http_port=0)
    server = HttpServer(FixedHealth(True), settings, clock=FakeClock())
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            await server.start()
            try:
                async with session.get(f"{server.url}/stats/service") as resp:
                    assert resp.status == 404  # FixedHealth has no stats sections
            finally:
                await server.stop()
    assert server.stats()["requests_by_route"]["/stats/{section}"]["4xx"] == 2
    assert server.stats()["snapshot"]["misses_total"] == 1

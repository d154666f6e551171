"""GET /metrics: Prometheus names and values from the snapshot, rendered once, negotiated."""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import subprocess

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator import Application, FakeClock
from orchestrator.http.metric_table import (
    LABELLED,
    PER_ITEM,
    SCALARS,
    Labelled,
    PerItem,
    Scalar,
)
from orchestrator.http.metrics import MetricsRenderer, read
from orchestrator.http.snapshot import Snapshot
from tests.fakes import make_app
from tests.http.helpers import CANARY, Serve


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as {(name, sorted labels): value}."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


async def scrape(session: aiohttp.ClientSession, app: Application, **headers: str) -> str:
    async with session.get(f"{app.http_url}/metrics", headers=headers) as resp:
        assert resp.status == 200
        return await resp.text()


async def test_values_match_get_stats(clock: FakeClock, session: aiohttp.ClientSession) -> None:
    """Counters, gauges and the latency histogram carry get_stats()'s values."""
    app = make_app(clock, http=True, workers=3, queue_size=64)
    await app.start()
    try:
        for i in range(7):
            assert await app.submit("echo", i) == i
        await app.recycler.stop()  # a real unhealthy component
        got = samples(await scrape(session, app))
        stats = app.get_stats()
        echo = stats["registry"]["kinds"]["echo"]
        assert got["orchestrator_jobs_succeeded_total", (("kind", "echo"),)] == 7
        assert got["orchestrator_jobs_submitted_total", (("kind", "echo"),)] == 7
        assert got["orchestrator_job_duration_seconds_count", (("kind", "echo"),)] == 7
        assert (
            got["orchestrator_job_duration_seconds_bucket", (("kind", "echo"), ("le", "+Inf"))] == 7
        )
        assert got["orchestrator_job_duration_seconds_sum", (("kind", "echo"),)] == pytest.approx(
            echo["latency_seconds"]["sum"]
        )
        assert got["orchestrator_workers_configured", ()] == 3
        assert got["orchestrator_workers_alive", ()] == stats["workers"]["alive"]
        assert got["orchestrator_queue_capacity", ()] == 64
        assert got["orchestrator_component_healthy", (("component", "recycler"),)] == 0
        assert got["orchestrator_component_healthy", (("component", "workers"),)] == 1
        assert got["orchestrator_healthy", ()] == 0
        assert got["orchestrator_application_state", (("state", "running"),)] == 1
        assert got["orchestrator_application_state", (("state", "stopped"),)] == 0
        assert got["orchestrator_build_info", (("name", "orchestrator"), ("version", "0.1.0"))] == 1
        assert ("process_resident_memory_bytes", ()) in got
        await app.recycler.start()
    finally:
        await app.stop(timeout=1.0)


async def test_recycle_counters_exist_from_the_start(
    clock: FakeClock, session: aiohttp.ClientSession
) -> None:
    """Before any recycle, every reason is exported at 0, so rate() and alerts see a series."""
    app = make_app(clock, http=True)
    await app.start()
    try:
        got = samples(await scrape(session, app))
    finally:
        await app.stop(timeout=1.0)
    for family, reasons in (("workers", ("max_jobs", "max_age")),
                            ("connections", ("max_uses", "max_age", "idle_timeout"))):  # fmt: skip
        for reason in reasons:
            assert got[f"orchestrator_recycled_{family}_total", (("reason", reason),)] == 0


async def test_scrapes_share_one_snapshot_and_one_rendering(
    clock: FakeClock, session: aiohttp.ClientSession
) -> None:
    """Within the TTL, many scrapes and /stats reads cost one build and one rendering."""
    app = make_app(clock, http=True)
    await app.start()
    try:
        await scrape(session, app)
        before = app.http_server.snapshot.misses_total
        bodies = await asyncio.gather(*(scrape(session, app) for _ in range(20)))
        async with session.get(f"{app.http_url}/stats") as resp:
            assert resp.headers["X-Cache"] == "hit"
        assert app.http_server.snapshot.misses_total == before
        assert len(set(bodies)) == 1
        clock.advance(app.http_settings.stats_ttl)
        await scrape(session, app)
        assert app.http_server.snapshot.misses_total == before + 1
    finally:
        await app.stop(timeout=1.0)


async def test_unknown_paths_share_one_route_label(
    clock: FakeClock, session: aiohttp.ClientSession
) -> None:
    """Random 404 paths are counted under route="other": they add no series."""
    app = make_app(clock, http=True)
    await app.start()
    try:
        for i in range(25):
            async with session.get(f"{app.http_url}/random-{i}") as resp:
                assert resp.status == 404
        clock.advance(app.http_settings.stats_ttl)
        got = samples(await scrape(session, app))
        routes = {
            dict(labels)["route"]
            for name, labels in got
            if name == "orchestrator_http_requests_total"
        }
        assert "other" in routes
        assert not [r for r in routes if "random" in r]
        assert (
            got["orchestrator_http_requests_total", (("route", "other"), ("status_class", "4xx"))]
            == 25
        )
    finally:
        await app.stop(timeout=1.0)


async def test_openmetrics_and_gzip(clock: FakeClock, session: aiohttp.ClientSession) -> None:
    """Accept picks OpenMetrics; Accept-Encoding: gzip compresses the same exposition."""
    app = make_app(clock, http=True)
    await app.start()
    try:
        om = "application/openmetrics-text; version=1.0.0"
        async with session.get(f"{app.http_url}/metrics", headers={"Accept": om}) as resp:
            assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
            assert (await resp.text()).endswith("# EOF\n")
        plain = await scrape(session, app, **{"Accept-Encoding": "identity"})
        async with session.get(
            f"{app.http_url}/metrics", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
        ) as resp:
            assert resp.headers["Content-Encoding"] == "gzip"
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert gzip.decompress(await resp.read()).decode() == plain
    finally:
        await app.stop(timeout=1.0)


async def test_per_item_series_are_opt_in(clock: FakeClock, session: aiohttp.ClientSession) -> None:
    """Per-worker series appear only with metrics_per_item=True."""
    for per_item in (False, True):
        app = make_app(clock, http=True, workers=2, metrics_per_item=per_item)
        await app.start()
        try:
            names = {name for name, _ in samples(await scrape(session, app))}
            assert ("orchestrator_worker_jobs_total" in names) is per_item
        finally:
            await app.stop(timeout=1.0)


async def test_metrics_need_the_token(serve: Serve) -> None:
    """With a token, /metrics answers 401 without it and 200 with it."""
    client = await serve(http_token=(CANARY,))
    async with client.get("/metrics") as resp:
        assert resp.status == 401
    async with client.get("/metrics", headers={"Authorization": f"Bearer {CANARY}"}) as resp:
        assert resp.status == 200


async def test_promtool_accepts_the_exposition(
    clock: FakeClock, session: aiohttp.ClientSession
) -> None:
    """`promtool check metrics` finds no problem in the exposition."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is required in CI (.ci/run installs Debian's prometheus)")
        pytest.skip("promtool not installed")
    app = make_app(clock, http=True, metrics_per_item=True)
    await app.start()
    try:
        await app.submit("echo", 1)
        clock.advance(app.http_settings.stats_ttl)
        text = await scrape(session, app)
    finally:
        await app.stop(timeout=1.0)
    proc = await asyncio.create_subprocess_exec(
        promtool, "check", "metrics", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    async with asyncio.timeout(30):
        out, _ = await proc.communicate(text.encode())
    assert proc.returncode == 0, out.decode()
    assert out.decode().strip() == ""


def test_every_table_path_is_in_a_real_snapshot() -> None:
    """Each metric of the tables reads a value that a real application's stats have."""
    app = Application(enable_http=True, source="redis://127.0.0.1:1/0?stream=s&group=g")
    stats = app.get_stats()  # a source added, never started: no connection is made
    specs: list[Scalar | Labelled | PerItem] = [*SCALARS, *LABELLED, *PER_ITEM]
    for spec in specs:
        read(stats, spec.path)  # raises KeyError, naming the path, when it is not there


def test_a_renamed_stats_key_fails_the_scrape_loudly() -> None:
    """A key the table names but the snapshot lacks is an error, never a silent zero."""
    stats = Application().get_stats()
    stats["router"]["depth"] = stats["router"].pop("queued")
    renderer = MetricsRenderer(Application(), process=False)
    with pytest.raises(KeyError, match=r"stats have no router\.queued"):
        renderer.render(Snapshot(stats, 0.0, 0.0, 0.0), "", False)


def test_another_observable_exports_what_it_has() -> None:
    """Sections the snapshot does not have are skipped: any Observable can be scraped."""
    renderer = MetricsRenderer(Application(), process=False)
    body, _ = renderer.render(Snapshot({"service": {"up": True}}, 0.0, 0.0, 0.0), "", False)
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert "orchestrator_healthy" in names
    assert "orchestrator_queue_depth" not in names

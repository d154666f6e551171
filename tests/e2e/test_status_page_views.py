"""The status page at a desktop width (1280 px) and a phone width (390 px), in Chromium.

Each test runs at both widths: what an operator must see (a drain told apart from a stop,
intentional 503s apart from errors, a long health reason, every table column, the pool
against its limit) must hold on either.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from orchestrator import Application, ComponentHealth, Job, JobFailed
from tests.e2e.browser import DevTools
from tests.e2e.demo import DemoFactory

pytestmark = pytest.mark.slow

TOKEN = "e2e-token-4f1c9b"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WIDTHS = [1280, 390]


@pytest.fixture(params=WIDTHS, ids=[f"{w}px" for w in WIDTHS])
async def page(
    request: pytest.FixtureRequest, chromium: str, tmp_path: Path
) -> AsyncIterator[DevTools]:
    """Headless Chromium whose viewport is 1280x800, or 390x844 like a phone."""
    devtools = await DevTools.launch(chromium, tmp_path / "profile")
    if request.param == 390:
        await devtools.viewport(390, 844, mobile=True)
    yield devtools
    await devtools.close()


def js(value: str) -> str:
    return json.dumps(value)


async def open_with_token(page: DevTools, app: Application) -> None:
    """Open the page with the token in the tab's storage, as the token form leaves it."""
    assert app.http_url is not None
    await page.open(app.http_url + "/")
    await page.evaluate(f"sessionStorage.setItem('orchestrator.status.token', {js(TOKEN)})")
    await page.evaluate("window.before = true")
    await page.call("Page.reload")
    await page.wait_for("!window.before && document.readyState === 'complete'")
    await page.wait_for("document.querySelectorAll('#workers-table tbody tr').length > 0")
    await page.evaluate(  # poll every second, as a user would choose it
        "(() => { const s = document.getElementById('interval'); s.value = '1';"
        " s.dispatchEvent(new Event('change')); })()"
    )


async def fact(page: DevTools, term: str) -> tuple[str, str]:
    """The value and the class of one entry of the HTTP card."""
    found: list[str] = await page.evaluate(
        "(() => { const d = [...document.querySelectorAll('#http-facts div')]"
        f".find(d => d.querySelector('dt').textContent === {js(term)});"
        " return d ? [d.querySelector('dd').textContent, d.className] : null; })()"
    )
    return found[0], found[1]


async def test_an_admin_drain_is_not_a_stop_and_its_503s_are_no_errors(
    demo: DemoFactory, page: DevTools
) -> None:
    """After POST /admin/drain the banner says out of rotation, not "will stop"; the 503s of
    /ready are counted apart from server errors. A real stop then says it will stop."""
    app = await demo(http_token=TOKEN, drain_delay=30.0)
    await open_with_token(page, app)
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{app.http_url}/admin/drain", headers=AUTH) as resp,
    ):
        assert resp.status == 200
    banner = await page.wait_for(
        "!document.getElementById('draining').hidden"
        " && document.getElementById('draining').textContent"
    )
    assert banner.startswith("Out of rotation: drained by an operator")
    assert "will stop" not in banner
    await page.wait_for(
        "[...document.querySelectorAll('#http-facts dt')].some(dt => dt.textContent.startsWith("
        "'503 verdicts') && Number(dt.nextSibling.textContent.replace(/,/g, '')) > 0)"
    )
    errors, errors_class = await fact(page, "5xx errors")
    verdicts, verdicts_class = await fact(page, "503 verdicts (health, ready)")
    assert (errors, errors_class) == ("0", "")
    assert int(verdicts.replace(",", "")) > 0
    assert verdicts_class == "verdict"  # muted, not red
    assert await page.evaluate(
        "getComputedStyle(document.querySelector('#http-facts .verdict dd')).color"
    ) != await page.evaluate("getComputedStyle(document.querySelector('.banner-error')).color")

    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{app.http_url}/admin/undrain", headers=AUTH) as resp,
    ):
        assert resp.status == 200
    await page.wait_for("document.getElementById('draining').hidden")
    stopping = asyncio.ensure_future(app.stop(timeout=5.0))
    banner = await page.wait_for(
        "!document.getElementById('draining').hidden"
        " && document.getElementById('draining').textContent"
    )
    assert banner.startswith("Draining:")
    assert "will stop" in banner
    app.hurry()
    await stopping
    assert await page.problems() == []


LONG_REASON = (
    "connection factory failed 3 times in a row (last: ConnectionRefusedError); the backend "
    "at db-primary.internal:5432 refused every connection for the last 45 seconds"
)


async def test_a_long_health_reason_wraps_and_shows_whole_on_focus(
    demo: DemoFactory, page: DevTools
) -> None:
    """The reason wraps inside the card (nothing clipped sideways); focus shows all of it."""
    app = await demo()
    app.pool.health = lambda: ComponentHealth.failing(LONG_REASON)  # type: ignore[method-assign]
    assert app.http_url is not None
    await page.open(app.http_url + "/")
    reason = "document.querySelector('tr[data-component=pool] .reason-text')"
    await page.wait_for(f"{reason} && {reason}.textContent === {js(LONG_REASON)}")
    assert await page.evaluate(f"{reason}.title") == LONG_REASON
    card = "document.getElementById('health').getBoundingClientRect()"
    box = f"{reason}.getBoundingClientRect()"
    assert await page.evaluate(f"{box}.right <= {card}.right + 0.5")
    assert await page.evaluate(f"{reason}.scrollWidth <= {reason}.clientWidth")  # wrapped
    assert await page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    await page.call("Emulation.setFocusEmulationEnabled", enabled=True)  # headless has no focus
    await page.evaluate(f"{reason}.focus()")
    assert await page.evaluate(f"document.activeElement === {reason}")
    assert await page.evaluate(f"{reason}.scrollHeight <= {reason}.clientHeight + 1")  # all lines
    assert await page.problems() == []


async def test_every_column_is_on_screen(demo: DemoFactory, page: DevTools) -> None:
    """Each cell of the jobs and workers tables is within the viewport and named.

    At 390 px the rows are stacked, each cell labelled with its column; at 1280 px the tables
    fit their cards. Workers keep Age and Last error either way.
    """
    app = await demo()
    assert app.http_url is not None
    await page.open(app.http_url + "/")
    await page.wait_for("document.querySelectorAll('#kinds-table tbody tr[data-kind]').length >= 3")
    width = await page.evaluate("innerWidth")
    offscreen = await page.evaluate(
        "[...document.querySelectorAll('#kinds-table tbody tr, #workers-table tbody tr')]"
        ".flatMap(tr => [...tr.children]).filter(c => { const r = c.getBoundingClientRect();"
        f" return r.width === 0 || r.left < -0.5 || r.right > {width} + 0.5; }})"
        ".map(c => c.dataset.label)"
    )
    assert offscreen == []
    labels = await page.evaluate(
        "[...document.querySelector('#workers-table tbody tr').children].map(c => c.dataset.label)"
    )
    assert {"Age", "Last error", "Running for"} <= set(labels)
    kind_labels = await page.evaluate(
        "[...document.querySelector('#kinds-table tbody tr').children].map(c => c.dataset.label)"
    )
    assert {"Succeeded", "Failed", "p50", "p99"} <= set(kind_labels)
    if width == 390:
        shown = await page.evaluate(
            "getComputedStyle(document.querySelector('#kinds-table tbody td'), '::before').content"
        )
        assert shown == '"Last 5 minutes"'  # the column's name, next to its value
    else:
        for table in ("kinds-table", "workers-table"):
            wrap = f"document.getElementById({js(table)}).parentElement"
            assert await page.evaluate(f"{wrap}.scrollWidth <= {wrap}.clientWidth"), table
    assert await page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    assert await page.problems() == []


async def test_the_pool_chart_is_drawn_against_its_limit(demo: DemoFactory, page: DevTools) -> None:
    """With 2 of 8 connections in use the chart is a quarter full, not full."""
    app = await demo(pool_max_size=8)
    gate = asyncio.Event()

    @app.handler("hold", timeout=None)
    async def hold(job: Job) -> None:
        await gate.wait()

    jobs = [asyncio.ensure_future(app.submit("hold")) for _ in range(2)]
    try:
        assert app.http_url is not None
        await page.open(app.http_url + "/")
        await page.evaluate(
            "(() => { const s = document.getElementById('interval'); s.value = '1';"
            " s.dispatchEvent(new Event('change')); })()"
        )
        line = "document.querySelector('#pool-spark polyline')"
        points = await page.wait_for(f"{line} && {line}.getAttribute('points')", timeout=20)
        ys = [float(p.split(",")[1]) for p in points.split()]
        height = 24
        quarter = height - 1.5 - 2 * (height - 3) / 8  # y of 2 in use out of 8
        assert min(ys) == pytest.approx(quarter, abs=0.2), points
        label = await page.evaluate(
            "document.querySelector('#pool-spark svg').getAttribute('aria-label')"
        )
        assert label.endswith("out of 8")
        assert await page.problems() == []
    finally:
        gate.set()
        await asyncio.gather(*jobs)


async def test_jobs_in_flight_and_recent_failures_with_the_token(
    demo: DemoFactory, page: DevTools
) -> None:
    """With the token the page lists the jobs in flight (from /debug/jobs) and the recent
    failures with their message; the tables fit the screen."""
    app = await demo(http_token=TOKEN)
    started = asyncio.Event()
    release = asyncio.Event()

    @app.handler("hold", timeout=None)
    async def hold(job: Job) -> None:
        started.set()
        await release.wait()

    @app.handler("db", retries=0)
    async def db(job: Job) -> None:
        raise ConnectionError("db down: connection refused by 10.0.0.7:5432")

    with pytest.raises(JobFailed):
        await app.submit("db")
    held = asyncio.ensure_future(app.submit("hold"))
    await started.wait()

    await open_with_token(page, app)
    row = await page.wait_for(
        "[...document.querySelectorAll('#failures-table tbody tr')].map(r => r.textContent)"
        ".find(t => t.includes('db down')) || false"
    )
    assert "ConnectionError" in row
    assert "10.0.0.7:5432" in row
    running = await page.wait_for(
        "[...document.querySelectorAll('#inflight-table tbody tr')].map(r => r.textContent)"
        ".find(t => t.includes('hold')) || false"
    )
    assert "running" in running
    assert await page.evaluate("document.getElementById('inflight').hidden") is False
    assert await page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    assert await page.problems() == []

    release.set()
    await held
    await page.wait_for(
        "document.querySelector('#inflight-table tbody').textContent.includes('No job in flight')"
    )


async def test_no_jobs_tables_where_the_server_has_no_token(
    demo: DemoFactory, page: DevTools
) -> None:
    """Where the server has no token /debug does not exist: a token left in the tab's storage
    makes the page ask once, get a 404, and show no job tables."""
    app = await demo()
    await open_with_token(page, app)
    await page.wait_for("document.getElementById('jobs-completed').textContent !== ''")
    assert await page.evaluate("document.getElementById('inflight').hidden")
    assert await page.evaluate("document.getElementById('failures').hidden")
    assert app.get_stats()["http"]["requests_by_route"]["other"]["4xx"] >= 1  # it asked

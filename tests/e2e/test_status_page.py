"""The status page in a real headless Chromium, against the demo application."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import aiohttp
import pytest

from orchestrator import Application
from tests.e2e.browser import DevTools, Node, parse_html, run_chromium
from tests.e2e.demo import DemoFactory

pytestmark = pytest.mark.slow

COMPONENTS = ("registry", "pool", "router", "workers", "lifecycle", "recycler")
TOKEN = "e2e-token-4f1c9b"
BUDGET = "--virtual-time-budget=5000"
"""Five seconds of page time (timers fast-forwarded; network waits are real)."""


def page_url(app: Application) -> str:
    assert app.http_url is not None
    return app.http_url + "/"


async def load(chromium: str, profile: Path, url: str) -> Node:
    """The page's DOM after its script ran for the virtual time budget."""
    out, _ = await run_chromium(chromium, profile, BUDGET, "--dump-dom", url)
    return parse_html(out)


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


async def test_page_shows_health_and_jobs_then_a_failing_component(
    chromium: str, demo: DemoFactory, tmp_path: Path
) -> None:
    """The page lists the six components healthy and the job count; a stopped recycler shows."""
    app = await demo()
    done = app.get_stats()["workers"]["jobs_completed_total"]
    assert done > 0

    dom = await load(chromium, tmp_path / "profile-1", page_url(app))

    for name in COMPONENTS:
        row = dom.find(data_component=name)
        assert row.attrs["data-healthy"] == "true", row.text
        assert row.text.startswith(f"{name} healthy")
    assert dom.find(id="overall").text == "Healthy"
    assert dom.find(id="jobs-completed").text == f"{done:,}"
    assert dom.find(id="app-state").text == "running"
    assert dom.find(id="ready").text == "ready"
    io = dom.find(data_kind="io")
    assert io.find(role="img").tag == "svg"  # its sparkline
    rows = [n for n in dom.find(id="workers-table").iter() if n.tag == "tr"]
    assert len(rows) == 1 + app.settings.workers  # the header row and one per worker

    await app.recycler.stop()
    dom = await load(chromium, tmp_path / "profile-2", page_url(app))

    recycler = dom.find(data_component="recycler")
    assert recycler.attrs["data-healthy"] == "false"
    assert "unhealthy" in recycler.text
    assert "recycler sweep loop is not running" in recycler.text
    for name in set(COMPONENTS) - {"recycler"}:
        assert dom.find(data_component=name).attrs["data-healthy"] == "true"
    assert dom.find(id="overall").text == "Unhealthy: recycler"
    ready = dom.find(id="ready")
    assert ready.text == "not ready: unhealthy"
    assert ready.attrs["title"] == "unhealthy: recycler: recycler sweep loop is not running"

    shot = tmp_path / "status.png"
    await run_chromium(chromium, tmp_path / "profile-3", BUDGET, "--window-size=1280,800",
                       f"--screenshot={shot}", page_url(app))  # fmt: skip
    assert png_size(shot.read_bytes()) == (1280, 800)


async def test_page_is_public_while_stats_need_the_token(demo: DemoFactory) -> None:
    """With a token the page and its assets load without it; /stats still answers 401."""
    app = await demo(http_token=TOKEN)
    base = app.http_url
    html = {"Accept": "text/html"}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/", headers=html) as page:
            assert page.status == 200
            assert page.content_type == "text/html"
        for asset in ("/static/status.css", "/static/status.js"):
            async with session.get(f"{base}{asset}") as response:
                assert response.status == 200, asset
        async with session.get(f"{base}/stats") as stats:
            assert stats.status == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        async with session.get(f"{base}/stats", headers=bearer) as stats:
            assert stats.status == 200


async def test_token_form_asks_again_after_a_wrong_token(
    demo: DemoFactory, browser: DevTools
) -> None:
    """The page asks for the token, says so when it is wrong, and shows data with the right one."""
    app = await demo(http_token=TOKEN)
    await browser.open(page_url(app))

    await browser.wait_for("!document.getElementById('auth').hidden")
    message = await browser.evaluate("document.getElementById('auth-message').textContent")
    assert message == "This server needs a bearer token to show its statistics."
    assert await browser.evaluate("document.activeElement.id") == "token-input"
    assert await browser.evaluate("getComputedStyle(document.getElementById('workers')).display")\
        == "none"  # fmt: skip
    # Health stays public meanwhile.
    await browser.wait_for("document.getElementById('overall').textContent === 'Healthy'")

    await browser.type_text("not-the-token")
    await browser.press("Enter", 13)
    await browser.wait_for(
        "document.getElementById('auth-message').textContent.includes('not accepted')"
    )
    assert not await browser.evaluate("document.getElementById('auth').hidden")
    assert await browser.evaluate("sessionStorage.getItem('orchestrator.status.token')") is None

    await browser.evaluate("document.getElementById('token-input').focus()")
    await browser.type_text(TOKEN)
    await browser.press("Enter", 13)
    done = app.get_stats()["workers"]["jobs_completed_total"]
    await browser.wait_for(f"document.getElementById('jobs-completed').textContent === '{done}'")
    assert await browser.evaluate("document.getElementById('auth').hidden")
    assert await browser.problems() == []
    assert await browser.evaluate("sessionStorage.getItem('orchestrator.status.token')") == TOKEN
    failures = app.get_stats()["http"]["auth"]["failures_total"]
    assert failures >= 2  # the request without a token and the one with the wrong token

    await browser.evaluate("window.beforeReload = true")
    await browser.call("Page.reload")  # the token survives a reload of the tab
    await browser.wait_for("!window.beforeReload && document.readyState === 'complete'")
    await browser.wait_for(f"document.getElementById('jobs-completed').textContent === '{done}'")
    assert await browser.evaluate("document.getElementById('auth').hidden")
    assert await browser.problems() == []


async def test_draining_and_unreachable_then_recovered(
    demo: DemoFactory, browser: DevTools
) -> None:
    """A drain shows a banner; a stopped server shows "unreachable since"; both recover."""
    app = await demo()
    port = app.http_port
    await browser.open(page_url(app))
    await browser.wait_for("document.getElementById('overall').textContent === 'Healthy'")
    # Poll every second, chosen like a user would: through the select element.
    await browser.evaluate(
        "(() => { const s = document.getElementById('interval'); s.value = '1';"
        " s.dispatchEvent(new Event('change')); })()"
    )

    app.http_server.drain()
    banner = await browser.wait_for(
        "!document.getElementById('draining').hidden"
        " && document.getElementById('draining').textContent"
    )
    assert banner.startswith("Out of rotation:")  # drained while every component is healthy
    app.http_server.drain(False)
    await browser.wait_for("document.getElementById('draining').hidden")

    await app.http_server.stop()
    text = await browser.wait_for(
        "!document.getElementById('unreachable').hidden"
        " && document.getElementById('unreachable').textContent"
    )
    assert text.startswith("Unreachable since ")
    overall = await browser.evaluate("document.getElementById('overall').textContent")
    assert overall.startswith("Unreachable since ")
    assert await browser.evaluate("document.body.classList.contains('is-stale')")

    app.http_server.settings = app.http_server.settings.replace(http_port=port)
    await app.http_server.start()
    await browser.wait_for("document.getElementById('unreachable').hidden")
    notice = await browser.wait_for("document.getElementById('notice').textContent")
    assert notice.startswith("Reachable again at ")
    await browser.wait_for("document.getElementById('overall').textContent === 'Healthy'")
    assert not await browser.evaluate("document.body.classList.contains('is-stale')")
    assert await browser.problems() == []


async def test_tables_sort_from_the_keyboard(demo: DemoFactory, browser: DevTools) -> None:
    """A header's button sorts with Enter, toggling the direction and ``aria-sort``."""
    app = await demo()
    await browser.open(page_url(app))
    rows = "document.querySelectorAll('#workers-table tbody tr').length"
    await browser.wait_for(f"{rows} === {app.settings.workers}")
    jobs_th = "document.querySelector('#workers-table th[data-key=jobs_total]')"
    jobs = (
        "[...document.querySelectorAll('#workers-table tbody tr')]"
        ".map(tr => Number(tr.children[2].textContent.replace(/,/g, '')))"
    )

    await browser.evaluate(f"{jobs_th}.querySelector('button').focus()")
    await browser.press("Enter", 13)
    assert await browser.evaluate(f"{jobs_th}.getAttribute('aria-sort')") == "ascending"
    ascending = await browser.evaluate(jobs)
    assert ascending == sorted(ascending)
    id_th = "document.querySelector('#workers-table th[data-key=id]')"
    assert await browser.evaluate(f"{id_th}.hasAttribute('aria-sort')") is False

    await browser.press("Enter", 13)
    assert await browser.evaluate(f"{jobs_th}.getAttribute('aria-sort')") == "descending"
    descending = await browser.evaluate(jobs)
    assert descending == sorted(descending, reverse=True)
    assert await browser.problems() == []


async def test_narrow_screen_has_no_horizontal_scroll(
    demo: DemoFactory, browser: DevTools, tmp_path: Path
) -> None:
    """At 390 px wide the page is one column: nothing but the tables scrolls sideways."""
    app = await demo()
    await browser.viewport(390, 844, mobile=True)
    await browser.open(page_url(app))
    await browser.wait_for("document.querySelectorAll('#workers-table tbody tr').length > 0")
    width = await browser.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    columns = await browser.evaluate("getComputedStyle(document.getElementById('main'))"
                                     ".gridTemplateColumns.split(' ').length")  # fmt: skip
    assert columns == 1
    png = await browser.screenshot()
    assert png_size(png) == (390, 844)
    await asyncio.to_thread((tmp_path / "status-narrow.png").write_bytes, png)
    assert await browser.problems() == []

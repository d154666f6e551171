"""The status page's cells, in Chromium, against the ``/stats`` sections they are read from."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from orchestrator import FakeClock, Job, JobFailed
from tests.components.test_recycler import sweep
from tests.e2e.browser import DevTools
from tests.fakes import make_app, poll_process, standing_queue
from tests.sources.redis_server import free_port

pytestmark = pytest.mark.slow

EMPTY = "\u2013"
"""What the page shows for a null value: an en dash."""

AGE = 3600.0
RUNNING = 75.0
DURATIONS = {RUNNING: "1 m 15 s", AGE + RUNNING: "1 h 01 m"}
"""The page's text for the two durations the fake clock gives the workers."""

DB_DOWN = (
    "db down: connection to server at 10.0.0.7, port 5432 failed: Connection refused. Is the "
    "server running on that host and accepting TCP/IP connections?"
)
"""A last error as long as real ones get: the cell wraps it instead of widening the table."""

COLUMNS = ["ID", "State", "Jobs", "Failed", "Current job", "Running for", "Age", "Last error"]

CELLS = (
    "[...document.querySelectorAll('#workers-table tbody tr')].map(tr => [...tr.children]"
    ".map(c => [c.dataset.label, c.textContent, c.title]))"
)
"""Every row of the table as [column, text, title] per cell."""


FACTS = (
    "Object.fromEntries([...document.querySelectorAll('#recycler-facts div')]"
    ".map(d => [d.querySelector('dt').textContent, d.querySelector('dd').textContent]))"
)
"""The recycler card as {term: value}."""


async def section(url: str, name: str) -> Any:
    """``GET /stats/{name}``'s JSON body."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/stats/{name}") as resp:
        assert resp.status == 200
        return await resp.json()


def local_clock(iso: str) -> str:
    """An ISO UTC time as the page shows it: the browser's local HH:MM:SS."""
    return datetime.fromisoformat(iso).astimezone().strftime("%H:%M:%S")


def expected_row(worker: dict[str, Any]) -> list[list[str]]:
    """The [column, text, title] cells the page must show for one ``/stats/workers`` entry."""
    job, error = worker["current_job"], worker["last_error"]
    current = EMPTY
    if job is not None:
        current = f"#{job['id']} {job['kind']}"
        if job["attempt"] > 1:
            current += f" (attempt {job['attempt']})"
    texts = [
        str(worker["id"]),
        worker["state"],
        f"{worker['jobs_total']:,}",
        f"{worker['failed_total']:,}",
        current,
        EMPTY if job is None else DURATIONS[job["running_seconds"]],
        DURATIONS[worker["age_seconds"]],
        EMPTY if error is None else f"{error['type']}: {error['message']}",
    ]
    titles = [""] * len(COLUMNS)
    if error is not None:
        titles[-1] = f"job #{error['job_id']} at {local_clock(error['at'])}"
    return [[col, text, title] for col, text, title in zip(COLUMNS, texts, titles, strict=True)]


async def test_workers_cells_show_the_job_running_and_the_last_error(
    browser: DevTools, clock: FakeClock
) -> None:
    """Each cell reads its /stats/workers value: the job in hand (id, kind, attempt) and how
    long it has run, each worker's age, the last error's type and message (job and time in
    its title), and an en dash where a value is null."""
    app = make_app(clock, http=True, workers=3)
    started = asyncio.Event()
    release = asyncio.Event()

    @app.handler("hold", timeout=None, retries=1)
    async def hold(job: Job) -> None:
        if job.attempt == 1:
            raise ConnectionResetError("backend reset the connection")
        started.set()
        await release.wait()

    @app.handler("db", retries=0)
    async def db(job: Job) -> None:
        raise ConnectionError(DB_DOWN)

    await app.start()
    held: asyncio.Future[Any] | None = None
    try:
        with pytest.raises(JobFailed):
            await app.submit("db")
        clock.advance(AGE)
        held = asyncio.ensure_future(app.submit("hold"))
        await started.wait()  # on its second attempt, in flight until released
        clock.advance(RUNNING)  # the snapshot stays this one: the clock moves no more

        assert app.http_url is not None
        await browser.open(app.http_url + "/")
        await browser.wait_for(
            "document.querySelectorAll('#workers-table tbody th[scope=row]').length === 3"
        )
        shown = await browser.evaluate(CELLS)
        workers = (await section(app.http_url, "workers"))["workers"]

        busy = [w for w in workers if w["current_job"] is not None]
        assert [w["current_job"]["kind"] for w in busy] == ["hold"]
        assert busy[0]["current_job"]["attempt"] == 2
        assert busy[0]["current_job"]["running_seconds"] == RUNNING
        errors = [w["last_error"]["type"] for w in workers if w["last_error"] is not None]
        assert errors == ["ConnectionError"]
        assert shown == [expected_row(w) for w in sorted(workers, key=lambda w: w["id"])]
        assert "[object Object]" not in str(shown)
        wrap = "document.getElementById('workers-table').parentElement"
        assert await browser.evaluate(f"{wrap}.scrollWidth <= {wrap}.clientWidth")
        assert await browser.problems() == []

        await browser.viewport(390, 844, mobile=True)  # a phone: rows stacked, nothing sideways
        assert await browser.evaluate(CELLS) == shown
        assert await browser.evaluate("document.documentElement.scrollWidth") <= 390
        assert await browser.problems() == []
    finally:
        release.set()
        if held is not None:
            await held
        await app.stop(timeout=2.0)


def by_reason(counts: dict[str, int]) -> str:
    """The page's text for a count by reason: the reasons that happened, else "none"."""
    return ", ".join(f"{reason}: {n:,}" for reason, n in counts.items() if n) or "none"


async def test_recycled_counts_name_the_reasons_that_happened(
    browser: DevTools, clock: FakeClock
) -> None:
    """The recycler card names only the reasons with a count: /stats/recycler lists every
    reason from 0, and all of them at 0 reads "none"."""
    app = make_app(clock, http=True, workers=1, max_jobs_per_worker=1)
    await app.start()
    try:
        assert await app.submit("echo", 1) == 1
        await sweep(app, clock)  # the worker did its one job: replaced

        assert app.http_url is not None
        await browser.open(app.http_url + "/")
        await browser.wait_for("document.querySelectorAll('#recycler-facts div').length > 0")
        facts = await browser.evaluate(FACTS)
        recycler = await section(app.http_url, "recycler")

        workers = recycler["workers_recycled_total"]
        connections = recycler["connections_recycled_total"]
        assert workers == {"max_jobs": 1, "max_age": 0}
        assert set(connections.values()) == {0}
        assert facts["Workers recycled"] == by_reason(workers) == "max_jobs: 1"
        assert facts["Connections recycled"] == by_reason(connections) == "none"
        assert await browser.problems() == []
    finally:
        await app.stop(timeout=2.0)


async def test_the_limit_and_the_shedding_read_the_stats(
    browser: DevTools, clock: FakeClock
) -> None:
    """The "Jobs at once" gauge reads /stats/workers' limit, and a standing queue shows as
    shedding, with why and what it refused, from /stats/router."""
    app = make_app(clock, http=True, workers=1)
    await app.start()
    try:
        finish = await standing_queue(app, clock)
        assert app.http_url is not None
        await browser.open(app.http_url + "/")
        await browser.wait_for("!document.getElementById('shedding').hidden")
        shedding = await browser.evaluate("document.getElementById('shedding').textContent")
        limit = await browser.evaluate("document.getElementById('limit-text').textContent")
        facts = await browser.evaluate("document.getElementById('limit-facts').textContent")
        router = await section(app.http_url, "router")
        workers = await section(app.http_url, "workers")
        assert router["standing"] is True
        assert router["rejected_by_reason"] == {"queue_full": 0, "standing_wait": 1}
        assert shedding == ("Shedding: queue over 5.0 ms, refusing what would wait longer · "
                            "refused 1 for waits, 0 full")  # fmt: skip
        assert limit == f"{workers['in_progress']} / limit {workers['in_progress_limit']} of 1"
        assert facts.startswith("adaptive · loop lag ")
        assert facts.endswith(f"lowered {workers['limit_lowered_total']} times")
        assert await browser.problems() == []
        await finish()
    finally:
        await app.stop(timeout=2.0)


async def test_a_source_is_a_row_of_the_sources_card(browser: DevTools, clock: FakeClock) -> None:
    """Without a source the card is hidden; a Redis source whose broker does not answer is
    a red row that reads /stats/sources: its state, backlog, settled counts and error."""
    bare = make_app(clock, http=True)
    await bare.start()
    try:
        assert bare.http_url is not None
        await browser.open(bare.http_url + "/")
        await browser.wait_for("document.getElementById('app-state').textContent === 'running'")
        assert await browser.evaluate("document.getElementById('sources').hidden") is True
    finally:
        await bare.stop(timeout=2.0)
    url = f"redis://127.0.0.1:{free_port()}/0?stream=jobs&group=workers"
    app = make_app(clock, http=True, source=url)
    await app.start()
    try:
        assert app.http_url is not None

        async def down() -> bool | None:
            return (
                True if app.job_sources.stats()["jobs/workers"]["state"] == "disconnected" else None
            )

        await poll_process(down, seconds=10, what="the source disconnected")
        await browser.open(app.http_url + "/")
        await browser.wait_for("!document.getElementById('sources').hidden")
        row = await browser.evaluate(
            "(() => { const d = document.querySelector('#sources-facts div');"
            " return [d.className, d.querySelector('dt').textContent,"
            " d.querySelector('dd').textContent]; })()"
        )
        sources = await section(app.http_url, "sources")
        assert sources["jobs/workers"]["last_error"] == "ConnectionError"
        assert row == ["bad", "jobs/workers", "disconnected · lag 0 · pending 0 · acked 0 · "
                       "dead 0 · last error ConnectionError"]  # fmt: skip
        assert await browser.problems() == []
    finally:
        await app.stop(timeout=2.0)

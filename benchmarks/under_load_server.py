"""The application side of ``benchmarks/under_load.py``: one process, one pinned core.

An ``Application`` with the project's defaults (plus the token, 200 workers and the HTTP
API on 127.0.0.1, a free port) and one job kind: an await of ``JOB_AWAIT`` seconds plus
about ``JOB_CPU`` seconds of sha256. It prints its URL, then takes one JSON command per
line on standard input and answers one JSON line on standard output:

- ``{"cmd": "capacity", "seconds": S}``: jobs/s of a closed loop of 400 submitters (the
  workers never wait for work): the job capacity of this core.
- ``{"cmd": "paced", "rate": R, "seconds": S}``: submit R jobs/s on a schedule, without
  catch-up bursts (``benchmarks/job_load.py``: slots missed by more than ``MAX_BEHIND``
  are skipped and counted); ``"catch_up": true`` submits every slot, late ones at once.
- ``{"cmd": "ramp", "peak": R, "seconds": S}``: the rate goes 0 → R → 0 linearly over S
  seconds; the answer adds a trace, every ``TRACE_EVERY`` s: jobs done and refused so far,
  the in-progress limit, the lag it read, the loop's busy share, the queue.

Every command takes ``"nowait"``: true (the default) submits with ``submit_nowait`` (no
task of the caller's per job; a capacity submitter awaits the future it gets), false with
a task per ``await app.submit()``. Each answers ``{"started": true}`` when the load begins,
then, once every job submitted has its outcome, the jobs done, refused (``QueueFull``),
failed and skipped, the queue wait of the jobs that ran (submission to start: p99, max),
the loop lag (lateness of a 5 ms timer: p99 and max), the loop wait (p50 and p99; see
``Gauges``), the garbage collections (count and longest pause per generation, from
``gc.callbacks``), the CPU seconds the process used, and the limit as it ended.

Settings other than the defaults come as JSON in ``UNDER_LOAD_SETTINGS`` (a lever's
measurement, never the benchmark's figures). With ``UNDER_LOAD_BARE`` set, the process is
the CI gate's baseline instead: no application, a bare aiohttp server answering constant
bytes on every path, and the same job body run as a plain task per submission
(``UNDER_LOAD_BLOB_BYTES`` gives it the application's blob size). Logs: JSON lines at
info, buffered, to the file in ``UNDER_LOAD_LOG``.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent))  # run as a script from anywhere
from aiohttp import web

from benchmarks.gate import UncontendedClock
from benchmarks.job_load import Load, Offer, Offers, Submit, capacity, paced, ramp, trace
from orchestrator import Application, Job
from orchestrator.log import configure_logging

TOKEN = "under-load-token-6d2f"
WORKERS = 200
JOB_AWAIT = 0.005
JOB_CPU = 50e-6
LAG_INTERVAL = 0.005
WAIT_SAMPLERS = 4
"""Timers kept pending at random moments by ``Gauges.sample_waits`` (about 800 a second)."""


def quantile(values: Iterable[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank; 0 for none)."""
    ordered = sorted(values) or [0.0]
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def calibrated_blob(target: float = JOB_CPU) -> bytes:
    """Bytes whose sha256 takes about ``target`` seconds here."""
    blob = os.urandom(64 * 1024)
    started = time.perf_counter()
    for _ in range(200):
        hashlib.sha256(blob).digest()
    per_byte = (time.perf_counter() - started) / 200 / len(blob)
    return os.urandom(max(1024, int(target / per_byte)))


class Gauges:
    """Loop lag, loop wait and GC pauses, recorded while a run lasts.

    The loop wait is how late timers due at random moments ran (``WAIT_SAMPLERS`` of
    them, each due 0-10 ms after the last), less the time this thread waited for a CPU
    meanwhile (``UncontendedClock``): what an event arriving at any moment, a probe's
    bytes for instance, waits for the loop because of the loop's own work. Unlike the
    lag, it does not grow when another process takes the core.
    """

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.waits: list[float] = []
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._gc_started = 0.0
        self._clock = UncontendedClock()
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._gc_started)

    def reset(self) -> None:
        self.lags.clear()
        self.waits.clear()
        for pauses in self.pauses.values():
            pauses.clear()

    async def sample_lag(self, until: float) -> None:
        loop = asyncio.get_running_loop()
        while loop.time() < until:
            expected = loop.time() + LAG_INTERVAL
            await asyncio.sleep(LAG_INTERVAL)
            self.lags.append(max(0.0, loop.time() - expected))

    async def sample_waits(self, until: float) -> None:
        loop, rng = asyncio.get_running_loop(), random.Random()

        async def sampler() -> None:
            while loop.time() < until:
                delay = rng.uniform(0.0, 2 * LAG_INTERVAL)
                started = self._clock.now()
                await asyncio.sleep(delay)
                self.waits.append(max(0.0, self._clock.since(started) - delay))

        await asyncio.gather(*(sampler() for _ in range(WAIT_SAMPLERS)))

    def summary(self) -> dict[str, Any]:
        gcs = {str(g): {"count": len(p), "longest": max(p, default=0.0)}
               for g, p in self.pauses.items()}  # fmt: skip
        return {"lag_p99": quantile(self.lags, 0.99), "lag_max": max(self.lags, default=0.0),
                "wait_p50": quantile(self.waits, 0.5), "wait_p99": quantile(self.waits, 0.99),
                "gc": gcs}  # fmt: skip


async def commands(url: str, blob: bytes, how: tuple[Offer, Submit],
                   probe: Callable[[], dict[str, Any]], waits: list[float]) -> None:  # fmt: skip
    """Say hello, then run the load commands read from standard input until it closes."""
    gauges = Gauges()
    loop = asyncio.get_running_loop()
    package = str(Path(sys.modules["orchestrator"].__file__ or "").parent)
    print(json.dumps({"url": url, "blob_bytes": len(blob), "package": package}), flush=True)
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        command = json.loads(line)
        load, seconds = Load(), float(command["seconds"])
        offers: Offers = (*how, bool(command.get("nowait", True)))
        if command["cmd"] == "capacity":  # closed loop: each submitter awaits its job
            run = capacity(how[0] if offers[2] else how[1], load, seconds)
        elif command["cmd"] == "ramp":
            run = paced(offers, load, ramp(float(command["peak"]), seconds), seconds)
        else:
            run = paced(offers, load, ramp(float(command["rate"]), 0.0), seconds,
                        bool(command.get("catch_up")))  # fmt: skip
        traced = loop.create_task(trace(load, seconds, probe))
        gauges.reset()
        waits.clear()
        cpu, wall = time.process_time(), time.perf_counter()
        print(json.dumps({"started": True}), flush=True)
        until = loop.time() + seconds
        lag = asyncio.gather(gauges.sample_lag(until), gauges.sample_waits(until))
        await run
        elapsed = time.perf_counter() - wall
        await asyncio.wait_for(load.idle.wait(), 30)
        await lag
        print(json.dumps({
            "seconds": elapsed, "done": load.done, "refused": load.refused,
            "failed": load.failed, "skipped": load.skipped,
            "queue_wait_p99": quantile(waits, 0.99), "queue_wait_max": max(waits, default=0.0),
            "cpu_seconds": time.process_time() - cpu, **gauges.summary(), **probe(),
            "trace": await traced,
        }), flush=True)  # fmt: skip


async def serve_bare(blob: bytes, body: Callable[[float], Coroutine[Any, Any, None]],
                     waits: list[float]) -> None:  # fmt: skip
    """The baseline: bare aiohttp answering constant bytes, the job body as plain tasks."""

    async def constant(request: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type="application/json")

    web_app = web.Application()
    web_app.router.add_get("/{tail:.*}", constant)
    runner = web.AppRunner(web_app, access_log=None, handle_signals=False)
    await runner.setup()
    loop = asyncio.get_running_loop()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        how: tuple[Offer, Submit] = (lambda: loop.create_task(body(time.perf_counter())),
               lambda: body(time.perf_counter()))  # fmt: skip
        await commands(f"http://127.0.0.1:{site.port}", blob, how, dict, waits)
    finally:
        await runner.cleanup()


async def serve() -> None:
    size = os.environ.get("UNDER_LOAD_BLOB_BYTES")
    blob = os.urandom(int(size)) if size else calibrated_blob()
    waits: list[float] = []  # from submission to the job's start

    async def body(submitted: float) -> None:
        waits.append(time.perf_counter() - submitted)
        await asyncio.sleep(JOB_AWAIT)
        hashlib.sha256(blob).digest()

    if os.environ.get("UNDER_LOAD_BARE"):
        await serve_bare(blob, body, waits)
        return
    settings = json.loads(os.environ.get("UNDER_LOAD_SETTINGS", "{}"))
    given = {"workers": WORKERS, "enable_http": True, "http_host": "127.0.0.1", "http_port": 0,
             "http_token": (TOKEN,), **settings}  # fmt: skip
    app = Application(**given)

    @app.handler("work", timeout=5.0)
    async def work(job: Job) -> None:
        await body(job.payload)

    def probe() -> dict[str, Any]:  # .get: an older tree (make bench-compare) has no limit
        workers, router = app.workers.stats(), app.router.stats()
        return {"limit": workers.get("in_progress_limit"), "lag": workers.get("lag_seconds"),
                "busy": workers.get("loop_busy"), "in_progress": workers.get("in_progress"),
                "queued": router["queued"], "standing": router.get("standing"),
                "keep": workers.get("limit_keep")}  # fmt: skip

    def submit() -> Awaitable[Any]:
        return app.submit("work", time.perf_counter())

    def offer() -> asyncio.Future[Any]:
        return app.submit_nowait("work", time.perf_counter())

    def task_each() -> asyncio.Future[Any]:  # an older tree without submit_nowait
        return asyncio.ensure_future(submit())

    how = (offer if hasattr(app, "submit_nowait") else task_each, submit)
    async with app:
        assert app.http_url is not None
        await commands(app.http_url, blob, how, probe, waits)


if __name__ == "__main__":
    log = open(os.environ.get("UNDER_LOAD_LOG", os.devnull), "w")  # noqa: SIM115
    configure_logging("json", "info", stream=log, buffered=True)
    asyncio.run(serve())

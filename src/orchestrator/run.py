"""``orchestrator run``: an application until a signal; the demo's under a load generator."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import structlog

from orchestrator.application import Application
from orchestrator.demo import LoadGenerator
from orchestrator.log import LineBuffer
from orchestrator.tasks import cancel_and_wait

__all__ = ["DEMO_RATE", "URL_PATHS", "run_application", "run_command", "run_in_new_loop"]

T = TypeVar("T")

log = structlog.get_logger("orchestrator.cli")

URL_PATHS = ("/health", "/live", "/ready", "/stats", "/metrics")
"""The endpoints the first output line names (``GET /`` lists them all)."""


LOOP_CLOSE_GRACE = 1.0
"""Seconds tasks still running after the application get to end once cancelled, before exit."""

DEMO_RATE = 50.0
"""The demo's jobs per second when ``--rate`` is not given."""


def run_command(
    args: argparse.Namespace, app: Application, sink: LineBuffer | None, *, demo: bool
) -> int:
    """Run ``app`` in a new event loop (``demo``: with the demo's load generator); return
    the exit code.

    ``asyncio.run`` would wait for ever for a task that refuses cancellation (a handler the
    application abandoned at stop, already logged with its stack); this exits anyway.
    """
    rate = (DEMO_RATE if args.rate is None else args.rate) if demo else None
    code, left = run_in_new_loop(run_application(args, app, sink, rate), LOOP_CLOSE_GRACE)
    if left:
        log.warning("tasks_abandoned_at_exit", tasks=left)
        if sink is not None:
            sink.drain()
        sys.stdout.flush()
        os._exit(code)
    return code


def run_in_new_loop(main: Coroutine[Any, Any, T], grace: float) -> tuple[T, int]:
    """Run ``main`` to completion in a new loop, then cancel what is left, waiting ``grace``.

    Returns:
        ``main``'s result and how many tasks still refused to end (the loop is then left
        open: closing it would destroy them mid-flight).
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    left: set[asyncio.Task[Any]] = set()
    try:
        result = loop.run_until_complete(main)
    finally:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            _, left = loop.run_until_complete(asyncio.wait(tasks, timeout=grace))
        if not left:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            asyncio.set_event_loop(None)
            loop.close()
    return result, len(left)


async def flush_log_lines(sink: LineBuffer, interval: float = 0.25) -> None:
    """Write buffered log lines at least every ``interval`` seconds (cancel to stop)."""
    try:
        while True:
            await asyncio.sleep(interval)
            sink.drain()
    finally:
        sink.drain()


async def run_application(
    args: argparse.Namespace,
    app: Application,
    sink: LineBuffer | None = None,
    rate: float | None = None,
) -> int:
    """Run ``app`` until a signal or ``--duration``; print a one-line summary. With a
    ``rate``, the demo's load generator submits its jobs meanwhile."""
    flusher = (
        asyncio.get_running_loop().create_task(flush_log_lines(sink), name="log-flush")
        if sink is not None
        else None
    )
    try:
        return await _run(args, app, sink, rate)
    finally:
        await cancel_and_wait(flusher)


def _say(sink: LineBuffer | None, line: str) -> None:
    """Print ``line`` on stdout after every log line logged so far (JSON lines are buffered)."""
    if sink is not None:
        sink.drain()
    print(f"orchestrator: {line}", flush=True)


async def _run(
    args: argparse.Namespace, app: Application, sink: LineBuffer | None, rate: float | None
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():  # a second signal: stop at once, without the rest of the drain
            log.warning("shutdown_hurried", signal=sig.name)
            app.hurry()
            return
        stop.set()
        log.info(
            "shutdown_requested",
            reason="signal",
            signal=sig.name,
            detail="draining; send it again (Ctrl-C) to stop at once",
        )

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    started = time.monotonic()
    await app.start()
    url = app.http_url
    if url is not None:
        _say(sink, f"HTTP API on {url}: " + " ".join(url + p for p in URL_PATHS))
        _say(
            sink,
            f"status page at {url}/ (open it in a browser); GET {url}/ with curl lists "
            "every endpoint",
        )
    generator = LoadGenerator(app, rate) if rate is not None else None
    gen_task = loop.create_task(generator.run()) if generator is not None else None
    try:
        async with asyncio.timeout(args.duration):
            await stop.wait()
    except TimeoutError:
        log.info("shutdown_requested", reason="duration")
    if generator is not None and gen_task is not None:
        generator.stop()
        await gen_task
    await app.stop(timeout=args.stop_timeout)
    elapsed = f"in {time.monotonic() - started:.1f}s"
    if generator is None:
        w = app.workers
        _say(sink, f"{w.jobs_completed_total} jobs done, {w.jobs_failed_total} failed {elapsed}")
        return 0
    await generator.settle()
    o = generator.outcomes
    _say(
        sink,
        f"{o['done']} jobs done, {o['failed']} failed, {o['rejected']} rejected, "
        f"{o['shed']} shed, {o['not_running'] + o['error']} refused at shutdown {elapsed}",
    )
    return 0

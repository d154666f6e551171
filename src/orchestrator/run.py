"""``orchestrator run``: the demo application under a load generator, until a signal."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

import structlog

from orchestrator.application import Application
from orchestrator.config import CoreSettings, HttpSettings
from orchestrator.demo import DemoConnectionFactory, LoadGenerator, build_demo_app
from orchestrator.log import LineBuffer
from orchestrator.tasks import cancel_and_wait

__all__ = ["URL_PATHS", "run_command", "run_demo", "run_in_new_loop"]

T = TypeVar("T")

log = structlog.get_logger("orchestrator.cli")

URL_PATHS = ("/health", "/live", "/ready", "/stats", "/metrics")
"""The endpoints the first output line names (``GET /`` lists them all)."""


LOOP_CLOSE_GRACE = 1.0
"""Seconds tasks still running after the demo get to end once cancelled, before exit."""


def run_command(
    args: argparse.Namespace,
    settings: CoreSettings,
    http: HttpSettings,
    sink: LineBuffer | None,
    sources: Mapping[str, str] | None = None,
) -> int:
    """Run the demo in a new event loop; return the exit code.

    ``asyncio.run`` would wait for ever for a task that refuses cancellation (a handler the
    application abandoned at stop, already logged with its stack); this exits anyway.
    """
    code, left = run_in_new_loop(run_demo(args, settings, http, sink, sources), LOOP_CLOSE_GRACE)
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


async def run_demo(
    args: argparse.Namespace,
    settings: CoreSettings,
    http: HttpSettings,
    sink: LineBuffer | None = None,
    sources: Mapping[str, str] | None = None,
) -> int:
    """Run the demo until a signal or ``--duration``; print a one-line summary."""
    flusher = (
        asyncio.get_running_loop().create_task(flush_log_lines(sink), name="log-flush")
        if sink is not None
        else None
    )
    try:
        return await _run_demo(args, settings, http, sink, sources)
    finally:
        await cancel_and_wait(flusher)


def _say(sink: LineBuffer | None, line: str) -> None:
    """Print ``line`` on stdout after every log line logged so far (JSON lines are buffered)."""
    if sink is not None:
        sink.drain()
    print(f"orchestrator: {line}", flush=True)


async def _run_demo(
    args: argparse.Namespace,
    settings: CoreSettings,
    http: HttpSettings,
    sink: LineBuffer | None,
    sources: Mapping[str, str] | None,
) -> int:
    app = build_demo_app(
        Application(
            settings, http=http, connection_factory=DemoConnectionFactory(), sources=sources
        )
    )
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
    generator = LoadGenerator(app, args.rate)
    gen_task = loop.create_task(generator.run())
    try:
        async with asyncio.timeout(args.duration):
            await stop.wait()
    except TimeoutError:
        log.info("shutdown_requested", reason="duration")
    generator.stop()
    await gen_task
    await app.stop(timeout=args.stop_timeout)
    await generator.settle()
    o = generator.outcomes
    _say(
        sink,
        f"{o['done']} jobs done, {o['failed']} failed, {o['rejected']} rejected, "
        f"{o['shed']} shed, {o['not_running'] + o['error']} refused at shutdown in "
        f"{time.monotonic() - started:.1f}s",
    )
    return 0

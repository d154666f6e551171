"""Command line: ``orchestrator run`` starts the demo application."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import structlog

from orchestrator.application import Application
from orchestrator.config import CoreSettings, HttpSettings, from_env, read_token_file
from orchestrator.demo import DemoConnectionFactory, LoadGenerator, build_demo_app
from orchestrator.errors import ConfigError, OrchestratorError
from orchestrator.log import LineBuffer, configure_logging
from orchestrator.version import __version__

__all__ = ["main"]

log = structlog.get_logger("orchestrator.cli")

CLI_DRAIN_DELAY = 5.0
"""Seconds ``orchestrator run`` keeps answering (``/ready`` 503) after SIGTERM."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``orchestrator`` argument parser."""
    parser = _Parser(prog="orchestrator", description="asyncio application orchestrator")
    parser.add_argument("--version", action="version", version=f"orchestrator {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="start the demo application")
    run.add_argument("--workers", type=int, help="worker tasks (default 4)")
    run.add_argument("--queue-size", type=int, help="router capacity (default 1024)")
    run.add_argument("--pool-max-size", type=int, help="most pooled connections (default 8)")
    run.add_argument("--rate", type=_positive_float, default=50.0,
                     help="demo jobs submitted per second (default 50; 0 = none)")  # fmt: skip
    run.add_argument("--duration", type=_positive_float,
                     help="stop after this many seconds (default: until a signal)")  # fmt: skip
    run.add_argument("--stop-timeout", type=_positive_float, default=10.0,
                     help="seconds jobs in flight get at shutdown (default 10)")  # fmt: skip
    run.add_argument("--http-port", type=int, help="HTTP API port (default 8080; 0 = any free)")
    run.add_argument("--http-host", help="HTTP API bind address (default 0.0.0.0)")
    run.add_argument("--no-http", action="store_true", help="do not serve the HTTP API")
    run.add_argument("--drain-delay", type=_positive_float,
                     help="seconds /ready answers 503 before HTTP stops (default 5)")  # fmt: skip
    run.add_argument("--token-file", metavar="PATH",
                     help="file of bearer tokens, one per line")  # fmt: skip
    run.add_argument("--log-format", choices=("json", "console", "auto"), default="auto")
    run.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    return parser


def _given(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def settings_from(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[CoreSettings, HttpSettings]:
    """Settings from flags (when given) over ``ORCHESTRATOR_*`` variables over defaults.

    The command serves HTTP unless ``--no-http`` or ``ORCHESTRATOR_HTTP_ENABLED=false``.

    Raises:
        ConfigError: on an invalid value from either source.
    """
    core = from_env(CoreSettings, environ, **_given(args, "workers", "queue_size", "pool_max_size"))
    http = _given(args, "http_port", "http_host", "drain_delay")
    if "drain_delay" not in http and "ORCHESTRATOR_HTTP_DRAIN_DELAY" not in environ:
        http["drain_delay"] = CLI_DRAIN_DELAY
    token_file = args.token_file or environ.get("ORCHESTRATOR_HTTP_TOKEN_FILE")
    if token_file:
        http["http_token"] = read_token_file(token_file)
    if args.no_http:
        http["enable_http"] = False
    elif "ORCHESTRATOR_HTTP_ENABLED" not in environ:
        http["enable_http"] = True
    return core, from_env(HttpSettings, environ, **http)


async def drain_periodically(sink: LineBuffer, interval: float = 0.25) -> None:
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
) -> int:
    """Run the demo until a signal or ``--duration``; print a one-line summary."""
    flusher = asyncio.ensure_future(drain_periodically(sink)) if sink is not None else None
    try:
        return await _run_demo(args, settings, http)
    finally:
        if flusher is not None:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)


async def _run_demo(args: argparse.Namespace, settings: CoreSettings, http: HttpSettings) -> int:
    app = build_demo_app(
        Application(settings, http=http, connection_factory=DemoConnectionFactory())
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():  # a second signal: stop at once, without the rest of the drain
            log.warning("shutdown_hurried", signal=sig.name)
            app.hurry()
        else:
            stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    started = time.monotonic()
    await app.start()
    if app.http_url is not None:
        urls = " ".join(f"{app.http_url}{p}" for p in ("/health", "/live", "/ready", "/stats"))
        print(f"orchestrator: HTTP API on {app.http_url}: {urls}", flush=True)
        print(f"orchestrator: status page at {app.http_url}/ (open it in a browser)", flush=True)
    generator = LoadGenerator(app, args.rate)
    gen_task = loop.create_task(generator.run())
    try:
        async with asyncio.timeout(args.duration):
            await stop.wait()
    except TimeoutError:
        pass
    log.info("shutdown_requested", reason="signal" if stop.is_set() else "duration")
    generator.stop()
    await gen_task
    await app.stop(timeout=args.stop_timeout)
    await generator.settle()
    o = generator.outcomes
    print(
        f"orchestrator: {o['done']} jobs done, {o['failed']} failed, {o['rejected']} rejected, "
        f"{o['not_running'] + o['error']} refused at shutdown in {time.monotonic() - started:.1f}s",
        flush=True,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``orchestrator`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings, http = settings_from(args, os.environ)
    except ConfigError as exc:
        print(f"orchestrator: error: {exc}", file=sys.stderr)
        return 2
    sink = configure_logging(args.log_format, args.log_level, buffered=True)
    try:
        return asyncio.run(run_demo(args, settings, http, sink))
    except OrchestratorError as exc:
        print(f"orchestrator: error: {exc}", file=sys.stderr)
        return 1

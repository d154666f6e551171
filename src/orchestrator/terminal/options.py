"""The ``status`` and ``wait`` subcommands' options (argparse only: no rich, no HTTP)."""

from __future__ import annotations

import argparse
import math
from typing import Any

__all__ = ["EXIT_CODES", "SECTIONS", "add_status", "add_wait"]

SECTIONS = ("health", "jobs", "queue", "pool", "workers", "sources", "http")
"""What ``status --section`` narrows to."""

EXIT_CODES = (
    "Exit status: 0 healthy and ready; 1 reachable but unhealthy, not ready or draining; "
    "2 usage error; 3 unreachable, not an orchestrator, rate limited, or the token was "
    "refused (the one-line message says which)."
)

_CONNECTION = (
    "The instance is --url, else ORCHESTRATOR_URL, else http://127.0.0.1:8080. The token "
    "comes from --token-file (ORCHESTRATOR_HTTP_TOKEN_FILE) or ORCHESTRATOR_HTTP_TOKEN, "
    "never from an argument, and is never printed."
)


def positive_seconds(text: str) -> float:
    """A finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0: {text!r}")
    return value


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", help="the instance's HTTP API (default: ORCHESTRATOR_URL, else "
        "http://127.0.0.1:8080)"
    )  # fmt: skip
    parser.add_argument(
        "--token-file", metavar="PATH", help="file whose first line is the bearer token"
    )


def add_status(sub: Any) -> None:
    """``orchestrator status``."""
    status = sub.add_parser(
        "status",
        help="summary of a running instance",
        description="Health, jobs, queue, pool, workers and HTTP of a running instance.",
        epilog=f"{_CONNECTION} {EXIT_CODES} With --watch, Ctrl-C exits 0.",
    )
    _connection(status)
    status.add_argument(
        "--watch",
        nargs="?",
        const=2.0,
        type=positive_seconds,
        metavar="SECONDS",
        help="redraw in place every SECONDS (default 2) until Ctrl-C",
    )
    status.add_argument("--json", action="store_true", help="print the raw JSON answers")
    status.add_argument("--section", choices=SECTIONS, help="show only this part")


def add_wait(sub: Any) -> None:
    """``orchestrator wait``."""
    wait = sub.add_parser(
        "wait",
        help="wait until an instance is ready, live or healthy",
        description="Poll a starting instance, with backoff, until the condition holds; a "
        "refused connection means it is not up yet.",
        epilog=f"{_CONNECTION} Exit status: 0 when the condition holds; 1 at the timeout "
        "(with the last answer's reason) or when the token is refused; 2 usage error.",
    )
    _connection(wait)
    wait.add_argument(
        "--for",
        dest="condition",
        choices=("ready", "live", "healthy"),
        default="ready",
        help="/ready answers 200, /live answers 200, or /health answers 200 (default ready)",
    )
    wait.add_argument(
        "--timeout",
        type=positive_seconds,
        default=60.0,
        metavar="SECONDS",
        help="give up after this long (default 60)",
    )

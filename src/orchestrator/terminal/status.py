"""``orchestrator status``: one look at a running instance, or ``--watch`` like ``top``.

Exit status: 0 healthy and ready; 1 reachable but unhealthy, not ready or draining (or its
``/stats`` failed); 2 usage error; 3 unreachable, not an orchestrator, rate limited, or the
token was refused. Every error is one line on stderr that names the URL, never the token.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import orjson
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from orchestrator.errors import ConfigError
from orchestrator.terminal.fit import Fitted
from orchestrator.terminal.remote import (
    NEEDS_TOKEN,
    Remote,
    RemoteError,
    TokenRefused,
    remote_from,
)
from orchestrator.terminal.view import Frame, rates, summary
from orchestrator.version import __version__

__all__ = ["HEALTHY", "UNHEALTHY", "UNREACHABLE", "USAGE", "look", "run_status", "verdict"]

HEALTHY, UNHEALTHY, USAGE, UNREACHABLE, INTERRUPTED = 0, 1, 2, 3, 130

JSON_PARTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "health": lambda doc: doc["health"],
    "jobs": lambda doc: doc["stats"]["registry"],
    "queue": lambda doc: doc["stats"]["router"],
    "pool": lambda doc: doc["stats"]["pool"],
    "workers": lambda doc: doc["stats"]["workers"],
    "sources": lambda doc: doc["stats"].get("sources", {}),
    "http": lambda doc: doc["stats"].get("http"),
}
"""What ``--json --section NAME`` prints: the raw part of the answers behind NAME."""


class StatsFailed(RemoteError):
    """``/stats`` answered, but with an error: the instance is reachable and unwell."""


def _stats(remote: Remote) -> dict[str, Any] | None:
    """``/stats``; None when it needs a token and none was given (the public parts still
    show); a refused token is an error."""
    try:
        answer = remote.get("/stats")
    except TokenRefused:
        if remote.token is None:
            return None
        raise
    if answer.status != 200:
        error = answer.body.get("error") if isinstance(answer.body, dict) else None
        raise StatsFailed(f"{remote.url}/stats answered {answer.status} ({error or 'no reason'})")
    body: dict[str, Any] = answer.body
    return body


def look(remote: Remote, previous: Mapping[str, Any] | None = None) -> Frame:
    """Ask the instance once; without ``previous`` stats, wait one snapshot's time to ask
    ``/stats`` again, so that job rates come from two snapshots.

    Raises:
        RemoteError: from the first request that fails.
    """
    stats = _stats(remote)
    if previous is None and stats is not None:
        ttl = stats.get("http", {}).get("snapshot", {}).get("ttl_seconds", 1.0)
        time.sleep(min(max(ttl, 0.05), 5.0) + 0.05)
        previous, stats = stats, _stats(remote)
    known = rates(previous, stats) if previous is not None and stats is not None else None
    return _frame(remote, stats, known)


def _frame(
    remote: Remote, stats: dict[str, Any] | None, known: Mapping[str, float] | None
) -> Frame:
    """A frame of ``stats`` with the probes' answers, asked now."""
    health = remote.get("/health?verbose")
    ready = remote.get("/ready")
    return Frame(remote.url, health.body, ready.body, ready.status, stats, known)


def verdict(frame: Frame) -> int:
    """0 when healthy, ready and not draining; 1 otherwise."""
    draining = bool((frame.stats or {}).get("http", {}).get("draining"))
    ok = frame.health.get("healthy") is True and frame.ready_status == 200 and not draining
    return HEALTHY if ok else UNHEALTHY


def _json(remote: Remote, section: str | None) -> tuple[bytes, int]:
    frame = _narrowed(_frame(remote, _stats(remote), None), section)
    ready = {"status": frame.ready_status, "body": frame.ready}
    doc = {"url": remote.url, "health": frame.health, "ready": ready, "stats": frame.stats}
    shown = JSON_PARTS[section](doc) if section else doc
    return orjson.dumps(shown, option=orjson.OPT_INDENT_2), verdict(frame)


def _narrowed(frame: Frame, section: str | None) -> Frame:
    """``frame``, or TokenRefused when ``section`` needs the stats a token would give."""
    if frame.stats is None and section not in (None, "health"):
        raise TokenRefused(NEEDS_TOKEN.format(url=frame.url))
    return frame


def _watch(remote: Remote, args: argparse.Namespace, console: Console) -> int:
    last: Frame | None = None
    with Live(console=console, screen=True, auto_refresh=False, transient=True) as live:
        try:
            while True:
                try:
                    frame = _narrowed(look(remote, last.stats if last else None), args.section)
                    if frame.rates is None and last is not None:  # the same snapshot again
                        frame = replace(frame, rates=last.rates)
                    last, shown = frame, summary(frame, args.section)
                except RemoteError as exc:
                    if last is None:
                        shown = Fitted(Text(f"orchestrator: {exc}", style="bold red"))
                    else:
                        shown = summary(replace(last, error=str(exc)), args.section)
                footer = Text(f"every {args.watch:g} s · {time.strftime('%H:%M:%S')} · "
                              "Ctrl-C quits", style="dim")  # fmt: skip
                live.update(Group(shown, footer), refresh=True)
                time.sleep(args.watch)
        except KeyboardInterrupt:
            return HEALTHY


def run_status(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """The ``status`` command; returns its exit status."""
    try:
        remote = remote_from(args.url, args.token_file, environ)
    except ConfigError as exc:
        print(f"orchestrator: error: {exc}", file=sys.stderr)
        return USAGE
    console = Console(highlight=False, soft_wrap=False)
    try:
        if args.json:
            text, code = _json(remote, args.section)
            sys.stdout.buffer.write(text + b"\n")
            sys.stdout.flush()
            return code
        if args.watch is not None:
            return _watch(remote, args, console)
        frame = _narrowed(look(remote), args.section)
        console.print(summary(frame, args.section))
        return verdict(frame)
    except StatsFailed as exc:
        print(f"orchestrator: error: {exc}", file=sys.stderr)
        return UNHEALTHY
    except RemoteError as exc:
        print(f"orchestrator: error: {exc}", file=sys.stderr)
        return UNREACHABLE
    except (KeyError, TypeError, AttributeError) as exc:  # JSON of another shape
        what = f"no {exc}" if isinstance(exc, KeyError) else "unexpected types"
        print(f"orchestrator: error: {remote.url} answered JSON this client does not read "
              f"({what}): is it an orchestrator, of a version close to {__version__}?",
              file=sys.stderr)  # fmt: skip
        return UNREACHABLE
    except KeyboardInterrupt:  # Ctrl-C before the answer: the shell's convention
        return INTERRUPTED

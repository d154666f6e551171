"""``orchestrator wait``: return once an instance is ready (or live, or healthy).

It polls with backoff (0.1 s, growing by half, at most 2 s between tries). A refused
connection, a timeout or a 503 while the instance starts is normal: it keeps waiting. Exit
status: 0 when the condition holds; 1 at the timeout, with the last answer in one line, or
at once when the token is refused (waiting would not change that); 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping

from orchestrator.errors import ConfigError
from orchestrator.terminal.remote import Answer, RateLimited, RemoteError, TokenRefused, remote_from

__all__ = ["CONDITIONS", "run_wait"]

CONDITIONS = {"ready": "/ready", "live": "/live", "healthy": "/health"}
FIRST_DELAY, GROWTH, MAX_DELAY = 0.1, 1.5, 2.0


def _why_not(answer: Answer) -> str:
    """The reason in a non-200 answer: ``/ready``'s reason, ``/health``'s failing components."""
    body = answer.body if isinstance(answer.body, dict) else {}
    reason = body.get("reason") or body.get("error")
    if reason is None and isinstance(body.get("components"), dict):
        failing = [name for name, ok in body["components"].items() if not ok]
        reason = "unhealthy: " + ", ".join(failing) if failing else None
    return f"{answer.status} {reason}" if reason else str(answer.status)


def run_wait(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """The ``wait`` command; returns its exit status."""
    try:
        remote = remote_from(args.url, args.token_file, environ)
    except ConfigError as exc:
        print(f"orchestrator: error: {exc}", file=sys.stderr)
        return 2
    path = CONDITIONS[args.condition]
    deadline = clock() + args.timeout
    delay, last = FIRST_DELAY, "no answer yet"
    while True:
        left = deadline - clock()
        try:
            answer = remote.get(path, timeout=max(0.1, min(5.0, left)))
            if answer.status == 200:
                print(f"orchestrator: {remote.url} is {args.condition}", flush=True)
                return 0
            last = f"{path} answered {_why_not(answer)}"
        except TokenRefused as exc:
            print(f"orchestrator: error: {exc}", file=sys.stderr)
            return 1
        except RateLimited as exc:
            last = str(exc)
            delay = max(delay, exc.retry_after or 0.0)
        except RemoteError as exc:
            last = str(exc)
        left = deadline - clock()
        if left <= 0:
            print(f"orchestrator: error: {remote.url} not {args.condition} after "
                  f"{args.timeout:g} s; last: {last}", file=sys.stderr)  # fmt: skip
            return 1
        sleep(min(delay, left))
        delay = min(delay * GROWTH, MAX_DELAY)

"""``orchestrator enqueue --url URL --stream S KIND [JSON]``: add one job to a Redis stream
for a source to run, from a terminal. Errors are one line and a non-zero exit."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import orjson

__all__ = ["add_enqueue", "run_enqueue"]


def add_enqueue(sub: Any) -> None:
    """The ``enqueue`` subcommand's parser."""
    cmd = sub.add_parser(
        "enqueue",
        help="add a job to a Redis stream",
        description="Add a job (fields kind and payload) to a Redis stream; prints its entry id.",
        epilog="Exit status: 0 added, 1 the broker failed, 2 bad arguments or the redis "
        "extra missing.",
    )
    cmd.add_argument("--url", required=True, help="the broker, redis://host:6379/0")
    cmd.add_argument("--stream", required=True, help="the stream's key")
    cmd.add_argument("kind", help="the job kind")
    cmd.add_argument("payload", nargs="?", help="the payload as JSON (default: none, null)")


def run_enqueue(args: argparse.Namespace) -> int:
    """Add the job; print its entry id. Returns the exit status."""
    payload = None
    if args.payload is not None:
        try:
            payload = orjson.loads(args.payload)
        except orjson.JSONDecodeError as exc:
            return _fail(f"payload is not JSON: {exc}", 2)
    try:
        from orchestrator.sources.redis import enqueue
    except ImportError:
        return _fail("the redis extra is not installed: pip install 'orchestrator[redis]'", 2)
    from redis.exceptions import RedisError

    from orchestrator.errors import ConfigError

    try:
        entry_id = asyncio.run(enqueue(args.url, args.stream, args.kind, payload))
    except ConfigError as exc:
        return _fail(str(exc), 2)
    except ValueError as exc:  # redis-py's reading of a bad URL
        return _fail(f"bad --url: {exc}", 2)
    except (RedisError, OSError) as exc:
        return _fail(f"could not add to {args.stream}: {type(exc).__name__}: {exc}", 1)
    print(entry_id)
    return 0


def _fail(message: str, status: int) -> int:
    print(f"orchestrator: error: {message}", file=sys.stderr)
    return status

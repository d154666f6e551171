"""The worker module the replica tests run as ``orchestrator run --app-dir tests/sources
replica_worker:app --source ...``: handlers that write down, in a ledger, each run of an
entry, so that the test counts what ran, what ran twice and what never ran.

The ledger is a Redis server named by ``REPLICA_LEDGER_URL`` (it may be the broker, or
another server that stays up through the broker's outage). Per stream it keeps the hashes
``<stream>:started`` and ``<stream>:done``: entry id -> how many runs began or ended.

Kinds:
    quick: ends at once.
    sleep: sleeps ``payload`` seconds (a long job).
    crash: ends its own process with ``os._exit(3)``, as a segfault would.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import redis.asyncio as aredis

from orchestrator import Application, Job

__all__ = ["app", "done_key", "started_key"]

app = Application(name="replica-worker", workers=16)
_ledger: list[aredis.Redis] = []


def started_key(stream: str) -> str:
    """The hash of runs begun: entry id -> count."""
    return f"{stream}:started"


def done_key(stream: str) -> str:
    """The hash of runs ended: entry id -> count."""
    return f"{stream}:done"


def _client() -> aredis.Redis:
    if not _ledger:
        _ledger.append(aredis.Redis.from_url(os.environ["REPLICA_LEDGER_URL"]))
    return _ledger[0]


async def _note(job: Job, key: Callable[[str], str]) -> None:
    assert job.origin is not None, "the replica tests' jobs come from a stream"
    await _client().hincrby(key(job.origin.stream), job.origin.entry_id, 1)


@app.handler("quick")
async def quick(job: Job) -> None:
    """A no-op that writes down its run."""
    await _note(job, done_key)


@app.handler("sleep", timeout=120.0)
async def sleep(job: Job) -> None:
    """A long job: begun, ``payload`` seconds, ended."""
    await _note(job, started_key)
    await asyncio.sleep(float(job.payload))  # sleep-ok: the job's own work
    await _note(job, done_key)


@app.handler("crash")
async def crash(job: Job) -> None:
    """Writes down that it began, then ends the process."""
    await _note(job, started_key)
    os._exit(3)

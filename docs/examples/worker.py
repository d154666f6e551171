"""An example worker module: your handlers, run by ``orchestrator run``.

    orchestrator run --app-dir docs/examples worker:app

Two job kinds with the shape of real ones: ``fetch`` awaits I/O (a download, then a
write), ``notify`` calls an upstream that sometimes answers "try again" and is retried.
The I/O is simulated with ``asyncio.sleep`` so that the example needs nothing else; put
your client calls (aiohttp, asyncpg, redis...) in their place.

Settings given here are the module's defaults: ``ORCHESTRATOR_*`` variables and the
command's flags apply over them (``--workers 16`` wins over ``workers=8``).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from orchestrator import Application, Job

__all__ = ["UpstreamUnavailable", "app"]

app = Application(name="example-worker", workers=8)


class UpstreamUnavailable(Exception):
    """The upstream answered 503 or timed out: worth another attempt."""


def _field(job: Job, name: str, default: Any) -> Any:
    payload = job.payload if isinstance(job.payload, dict) else {}
    return payload.get(name, default)


@app.handler("fetch", timeout=10.0)
async def fetch(job: Job) -> dict[str, Any]:
    """Download ``url`` and store it; returns where it went and its digest.

    Payload: ``{"url": "https://...", "latency": 0.02}`` (seconds each await stands for).
    """
    url = str(_field(job, "url", "https://example.com/"))
    latency = float(_field(job, "latency", 0.02))
    await asyncio.sleep(latency)  # the download: an aiohttp GET
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    await asyncio.sleep(latency / 2)  # the write: an object store PUT, a database INSERT
    return {"url": url, "stored_as": f"pages/{digest}"}


@app.handler("notify", timeout=5.0, retries=3)
async def notify(job: Job) -> str:
    """Post a notification to a webhook that is sometimes unavailable. Raising makes the
    attempt fail; with ``retries=3`` the job gets up to 3 more attempts, and only the last
    failure is the job's outcome.

    Payload: ``{"to": "ops", "unavailable_for": 1}``: the webhook fails that many
    attempts first (a stand-in for an upstream restarting).
    """
    await asyncio.sleep(0.01)  # the HTTP round trip
    if job.attempt <= int(_field(job, "unavailable_for", 0)):
        raise UpstreamUnavailable(f"webhook answered 503 (attempt {job.attempt})")
    return f"notified {_field(job, 'to', 'ops')}"

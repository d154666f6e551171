"""The pollers of ``under_load.py``: a fleet that polls on schedule, open loop.

``/health`` and ``/ready`` at ``PROBE_RATE`` requests/s together (``PROBE_CLIENTS``
clients, no token, as probes are sent), ``/stats`` at 10/s and ``/metrics`` at 1/s with
the token. Each request leaves on schedule whether or not the previous one has answered;
latencies are wall clock as the poller saw them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from benchmarks.under_load_server import TOKEN, quantile

__all__ = ["Samples", "poll"]

AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROBE_CLIENTS = 4
PROBE_RATE = 200.0  # /health and /ready together
POLLERS = (("/stats", 10.0), ("/metrics", 1.0))


@dataclass
class Samples:
    """Latencies (seconds) and statuses of one endpoint in one run."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, seconds: float, status: int) -> None:
        self.latencies.append(seconds)
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def figures(self) -> dict[str, Any]:
        lat = self.latencies
        return {"count": len(lat), "p50": quantile(lat, 0.5),
                "p99": quantile(lat, 0.99), "p999": quantile(lat, 0.999),
                "max": max(lat, default=0.0),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())}}  # fmt: skip


async def poll(url: str, seconds: float) -> dict[str, Samples]:
    """Poll like a fleet for ``seconds``: open loop, each request sent on schedule."""
    samples = {path: Samples() for path in ("/health", "/ready", *(p for p, _ in POLLERS))}
    timeout = aiohttp.ClientTimeout(total=10)
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    pending: set[asyncio.Task[None]] = set()

    async def one(session: aiohttp.ClientSession, path: str) -> None:
        started = time.perf_counter()
        try:
            async with session.get(url + path) as resp:
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        samples[path].add(time.perf_counter() - started, status)

    async def client(paths: tuple[str, ...], rate: float, phase: float, auth: bool) -> None:
        headers = AUTH if auth else {}
        async with aiohttp.ClientSession(url, headers=headers, timeout=timeout) as session:
            due, n = loop.time() + phase, 0
            while due < end:
                await asyncio.sleep(max(0.0, due - loop.time()))
                task = loop.create_task(one(session, paths[n % len(paths)]))
                pending.add(task)
                task.add_done_callback(pending.discard)
                n, due = n + 1, due + 1.0 / rate
            while pending:
                await asyncio.gather(*list(pending))

    per_client = PROBE_RATE / PROBE_CLIENTS
    clients = [client(("/health", "/ready"), per_client, i / PROBE_RATE, False)
               for i in range(PROBE_CLIENTS)]  # fmt: skip
    clients += [client((path,), rate, 0.0, True) for path, rate in POLLERS]
    await asyncio.gather(*clients)
    return {k: s for k, s in samples.items() if s.latencies}

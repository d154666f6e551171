"""The load generators of ``load.py`` and ``ablation.py``: wrk, or an aiohttp client.

``run_wrk`` drives a URL with ``wrk`` pinned to CPU 1 (when ``taskset`` exists);
``run_python`` is the fallback when wrk is absent: aiohttp keep-alive connections in this
process (a lower ceiling). Both return a ``Result`` with requests/s, p50, p99, the errors
(non-2xx answers and socket errors) and the number of requests.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass, field

__all__ = ["Result", "median_result", "pinned", "run_python", "run_wrk"]


def pinned(cpu: int) -> list[str]:
    """The ``taskset`` prefix that pins a command to ``cpu`` (none on one core or without it)."""
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and os.cpu_count() != 1 else []


def pin_this_process(cpu: int) -> None:
    """Run this process on ``cpu`` only (nothing on one core or off Linux)."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {cpu})


@dataclass
class Result:
    target: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0
    cpu_us: float = field(default=0.0)
    """The server's CPU time per request, in microseconds."""


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(url: str, connections: int, duration: float, headers: dict[str, str]) -> Result:
    cmd = [*pinned(1), "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s",
           "--latency", "--timeout", "5s"]  # fmt: skip
    for key, value in headers.items():
        cmd += ["-H", f"{key}: {value}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return Result(url, connections, rps, p50, p99, errors, requests)


def run_python(url: str, connections: int, duration: float, headers: dict[str, str]) -> Result:
    """The fallback load generator: aiohttp keep-alive connections in this process."""
    import aiohttp

    async def drive() -> Result:
        latencies: list[float] = []
        errors = 0
        deadline = time.perf_counter() + duration
        conn = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=conn, headers=headers) as session:

            async def one_connection() -> None:
                nonlocal errors
                while (start := time.perf_counter()) < deadline:
                    async with session.get(url) as resp:
                        await resp.read()
                        if resp.status != 200:
                            errors += 1
                    latencies.append(time.perf_counter() - start)

            started = time.perf_counter()
            await asyncio.gather(*(one_connection() for _ in range(connections)))
            elapsed = time.perf_counter() - started
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        return Result(url, connections, len(latencies) / elapsed,
                      statistics.median(latencies) * 1000, p99 * 1000, errors,
                      len(latencies))  # fmt: skip

    return asyncio.run(drive())


def median_result(runs: list[Result]) -> Result:
    med = statistics.median
    return Result(runs[0].target, runs[0].connections, med(r.rps for r in runs),
                  med(r.p50_ms for r in runs), med(r.p99_ms for r in runs),
                  sum(r.errors for r in runs), sum(r.requests for r in runs),
                  med(r.cpu_us for r in runs))  # fmt: skip

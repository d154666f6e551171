"""The attacker of test_abuse.py, run as its own process: floods /stats from one client.

Usage: python flood.py BASE_URL CLIENT_IP CONNECTIONS TOTAL. It connects, prints "ready",
waits for a line on stdin, floods, prints "started" at its first answer and, at the end,
one JSON line: {"start", "end", "results": [[status, sent, seconds, retry_after], ...]}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp


async def main(base: str, client: str, connections: int, total: int) -> None:
    headers = {"X-Forwarded-For": client}
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def get(path: str) -> tuple[int, float, float, str | None]:
            sent = time.monotonic()
            async with session.get(base + path, headers=headers) as resp:
                await resp.read()
            return resp.status, sent, time.monotonic() - sent, resp.headers.get("Retry-After")

        await asyncio.gather(*(get("/live") for _ in range(connections)))  # connect first
        print("ready", flush=True)
        sys.stdin.readline()
        started = asyncio.Event()

        async def one_connection() -> list[tuple[int, float, float, str | None]]:
            out = []
            for _ in range(total // connections):
                out.append(await get("/stats"))
                if not started.is_set():
                    started.set()
                    print("started", flush=True)
            return out

        start = time.monotonic()
        results = await asyncio.gather(*(one_connection() for _ in range(connections)))
        flat = [r for rs in results for r in rs]
        print(json.dumps({"start": start, "end": time.monotonic(), "results": flat}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))

"""The consumers of ``redis_source.py``, one per process: ``python redis_contenders.py
CONTENDER URL STREAM GROUP COUNT WORKERS``, pinned to CPU 0.

- ``ours``: an ``Application`` (project defaults but WORKERS workers, the HTTP API on a
  free port) with a
  no-op handler and a ``RedisStreamSource``; it prints ``{"url": ...}`` once it serves.
- ``taskiq``: taskiq-redis's ``RedisStreamBroker`` under taskiq's ``Receiver`` with the
  ``taskiq worker`` defaults (no prefetch, ack when saved) but WORKERS tasks at once
  (its default is 100).
- ``bare``: redis-py's asyncio client, XREADGROUP COUNT 200 then one XACK per batch
  (WORKERS unused).

Each consumes COUNT entries, then prints ``{"jobs", "wall", "uncontended"}`` at once: seconds
from the first job handled to the last (wall clock, and without this thread's waits for a
CPU: ``gate.UncontendedClock``), then stops its consumer the ordinary way (``ours``
once a line on its standard input says the pollers are done) and exits.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent))  # run as a script from anywhere
from benchmarks.gate import Mark, UncontendedClock
from benchmarks.load_client import pin_this_process

__all__ = ["BATCH", "Counter", "taskiq_broker"]

BATCH = 200


class Counter:
    """Counts the jobs handled; times the first to the last; ``done`` at ``count``."""

    def __init__(self, count: int) -> None:
        self.count, self.handled = count, 0
        self.clock = UncontendedClock()
        self.first: Mark | None = None
        self.before = 0  # the jobs of the first call: handled before the clock starts
        self.figures: dict[str, float] = {}
        self.done = asyncio.Event()

    def __call__(self, n: int = 1) -> None:
        if self.first is None:
            self.first, self.before = self.clock.now(), n
        self.handled += n
        if self.handled >= self.count and not self.done.is_set():
            wall = time.perf_counter() - self.first.wall
            self.figures = {"jobs": self.handled - self.before, "wall": wall,
                            "uncontended": self.clock.since(self.first)}  # fmt: skip
            say(self.figures)  # now: the consumer's stop is not timed, nor polled
            self.done.set()


def say(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


def taskiq_broker(url: str, stream: str, group: str) -> Any:
    """taskiq-redis's stream broker reading ``stream`` from its start as ``group``."""
    from taskiq_redis import RedisStreamBroker

    return RedisStreamBroker(url, queue_name=stream, consumer_group_name=group, consumer_id="0")


async def ours(url: str, stream: str, group: str, counter: Counter, workers: int) -> None:
    from orchestrator import Application, Job
    from orchestrator.sources.redis import RedisStreamSource

    app = Application(workers=workers, enable_http=True, http_host="127.0.0.1", http_port=0)

    @app.handler("noop")
    async def noop(job: Job) -> None:
        counter()

    app.add_source(RedisStreamSource(url, stream=stream, group=group, batch=BATCH))
    async with app:
        say({"url": app.http_url})
        await counter.done.wait()
        await asyncio.to_thread(sys.stdin.readline)  # the pollers are done: stop


async def taskiq(url: str, stream: str, group: str, counter: Counter, workers: int) -> None:
    from taskiq.receiver import Receiver

    broker = taskiq_broker(url, stream, group)
    broker.is_worker_process = True

    async def noop() -> None:
        counter()

    broker.register_task(noop, task_name="noop")

    receiver = Receiver(broker, max_async_tasks=workers, max_prefetch=0)
    finish = asyncio.Event()
    listening = asyncio.create_task(receiver.listen(finish))
    say({"url": None})
    await counter.done.wait()
    finish.set()
    try:
        async with asyncio.timeout(5.0):
            await listening
    except TimeoutError:
        pass  # its prefetcher blocks in XREADGROUP: the acks are written by now
    await broker.shutdown()


async def bare(url: str, stream: str, group: str, counter: Counter, workers: int) -> None:
    import redis.asyncio as aredis

    client = aredis.Redis.from_url(url)
    say({"url": None})
    while not counter.done.is_set():
        reply: Any = await client.xreadgroup(group, "bare", {stream: ">"}, count=BATCH, block=1000)
        if reply:
            ids = [entry_id for entry_id, _ in reply[0][1]]
            await client.xack(stream, group, *ids)
            counter(len(ids))
    await client.aclose()


async def main(contender: str, url: str, stream: str, group: str, count: int, workers: int) -> None:
    counter = Counter(count)
    consume = {"ours": ours, "taskiq": taskiq, "bare": bare}[contender]
    await consume(url, stream, group, counter, workers)


if __name__ == "__main__":
    import logging

    from orchestrator.log import configure_logging

    pin_this_process(0)
    configure_logging("json", "warning", stream=open("/dev/null", "w"))  # noqa: SIM115
    logging.disable(logging.WARNING)  # taskiq's debug and info lines
    name, url, stream, group, count, workers = sys.argv[1:7]
    asyncio.run(main(name, url, stream, group, int(count), int(workers)))

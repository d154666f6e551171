"""The jobs in flight, and the wait for them when an application stops."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import structlog

__all__ = ["InFlight"]

log = structlog.get_logger("orchestrator.application")


class InFlight:
    """Counts the jobs submitted and not answered yet, and lets a stop wait for them.

    :meth:`drain` waits until none is left, at most ``timeout`` seconds, and returns at
    once when :meth:`hurry` is called.
    """

    def __init__(self) -> None:
        self.count = 0
        self._drained = asyncio.Event()
        self._drained.set()
        self._hurry = asyncio.Event()

    def track(self, future: asyncio.Future[Any]) -> None:
        """Count a submitted job until its ``future`` is done."""
        self.count += 1
        if self.count == 1:
            self._drained.clear()
        future.add_done_callback(self._done)

    def _done(self, _: asyncio.Future[Any]) -> None:
        self.count -= 1
        if self.count == 0:
            self._drained.set()

    def rearm(self) -> None:
        """Forget an earlier :meth:`hurry` (the application starts again)."""
        self._hurry.clear()

    def hurry(self) -> None:
        """Cut a drain in progress (or the next one) short."""
        self._hurry.set()

    async def drain(self, timeout: float, *also: Awaitable[object]) -> None:
        """Wait for every job in flight (at most ``timeout`` seconds) and for ``also``,
        unless :meth:`hurry` is called first (then the waits are cancelled)."""
        main: asyncio.Future[Any] = asyncio.gather(self._wait_for_jobs(timeout), *also)
        hurried: asyncio.Future[Any] = asyncio.ensure_future(self._hurry.wait())
        await asyncio.wait({main, hurried}, return_when=asyncio.FIRST_COMPLETED)
        for task in (main, hurried):
            task.cancel()
        await asyncio.gather(main, hurried, return_exceptions=True)
        if self._hurry.is_set():
            log.warning("drain_cut_short", jobs_in_flight=self.count)

    async def _wait_for_jobs(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self._drained.wait()
        except TimeoutError:
            log.warning("stop_timeout_expired", timeout_seconds=timeout, jobs_in_flight=self.count)

"""ConnectionPool: pooled connections over a ``ConnectionFactory``, bounded and self-healing."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from typing import Any

import structlog

from orchestrator.clock import utc_iso
from orchestrator.errors import NotRunning, PoolExhausted
from orchestrator.health import ComponentHealth
from orchestrator.job_events import error_fields
from orchestrator.stats import ConnectError, PoolStats, bounded
from orchestrator.types import Clock, ConnectionFactory

__all__ = ["ConnectionPool", "PooledConnection"]

log = structlog.get_logger("orchestrator.pool")


class PooledConnection:
    """A connection owned by the pool, with its usage bookkeeping."""

    __slots__ = ("created_at", "id", "last_used_at", "raw", "retire_reason", "state", "uses")

    def __init__(self, conn_id: int, raw: Any, now: float) -> None:
        self.id = conn_id
        self.raw = raw
        self.created_at = now
        self.last_used_at = now
        self.uses = 0
        self.state = "idle"
        self.retire_reason: str | None = None


class ConnectionPool:
    """An async pool between ``min_size`` and ``max_size`` connections.

    ``acquire`` hands out an idle connection, or creates one while below ``max_size``, or
    waits up to the acquire timeout. A connection that fails its ping, or that its user
    released as broken, is closed and replaced. Without a factory the pool stays empty.

    Args:
        factory: the connection factory, or None for no connections at all.
        clock: time source for ages, idle times and the starvation window.
        failure_threshold: consecutive connect failures that make the pool unhealthy.
        starvation_window: seconds an acquire timeout keeps the pool unhealthy.
        ping_after_idle: ping (when the factory can) a connection idle this long before reuse.
    """

    def __init__(
        self,
        factory: ConnectionFactory | None,
        clock: Clock,
        *,
        min_size: int = 0,
        max_size: int = 8,
        acquire_timeout: float = 5.0,
        failure_threshold: int = 3,
        starvation_window: float = 10.0,
        ping_after_idle: float = 5.0,
        max_items: int | None = None,
    ) -> None:
        self._factory = factory
        self._max_items = max_items
        self._ping = getattr(factory, "ping", None)
        self._clock = clock
        self.min_size = min_size if factory is not None else 0
        self.max_size = max_size
        self.acquire_timeout = acquire_timeout
        self._failure_threshold = failure_threshold
        self._starvation_window = starvation_window
        self._ping_after_idle = ping_after_idle
        self._ids = itertools.count(1)
        self._conns: dict[int, PooledConnection] = {}
        self._idle: deque[PooledConnection] = deque()
        self._waiters: deque[asyncio.Future[PooledConnection]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._connects: set[asyncio.Task[None]] = set()  # cancelled at stop: may never end
        self._connecting = 0
        self._open = False
        self._last_starved_at: float | None = None
        self.created_total = 0
        self.closed_total = 0
        self.connect_failures_total = 0
        self.consecutive_failures = 0
        self.acquire_timeouts_total = 0
        self.last_connect_error: ConnectError | None = None

    @property
    def enabled(self) -> bool:
        """Whether the pool has a factory (jobs get connections)."""
        return self._factory is not None

    def connections(self) -> list[PooledConnection]:
        """The live connections (idle and in use)."""
        return list(self._conns.values())

    async def acquire(self, timeout: float | None = None) -> PooledConnection:
        """A connection for exclusive use; give it back with ``release``.

        Raises:
            NotRunning: when the pool is stopped or has no factory.
            PoolExhausted: when none became available within the timeout.
        """
        if not self._open or self._factory is None:
            raise NotRunning("connection pool is not running")
        while self._idle:
            pc = self._idle.pop()
            stale = self._clock.now() - pc.last_used_at >= self._ping_after_idle
            if stale and self._ping is not None:
                pc.state = "pinging"  # out of the idle deque: not "idle" while we await
                if not await self._ping_ok(pc):
                    self._discard(pc, "ping_failed")
                    continue
            return self._lend(pc)
        waiter: asyncio.Future[PooledConnection] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._replenish()
        limit = self.acquire_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                pc = await waiter
        except TimeoutError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # handed over in the same loop turn as the deadline: use it, never leak it
                return self._lend(waiter.result())
            self.acquire_timeouts_total += 1
            self._last_starved_at = self._clock.now()
            raise PoolExhausted(
                f"no connection available within {limit}s "
                f"({len(self._conns)}/{self.max_size} in use or connecting)"
            ) from None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())
            raise
        finally:
            if not waiter.done():
                waiter.cancel()
        return self._lend(pc)

    def _lend(self, pc: PooledConnection) -> PooledConnection:
        pc.state = "in_use"
        pc.uses += 1
        return pc

    def release(self, pc: PooledConnection, *, broken: bool = False) -> None:
        """Give a connection back; a broken or retiring one is closed and replaced."""
        pc.last_used_at = self._clock.now()
        if broken or pc.retire_reason is not None or not self._open:
            self._discard(pc, "broken" if broken else pc.retire_reason or "pool_stopped")
            return
        pc.state = "idle"
        self._hand_over(pc)

    def _hand_over(self, pc: PooledConnection) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                pc.state = "in_use"  # lent on arrival: "idle" means "in the idle deque"
                waiter.set_result(pc)
                return
        pc.state = "idle"
        self._idle.append(pc)

    def retire(self, conn_id: int, reason: str) -> bool:
        """Close an idle connection now, or an in-use one when it is released."""
        pc = self._conns.get(conn_id)
        if pc is None or pc.retire_reason is not None:
            return False
        pc.retire_reason = reason
        if pc.state == "idle":
            self._idle.remove(pc)
            self._discard(pc, reason)
        return True

    def _discard(self, pc: PooledConnection, reason: str) -> None:
        if self._conns.pop(pc.id, None) is None:
            return
        pc.state = "closed"
        self._spawn(self._close(pc, reason))
        if self._open:
            self._replenish()

    async def _close(self, pc: PooledConnection, reason: str) -> None:
        assert self._factory is not None
        try:
            await self._factory.close(pc.raw)
        except Exception as exc:
            log.warning("connection_close_failed", conn_id=pc.id, error=repr(exc))
        self.closed_total += 1
        log.debug("connection_closed", conn_id=pc.id, reason=reason, uses=pc.uses)

    async def _ping_ok(self, pc: PooledConnection) -> bool:
        assert self._ping is not None
        try:
            return bool(await self._ping(pc.raw))
        except Exception:
            return False

    def _replenish(self) -> None:
        """Start connects for waiters and up to ``min_size``, never past ``max_size``."""
        if self._factory is None:
            return
        pending_waiters = sum(1 for w in self._waiters if not w.done())
        while len(self._conns) + self._connecting < self.max_size and (
            pending_waiters > self._connecting
            or len(self._conns) + self._connecting < self.min_size
        ):
            self._connecting += 1
            task = self._spawn(self._connect_one())
            self._connects.add(task)
            task.add_done_callback(self._connects.discard)

    async def _connect_one(self) -> None:
        assert self._factory is not None
        try:
            raw = await self._factory.connect()
        except Exception as exc:
            self.connect_failures_total += 1
            self.consecutive_failures += 1
            fields = error_fields(exc)  # its message is in the stats (with the token), not logs
            self.last_connect_error = {"type": fields["error_type"], "message": fields["message"],
                                       "at": utc_iso(self._clock.wall())}  # fmt: skip
            log.warning("connection_failed", error=fields["error_type"],
                        consecutive=self.consecutive_failures)  # fmt: skip
            return
        finally:
            self._connecting -= 1
        self.consecutive_failures = 0
        self.created_total += 1
        pc = PooledConnection(next(self._ids), raw, self._clock.now())
        if not self._open:
            self._spawn(self._close(pc, "pool_stopped"))
            return
        self._conns[pc.id] = pc
        self._hand_over(pc)

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def maintain(self) -> None:
        """Top the pool back up to ``min_size`` (called by the recycler's sweep)."""
        if self._open:
            self._replenish()

    async def start(self) -> None:
        """Open the pool and create ``min_size`` connections.

        Raises:
            Exception: the factory's error when the minimum connections cannot be created.
        """
        self._open = True
        self._replenish()
        await self._settle()
        if len(self._conns) < self.min_size:
            error = self.last_connect_error["type"] if self.last_connect_error else "no error"
            await self.stop()
            raise ConnectionError(f"could not open {self.min_size} connections: {error}")

    async def _settle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        """Close every connection and fail every waiter."""
        self._open = False
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(NotRunning("connection pool stopped"))
        self._waiters.clear()
        for task in list(self._connects):  # a hung connect must not hang the shutdown
            task.cancel()
        for pc in list(self._conns.values()):
            self._conns.pop(pc.id)
            self._spawn(self._close(pc, "pool_stopped"))
        self._idle.clear()
        await self._settle()

    def stats(self) -> PoolStats:
        """Sizes, counters and one entry per connection (at most ``max_items`` of them)."""
        now = self._clock.now()
        in_use = len(self._conns) - len(self._idle)
        listed, omitted = bounded(self._conns.values(), self._max_items)
        return {
            "enabled": self.enabled,
            "size": len(self._conns),
            "idle": len(self._idle),
            "in_use": in_use,
            "connecting": self._connecting,
            "waiting": sum(1 for w in self._waiters if not w.done()),
            "min_size": self.min_size,
            "max_size": self.max_size,
            "created_total": self.created_total,
            "closed_total": self.closed_total,
            "connect_failures_total": self.connect_failures_total,
            "acquire_timeouts_total": self.acquire_timeouts_total,
            "last_connect_error": self.last_connect_error,
            "connections": [
                {
                    "id": pc.id,
                    "state": pc.state,
                    "uses": pc.uses,
                    "age_seconds": now - pc.created_at,
                    "idle_seconds": now - pc.last_used_at if pc.state == "idle" else 0.0,
                }
                for pc in listed
            ],
            "connections_omitted": omitted,
        }

    def health(self) -> ComponentHealth:
        """Unhealthy after repeated connect failures or a recent starved waiter."""
        if self._factory is None:
            return ComponentHealth.ok("no connection factory configured")
        if self.consecutive_failures >= self._failure_threshold:
            return ComponentHealth.failing(
                f"connection factory failed {self.consecutive_failures} times in a row "
                f"(last: {self.last_connect_error['type'] if self.last_connect_error else '?'})"
            )
        if self._last_starved_at is not None:
            ago = self._clock.now() - self._last_starved_at
            if ago < self._starvation_window:
                return ComponentHealth.failing(
                    f"a waiter timed out for a connection {ago:.1f}s ago "
                    f"({len(self._conns)}/{self.max_size} connections)"
                )
        return ComponentHealth.ok()

"""ConnectionPool: sizing, waiting, timeouts, failures, pings, retirement and health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from orchestrator import FakeClock, NotRunning, PoolExhausted
from orchestrator.components.pool import ConnectionPool, PooledConnection
from tests.fakes import FakeConnection, FakeFactory, settle, until

STATS_KEYS = {
    "enabled",
    "size",
    "idle",
    "in_use",
    "connecting",
    "waiting",
    "min_size",
    "max_size",
    "created_total",
    "closed_total",
    "connect_failures_total",
    "acquire_timeouts_total",
    "last_connect_error",
    "connections",
    "connections_omitted",
}
CONNECTION_KEYS = {"id", "state", "uses", "age_seconds", "idle_seconds"}


PoolMaker = Callable[..., ConnectionPool]


@pytest.fixture
async def make_pool() -> AsyncIterator[PoolMaker]:
    """``make_pool(factory, clock, min_size=0, max_size=2)``: a pool, stopped after the test."""
    made: list[ConnectionPool] = []

    def make(
        factory: FakeFactory | None, clock: FakeClock, *, min_size: int = 0, max_size: int = 2
    ) -> ConnectionPool:
        pool = ConnectionPool(factory, clock, min_size=min_size, max_size=max_size,
                              acquire_timeout=5)  # fmt: skip
        made.append(pool)
        return pool

    yield make
    for pool in made:
        await pool.stop()


@dataclass
class Contended:
    """A started pool of one connection: ``held`` is in use, ``waiting`` an acquire for it."""

    pool: ConnectionPool
    held: PooledConnection
    waiting: asyncio.Future[PooledConnection]


ContendedMaker = Callable[..., Awaitable[Contended]]


@pytest.fixture
def contended(factory: FakeFactory, clock: FakeClock, make_pool: PoolMaker) -> ContendedMaker:
    """``await contended(min_size=0)``: a started pool of one connection, held, and an acquire
    waiting for it (counted in the stats)."""

    async def make(*, min_size: int = 0) -> Contended:
        pool = make_pool(factory, clock, min_size=min_size, max_size=1)
        await pool.start()
        held = await pool.acquire()
        waiting = asyncio.ensure_future(pool.acquire())
        await until(lambda: pool.stats()["waiting"] == 1)
        return Contended(pool, held, waiting)

    return make


def raw(pc: PooledConnection) -> FakeConnection:
    conn = pc.raw
    assert isinstance(conn, FakeConnection)
    return conn


async def test_start_opens_min_size_connections(
    factory: FakeFactory, clock: FakeClock, make_pool: PoolMaker
) -> None:
    """start() opens min_size connections, all idle, with the documented stats keys."""
    pool = make_pool(factory, clock, min_size=2, max_size=4)
    await pool.start()
    stats = pool.stats()
    assert set(stats) == STATS_KEYS
    assert {k: stats[k] for k in ("enabled", "size", "idle", "in_use", "created_total")} == {
        "enabled": True,
        "size": 2,
        "idle": 2,
        "in_use": 0,
        "created_total": 2,
    }
    assert [set(c) for c in stats["connections"]] == [CONNECTION_KEYS] * 2
    assert pool.health().healthy


async def test_without_factory_the_pool_is_disabled_and_healthy(
    clock: FakeClock, make_pool: PoolMaker
) -> None:
    """With no factory the pool is disabled, empty, healthy, and acquire raises NotRunning."""
    pool = make_pool(None, clock, min_size=1)
    await pool.start()
    assert not pool.enabled
    assert pool.stats()["size"] == 0
    assert pool.stats()["min_size"] == 0
    verdict = pool.health()
    assert verdict.healthy
    assert verdict.reason == "no connection factory configured"
    with pytest.raises(NotRunning):
        await pool.acquire()


async def test_acquire_before_start_raises_not_running(
    factory: FakeFactory, clock: FakeClock, make_pool: PoolMaker
) -> None:
    """A pool that is not started refuses to lend connections."""
    with pytest.raises(NotRunning):
        await make_pool(factory, clock).acquire()


async def test_acquire_creates_on_demand_up_to_max_size(
    factory: FakeFactory, clock: FakeClock, make_pool: PoolMaker
) -> None:
    """Acquires create connections on demand, never more than max_size."""
    pool = make_pool(factory, clock, max_size=2)
    await pool.start()
    first, second = await pool.acquire(), await pool.acquire()
    assert raw(first) is not raw(second)
    assert (first.uses, pool.stats()["in_use"], factory.connect_calls) == (1, 2, 2)
    with pytest.raises(PoolExhausted):
        await pool.acquire(timeout=0)
    assert factory.connect_calls == 2
    pool.release(first)
    assert (await pool.acquire()) is first
    assert first.uses == 2


async def test_a_waiter_gets_the_next_released_connection(contended: ContendedMaker) -> None:
    """When the pool is at max_size, a waiting acquire gets the connection released next."""
    c = await contended()
    c.pool.release(c.held)
    assert (await c.waiting) is c.held
    assert c.pool.stats()["waiting"] == 0


async def test_acquire_timeout_starves_then_recovers_after_the_window(
    factory: FakeFactory, clock: FakeClock, make_pool: PoolMaker
) -> None:
    """An acquire timeout raises PoolExhausted; the pool is unhealthy for 10 s, then healthy."""
    pool = make_pool(factory, clock, max_size=1)
    await pool.start()
    held = await pool.acquire()
    with pytest.raises(PoolExhausted, match=r"1/1"):
        await pool.acquire(timeout=0)
    assert pool.stats()["acquire_timeouts_total"] == 1
    verdict = pool.health()
    assert not verdict.healthy
    assert verdict.reason is not None
    assert "timed out" in verdict.reason
    clock.advance(9.9)
    assert not pool.health().healthy
    clock.advance(0.1)
    assert pool.health().healthy
    pool.release(held)


async def test_a_hand_over_racing_the_deadline_is_not_leaked(
    factory: FakeFactory, clock: FakeClock, make_pool: PoolMaker
) -> None:
    """A connection handed over in the same loop turn as the acquire deadline is not lost."""
    pool = make_pool(factory, clock, max_size=1)
    await pool.start()
    held = await pool.acquire()
    racing = asyncio.ensure_future(pool.acquire(timeout=0))
    await asyncio.sleep(0)  # the waiter is queued and its deadline callback is scheduled
    pool.release(held)  # hands the connection over before the deadline callback runs
    try:
        got = await racing
    except PoolExhausted:
        got = None
    if got is not None:
        pool.release(got)
    assert pool.stats()["idle"] == 1
    assert (await pool.acquire(timeout=0)) is held


@pytest.mark.parametrize(
    ("failures", "healthy"), [(1, True), (2, True), (3, False), (4, False)],
    ids=["1-failure", "2-failures", "3-failures", "4-failures"],
)  # fmt: skip
async def test_consecutive_connect_failures_make_the_pool_unhealthy(
    factory: FakeFactory, clock: FakeClock, failures: int, healthy: bool, make_pool: PoolMaker
) -> None:
    """Three consecutive connect failures make the pool unhealthy; fewer do not."""
    pool = make_pool(factory, clock, min_size=1)
    await pool.start()
    factory.fail = True
    pool.retire(pool.connections()[0].id, "test")  # its replacement fails to connect
    await settle()
    for _ in range(failures - 1):
        pool.maintain()
        await settle()
    assert pool.stats()["connect_failures_total"] == failures
    verdict = pool.health()
    assert verdict.healthy is healthy
    if not healthy:
        assert verdict.reason == (  # the type only: messages may carry credentials
            f"connection factory failed {failures} times in a row (last: ConnectionRefusedError)"
        )


async def test_a_successful_connect_resets_the_failure_streak(
    factory: FakeFactory, clock: FakeClock, make_pool: PoolMaker
) -> None:
    """After failures, one successful connect makes the pool healthy again."""
    pool = make_pool(factory, clock, min_size=1)
    await pool.start()
    factory.fail = True
    pool.retire(pool.connections()[0].id, "test")
    for _ in range(3):
        pool.maintain()
        await settle()
    assert not pool.health().healthy
    factory.fail = False
    pool.maintain()
    await settle()
    assert pool.health().healthy
    assert pool.stats()["size"] == 1


async def test_start_fails_when_min_size_cannot_be_reached(
    factory: FakeFactory, clock: FakeClock, make_pool: PoolMaker
) -> None:
    """start() raises ConnectionError and leaves the pool closed when connects fail."""
    factory.fail = True
    pool = make_pool(factory, clock, min_size=1)
    with pytest.raises(ConnectionError, match="could not open 1 connections"):
        await pool.start()
    with pytest.raises(NotRunning):
        await pool.acquire()
    assert pool.stats()["size"] == 0


async def test_a_broken_connection_is_closed_and_replaced(
    factory: FakeFactory, clock: FakeClock, make_pool: PoolMaker
) -> None:
    """release(broken=True) closes the connection and tops the pool back up to min_size."""
    pool = make_pool(factory, clock, min_size=1)
    await pool.start()
    pc = await pool.acquire()
    pool.release(pc, broken=True)
    await settle()
    assert factory.closed == [raw(pc)]
    stats = pool.stats()
    assert (stats["size"], stats["created_total"], stats["closed_total"]) == (1, 2, 1)
    replacement = await pool.acquire()
    assert raw(replacement) is not raw(pc)
    assert raw(replacement).open


async def test_a_stale_idle_connection_that_fails_its_ping_is_replaced(
    factory: FakeFactory, clock: FakeClock, make_pool: PoolMaker
) -> None:
    """A connection idle past ping_after_idle is pinged; a failed ping closes and replaces it."""
    pool = make_pool(factory, clock)
    await pool.start()
    first = await pool.acquire()
    pool.release(first)
    clock.advance(5.0)
    factory.ping_ok = False
    second = await pool.acquire()
    assert factory.ping_calls == 1
    assert raw(second) is not raw(first)
    await settle()
    assert factory.closed == [raw(first)]
    pool.release(second)


@pytest.mark.parametrize(
    ("idle_for", "pings"), [(4.9, 0), (5.0, 1)], ids=["fresh-no-ping", "stale-pinged"]
)
async def test_only_stale_connections_are_pinged(
    factory: FakeFactory, clock: FakeClock, idle_for: float, pings: int, make_pool: PoolMaker
) -> None:
    """A connection is pinged only when idle for ping_after_idle; a good ping reuses it."""
    pool = make_pool(factory, clock)
    await pool.start()
    first = await pool.acquire()
    pool.release(first)
    clock.advance(idle_for)
    assert (await pool.acquire()) is first
    assert factory.ping_calls == pings


async def test_retire_closes_idle_now_and_in_use_on_release(
    factory: FakeFactory, clock: FakeClock, make_pool: PoolMaker
) -> None:
    """retire() closes an idle connection at once and an in-use one when it is released."""
    pool = make_pool(factory, clock, min_size=2)
    await pool.start()
    busy = await pool.acquire()
    idle = pool.connections()[0] if pool.connections()[0] is not busy else pool.connections()[1]
    assert pool.retire(idle.id, "max_age")
    assert pool.retire(busy.id, "max_uses")
    assert not pool.retire(busy.id, "again")
    assert not pool.retire(999, "unknown")
    await settle()
    assert factory.closed == [raw(idle)]
    pool.release(busy)
    await settle()
    assert factory.closed == [raw(idle), raw(busy)]
    assert pool.stats()["size"] == 2  # topped up to min_size


async def test_retire_during_a_ping_is_safe(
    factory: FakeFactory, clock: FakeClock, make_pool: PoolMaker
) -> None:
    """Retiring a connection while its pre-use ping is in flight closes it after use."""
    pool = make_pool(factory, clock)
    await pool.start()
    pc = await pool.acquire()
    pool.release(pc)
    clock.advance(5.0)
    factory.ping_gate = asyncio.Event()
    acquiring = asyncio.ensure_future(pool.acquire())
    await until(lambda: factory.ping_calls == 1)
    assert pool.stats()["connections"][0]["state"] == "pinging"
    assert pool.retire(pc.id, "idle_timeout")
    factory.ping_gate.set()
    assert (await acquiring) is pc
    pool.release(pc)
    await settle()
    assert factory.closed == [raw(pc)]


async def test_retire_during_a_hand_over_is_safe(
    factory: FakeFactory, contended: ContendedMaker
) -> None:
    """Retiring a connection just handed to a waiter lets the waiter use it, then closes it."""
    c = await contended()
    pool, pc = c.pool, c.held
    pool.release(pc)
    assert pool.retire(pc.id, "max_uses")
    assert (await c.waiting) is pc
    pool.release(pc)
    await settle()
    assert factory.closed == [raw(pc)]


async def test_stats_count_connecting_and_waiting(
    factory: FakeFactory, clock: FakeClock, make_pool: PoolMaker
) -> None:
    """While a connect is blocked, stats show one connecting and one waiting acquire."""
    pool = make_pool(factory, clock)
    await pool.start()
    factory.connect_gate = asyncio.Event()
    acquiring = asyncio.ensure_future(pool.acquire())
    await until(lambda: factory.connect_calls == 1)
    stats = pool.stats()
    assert (stats["connecting"], stats["waiting"], stats["size"]) == (1, 1, 0)
    factory.connect_gate.set()
    pc = await acquiring
    stats = pool.stats()
    assert (stats["connecting"], stats["waiting"], stats["in_use"]) == (0, 0, 1)
    assert stats["connections"][0]["state"] == "in_use"
    pool.release(pc)


async def test_stats_report_ages_and_idle_time(
    factory: FakeFactory, clock: FakeClock, make_pool: PoolMaker
) -> None:
    """Each connection reports its age and, when idle, how long it has been idle."""
    pool = make_pool(factory, clock, min_size=1)
    await pool.start()
    clock.advance(2.0)
    pc = await pool.acquire()
    clock.advance(1.0)
    pool.release(pc)
    clock.advance(0.5)
    (entry,) = pool.stats()["connections"]
    assert entry == {
        "id": pc.id,
        "state": "idle",
        "uses": 1,
        "age_seconds": 3.5,
        "idle_seconds": 0.5,
    }


async def test_stop_fails_waiters_and_closes_every_connection(
    factory: FakeFactory, contended: ContendedMaker
) -> None:
    """stop() fails waiting acquires with NotRunning and closes idle and in-use connections."""
    c = await contended(min_size=1)
    pool = c.pool
    await pool.stop()
    with pytest.raises(NotRunning):
        await c.waiting
    assert factory.live == []
    assert pool.stats()["size"] == 0
    pool.release(c.held)  # a late release after stop is harmless
    await settle()
    assert pool.stats()["size"] == 0


async def test_stop_does_not_wait_for_a_hung_connect(
    factory: FakeFactory, clock: FakeClock, make_pool: PoolMaker
) -> None:
    """stop() cancels a connect that never returns instead of hanging the shutdown."""
    pool = make_pool(factory, clock)
    await pool.start()
    factory.connect_gate = asyncio.Event()  # never set: the backend does not answer
    waiting = asyncio.ensure_future(pool.acquire())
    await until(lambda: factory.connect_calls == 1)
    async with asyncio.timeout(5):
        await pool.stop()
    with pytest.raises(NotRunning):
        await waiting
    assert pool.stats()["connecting"] == 0

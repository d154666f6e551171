"""Clocks: the fake clock drives sleeps deterministically; timestamps format as UTC."""

from __future__ import annotations

import asyncio

from orchestrator import FakeClock, MonotonicClock
from orchestrator.clock import utc_iso
from tests.fakes import settle, until


def test_utc_iso_formats_to_the_second() -> None:
    """utc_iso() formats epoch seconds as ISO 8601 UTC with a Z suffix."""
    assert utc_iso(0) == "1970-01-01T00:00:00Z"
    assert utc_iso(1_764_930_600.9) == "2025-12-05T10:30:00Z"


def test_fake_clock_moves_only_when_advanced() -> None:
    """now() and wall() move together, and only on advance()."""
    clock = FakeClock(start=10.0, wall_start=100.0)
    assert (clock.now(), clock.wall()) == (10.0, 100.0)
    clock.advance(2.5)
    assert (clock.now(), clock.wall()) == (12.5, 102.5)


async def test_fake_sleep_wakes_when_its_deadline_passes() -> None:
    """sleep() returns only once the clock has been advanced past its deadline, in order."""
    clock = FakeClock()
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    tasks = [asyncio.ensure_future(sleeper(n, s)) for n, s in (("late", 2.0), ("early", 1.0))]
    await until(lambda: clock.sleepers == 2)
    clock.advance(0.5)
    await settle()
    assert woke == []
    clock.advance(0.5)
    await until(lambda: woke == ["early"])
    clock.advance(5.0)
    await until(lambda: woke == ["early", "late"])
    await asyncio.gather(*tasks)
    assert clock.sleepers == 0


async def test_fake_sleep_of_zero_returns_at_once() -> None:
    """sleep(0) and negative sleeps complete without advancing the clock."""
    clock = FakeClock()
    await clock.sleep(0)
    await clock.sleep(-1)
    assert clock.now() == 1000.0


async def test_fake_sleep_cancelled_is_not_counted() -> None:
    """A cancelled sleeper no longer counts as waiting."""
    clock = FakeClock()
    task = asyncio.ensure_future(clock.sleep(1.0))
    await until(lambda: clock.sleepers == 1)
    task.cancel()
    await settle()
    assert clock.sleepers == 0
    clock.advance(2.0)  # waking a cancelled sleeper is harmless


async def test_monotonic_clock() -> None:
    """The real clock's now() never goes back and sleep(0) just yields."""
    clock = MonotonicClock()
    first = clock.now()
    await clock.sleep(0)
    assert clock.now() >= first
    assert clock.wall() > 1_700_000_000

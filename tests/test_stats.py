"""Bounded per-item listings in the stats."""

from __future__ import annotations

from orchestrator import Application, FakeClock
from orchestrator.stats import bounded
from tests.fakes import FakeFactory


def test_bounded() -> None:
    """bounded() keeps the first items and counts the rest."""
    assert bounded([1, 2, 3], None) == ([1, 2, 3], 0)
    assert bounded([1, 2, 3], 3) == ([1, 2, 3], 0)
    assert bounded([1, 2, 3], 2) == ([1, 2], 1)
    assert bounded([1, 2, 3], 0) == ([], 3)


async def test_stats_max_items_bounds_workers_and_connections(clock: FakeClock) -> None:
    """stats_max_items lists that many workers and connections; the counts stay exact."""
    app = Application(clock=clock, workers=5, pool_min_size=4, pool_max_size=4,
                      connection_factory=FakeFactory(), stats_max_items=2)  # fmt: skip
    async with app:
        stats = app.get_stats()
    assert [w["id"] for w in stats["workers"]["workers"]] == [1, 2]
    assert stats["workers"]["workers_omitted"] == 3
    assert stats["workers"]["alive"] == 5
    assert len(stats["pool"]["connections"]) == 2
    assert stats["pool"]["connections_omitted"] == 2
    assert stats["pool"]["size"] == 4

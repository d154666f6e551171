"""Bounded per-item listings in the stats."""

from __future__ import annotations

from typing import Any, get_type_hints

from orchestrator import Application, FakeClock
from orchestrator.http.metric_table import LABELLED, PER_ITEM, SCALARS, Labelled, PerItem, Scalar
from orchestrator.http.openapi.schemas import STATS_SCHEMAS
from orchestrator.stats import (
    ApplicationStats,
    LifecycleStats,
    PoolStats,
    RecyclerStats,
    RegistryStats,
    RouterStats,
    WorkersStats,
    bounded,
)
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


SECTION_TYPES: dict[str, Any] = {
    "application": ApplicationStats, "registry": RegistryStats, "pool": PoolStats,
    "router": RouterStats, "workers": WorkersStats, "lifecycle": LifecycleStats,
    "recycler": RecyclerStats,
}  # fmt: skip
"""Each component section and its TypedDict."""


def test_each_section_has_exactly_its_typed_keys() -> None:
    """A real application's sections have the keys of their TypedDicts, no more, no fewer."""
    stats = Application().get_stats()
    for name, typed in SECTION_TYPES.items():
        assert set(stats[name]) == set(get_type_hints(typed)), name


def test_metrics_and_schemas_name_typed_keys() -> None:
    """Every metric reading a component section, and every section schema, uses its keys."""
    specs: list[Scalar | Labelled | PerItem] = [*SCALARS, *LABELLED, *PER_ITEM]
    for spec in specs:
        section, *rest = spec.path
        if section in SECTION_TYPES and rest:
            assert rest[0] in get_type_hints(SECTION_TYPES[section]), spec.name
    for name, typed in SECTION_TYPES.items():
        schema = STATS_SCHEMAS[f"{name.capitalize()}Stats"]
        assert set(schema["properties"]) == set(get_type_hints(typed)), name

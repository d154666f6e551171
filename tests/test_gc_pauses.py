"""Garbage collection pauses, timed from gc.callbacks, in the stats and on /metrics."""

from __future__ import annotations

import gc

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator import Application
from orchestrator.gc_pauses import GC_PAUSE_BUCKETS, GcPauses, GcPolicy


@pytest.fixture(autouse=True)
def _no_application_left_running() -> None:
    """These tests read the process-wide collector: nothing else may hold it."""
    assert GcPolicy._freezers == 0, "an earlier test left an application running (frozen)"
    assert GcPolicy._tuners == 0, "an earlier test left an application running (threshold)"


class Ticks:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_pauses_land_in_their_bucket_per_generation() -> None:
    pauses = GcPauses()
    pauses.observe(0, 0.0003)
    pauses.observe(2, 0.020)
    pauses.observe(2, 0.5)  # past the last bound: +Inf
    stats = pauses.stats()
    assert stats["collections_total"] == {"0": 1, "1": 0, "2": 2}
    gen2 = stats["pause_seconds"]["2"]
    assert gen2["buckets"]["0.01"] == 0
    assert gen2["buckets"]["0.025"] == 1
    assert gen2["buckets"]["0.1"] == 1
    assert gen2["buckets"]["+Inf"] == 2 == gen2["count"]
    assert gen2["sum"] == 0.52
    assert stats["longest_pause_seconds"] == 0.5
    assert list(gen2["buckets"]) == [*map(repr, GC_PAUSE_BUCKETS), "+Inf"]


def test_a_real_collection_is_timed_while_installed() -> None:
    """gc.collect() calls the callback with start and stop; the clock times the pause."""
    ticks = Ticks()
    pauses = GcPauses(ticks)

    def advance(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            ticks.now += 0.004  # the collection "takes" 4 ms on this clock

    pauses.install()
    gc.callbacks.insert(gc.callbacks.index(pauses) + 1, advance)
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(advance)
        pauses.uninstall()
    assert pauses not in gc.callbacks
    stats = pauses.stats()
    assert stats["collections_total"]["2"] == 1
    assert stats["pause_seconds"]["2"]["buckets"]["0.005"] == 1
    assert stats["pause_seconds"]["2"]["buckets"]["0.0025"] == 0
    gc.collect()  # uninstalled: not counted
    assert pauses.stats()["collections_total"]["2"] == 1


async def test_an_application_freezes_by_default_and_exports_its_pauses() -> None:
    """Default settings: start-up objects frozen, collections timed, the histogram on
    /metrics (parsed with prometheus_client), the worst loop lag since start in the stats;
    everything given back at stop."""
    app = Application(enable_http=True, http_host="127.0.0.1", http_port=0)
    async with app:
        assert gc.get_freeze_count() > 0
        gc.collect(0)
        stats = app.get_stats()["application"]
        assert stats["gc"]["frozen_objects"] > 0
        assert stats["gc"]["collections_total"]["0"] >= 1
        assert stats["event_loop_lag_max_seconds"] >= stats["event_loop_lag_seconds"]
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{app.http_url}/metrics") as resp,
        ):
            text = await resp.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    pauses = families["orchestrator_gc_pause_seconds"]
    assert pauses.type == "histogram"
    counts = {s.labels["generation"]: s.value for s in pauses.samples
              if s.name.endswith("_count")}  # fmt: skip
    assert set(counts) == {"0", "1", "2"}
    assert counts["0"] >= 1
    assert families["orchestrator_gc_frozen_objects"].samples[0].value > 0
    assert "orchestrator_event_loop_lag_max_seconds" in families
    assert gc.get_freeze_count() == 0
    assert app.monitors.gc_pauses not in gc.callbacks


async def test_gc_freeze_off_leaves_the_collector_alone() -> None:
    app = Application(gc_freeze=False)
    async with app:
        assert gc.get_freeze_count() == 0
        assert app.get_stats()["application"]["gc"]["frozen_objects"] == 0


async def test_the_youngest_generations_threshold_is_raised_while_running() -> None:
    """gc_gen0_threshold (7000 by default) while the application runs; the interpreter's
    thresholds again after stop; None leaves them alone."""
    before = gc.get_threshold()
    app = Application()
    async with app:
        assert gc.get_threshold() == (7000, before[1], before[2])
    assert gc.get_threshold() == before
    async with Application(gc_gen0_threshold=None):
        assert gc.get_threshold() == before


async def test_two_applications_share_the_policy_until_the_last_one_stops() -> None:
    """The collector is process-wide: the first application to stop leaves the freeze and
    the threshold to the other; the last one gives the interpreter's settings back."""
    before = gc.get_threshold()
    first, second = Application(), Application()
    await first.start()
    await second.start()
    await first.stop(timeout=1.0)
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == 7000
    await second.stop(timeout=1.0)
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before

"""Router: the bounded FIFO between submitters and workers, backpressure and saturation."""

from __future__ import annotations

import asyncio

import pytest
import structlog

from orchestrator import FakeClock, NotRunning, Overloaded, QueueFull
from orchestrator.components.router import Router
from orchestrator.job import Envelope
from tests.fakes import make_envelope, settle, until

STATS_KEYS = {
    "accepting",
    "queued",
    "capacity",
    "routed_total",
    "rejected_total",
    "rejected_by_reason",
    "standing",
    "queue_target_seconds",
    "oldest_queued_age_seconds",
    "full_ratio",
    "saturated",
}


async def started_router(
    clock: FakeClock, capacity: int = 3, grace: float = 5.0, target: float | None = None
) -> Router:
    """A started router, bounded by length only unless given a queue ``target``."""
    router = Router(capacity, clock, saturation_grace=grace, queue_target=target)
    await router.start()
    return router


async def test_get_returns_envelopes_in_order(clock: FakeClock) -> None:
    """Envelopes come out in the order they were put, and each is counted as routed."""
    router = await started_router(clock)
    envs = [make_envelope(clock, i) for i in range(3)]
    for env in envs:
        router.put(env)
    assert [await router.get() for _ in envs] == envs
    assert router.stats()["routed_total"] == 3
    assert len(router) == 0


async def test_a_waiting_get_receives_the_next_put(clock: FakeClock) -> None:
    """A get() on an empty queue waits and receives the next envelope directly."""
    router = await started_router(clock)
    getting = asyncio.ensure_future(router.get())
    await settle()
    assert not getting.done()
    env = make_envelope(clock)
    router.put(env)
    assert (await getting) is env
    assert router.stats()["queued"] == 0


@pytest.mark.parametrize("stage", ["before-start", "after-stop-intake"])
async def test_put_when_not_accepting_raises_not_running(clock: FakeClock, stage: str) -> None:
    """put() raises NotRunning before start() and after stop_intake()."""
    router = Router(3, clock)
    if stage == "after-stop-intake":
        await router.start()
        router.stop_intake()
    with pytest.raises(NotRunning):
        router.put(make_envelope(clock))
    assert not router.accepting


async def test_a_full_queue_raises_queue_full_and_counts_rejections(clock: FakeClock) -> None:
    """At capacity put() raises QueueFull, counts rejected_total and keeps the queued ones."""
    router = await started_router(clock, capacity=2)
    router.put(make_envelope(clock, 1))
    router.put(make_envelope(clock, 2))
    for _ in range(2):
        with pytest.raises(QueueFull, match="2 jobs"):
            router.put(make_envelope(clock, 3))
    stats = router.stats()
    assert (stats["queued"], stats["rejected_total"]) == (2, 2)
    first = await router.get()
    assert first is not None
    assert first.job.id == 1


async def test_oldest_queued_age_follows_the_clock(clock: FakeClock) -> None:
    """oldest_queued_age_seconds is the age of the head of the queue (0 when empty)."""
    router = await started_router(clock)
    assert router.stats()["oldest_queued_age_seconds"] == 0.0
    router.put(make_envelope(clock, 1))
    clock.advance(1.5)
    router.put(make_envelope(clock, 2))
    clock.advance(1.0)
    assert router.stats()["oldest_queued_age_seconds"] == 2.5
    await router.get()
    assert router.stats()["oldest_queued_age_seconds"] == 1.0


@pytest.mark.parametrize(
    ("queued", "full_for", "healthy"),
    [(2, 60.0, True), (3, 2.4, True), (3, 2.5, False), (3, 60.0, False)],
    ids=["not-full", "full-under-half-the-grace", "full-half-the-grace", "full-past-grace"],
)
async def test_saturation_grace(
    clock: FakeClock, queued: int, full_for: float, healthy: bool
) -> None:
    """The router turns unhealthy once full for half of the last saturation_grace seconds."""
    router = await started_router(clock, capacity=3, grace=5.0)
    clock.advance(10.0)  # a history of not being full
    for i in range(queued):
        router.put(make_envelope(clock, i))
    clock.advance(full_for)
    verdict = router.health()
    assert verdict.healthy is healthy
    if not healthy:
        assert verdict.reason is not None
        assert verdict.reason.startswith("queue of 3 full ")
        assert "of the last 5s (0 jobs refused)" in verdict.reason


async def test_a_queue_refilled_at_once_is_saturated(clock: FakeClock) -> None:
    """A full queue that frees one slot now and then, refilled at once, is saturated.

    Every 0.1 s a worker takes a job and the next submission fills the queue again, while
    three more submissions are refused: full 90 % of the time, though never for long.
    """
    router = await started_router(clock, capacity=2, grace=5.0)
    with structlog.testing.capture_logs() as logs:
        router.put(make_envelope(clock, 0))
        router.put(make_envelope(clock, 1))
        for n in range(30):  # 3 s
            clock.advance(0.09)
            await router.get()  # a slot frees...
            clock.advance(0.01)
            router.put(make_envelope(clock, n))  # ...and is taken again
            for _ in range(3):
                with pytest.raises(QueueFull):
                    router.put(make_envelope(clock, n))
        verdict = router.health()
    assert not verdict.healthy
    assert verdict.reason is not None
    assert "jobs refused" in verdict.reason
    saturated = [e for e in logs if e["event"] == "router_saturated"]
    assert len(saturated) == 1  # once per episode, however many refusals
    assert saturated[0]["log_level"] == "warning"
    assert saturated[0]["refused"] > 0
    assert router.stats()["saturated"] is True
    assert router.stats()["full_ratio"] > 0.5


async def test_saturation_clears_once_the_queue_stays_unfull(clock: FakeClock) -> None:
    """A saturated router recovers when the queue has not been full for half the window.

    ``router_recovered`` is logged once, with how long the episode lasted and the jobs
    refused during it.
    """
    router = await started_router(clock, capacity=2, grace=1.0)
    router.put(make_envelope(clock, 1))
    router.put(make_envelope(clock, 2))
    with structlog.testing.capture_logs() as logs:
        clock.advance(2.0)
        with pytest.raises(QueueFull):
            router.put(make_envelope(clock, 3))
        assert not router.health().healthy
        await router.get()
        await router.get()
        clock.advance(0.4)
        assert not router.health().healthy  # full for most of the last second still
        clock.advance(0.3)
        assert router.health().healthy
        assert router.health().healthy
    events = [e["event"] for e in logs]
    assert events == ["router_saturated", "router_recovered"]
    recovered = logs[-1]
    assert recovered["refused"] == 1
    assert recovered["duration_seconds"] == pytest.approx(0.7)


async def test_zero_grace_is_unhealthy_as_soon_as_full(clock: FakeClock) -> None:
    """With saturation_grace=0 a full queue is unhealthy at once."""
    router = await started_router(clock, capacity=1, grace=0.0)
    router.put(make_envelope(clock))
    assert not router.health().healthy


@pytest.mark.parametrize("stage", ["before-start", "draining"])
async def test_health_is_unhealthy_when_not_accepting(clock: FakeClock, stage: str) -> None:
    """A router that does not accept jobs is unhealthy and says so."""
    router = Router(3, clock)
    if stage == "draining":
        await router.start()
        assert router.health().healthy
        router.stop_intake()
    verdict = router.health()
    assert not verdict.healthy
    assert verdict.reason == "router is not accepting jobs"


async def test_stats_keys(clock: FakeClock) -> None:
    """stats() has exactly the documented keys and values."""
    router = await started_router(clock, capacity=7)
    assert router.stats() == {
        "accepting": True,
        "queued": 0,
        "capacity": 7,
        "routed_total": 0,
        "rejected_total": 0,
        "rejected_by_reason": {"queue_full": 0, "standing_wait": 0},
        "standing": False,
        "queue_target_seconds": None,
        "oldest_queued_age_seconds": 0.0,
        "full_ratio": 0.0,
        "saturated": False,
    }
    assert set(router.stats()) == STATS_KEYS


async def test_a_cancelled_waiter_passes_its_envelope_to_the_next_waiter(
    clock: FakeClock,
) -> None:
    """An envelope handed to a getter cancelled before it ran goes to another waiting getter."""
    router = await started_router(clock)
    first = asyncio.ensure_future(router.get())
    second = asyncio.ensure_future(router.get())
    await settle()
    env = make_envelope(clock)
    router.put(env)  # handed to the first getter...
    first.cancel()  # ...which is cancelled before it resumes
    await until(second.done)
    assert second.result() is env
    assert first.cancelled()
    assert router.stats()["routed_total"] == 1
    assert len(router) == 0


async def test_a_cancelled_waiter_puts_its_envelope_back_first(clock: FakeClock) -> None:
    """Without another waiter, a handed but untaken envelope returns to the head of the queue."""
    router = await started_router(clock)
    getting = asyncio.ensure_future(router.get())
    await settle()
    handed = make_envelope(clock, 1)
    router.put(handed)
    getting.cancel()
    await settle()
    router.put(make_envelope(clock, 2))
    assert (await router.get()) is handed
    assert router.stats()["routed_total"] == 1


async def test_stop_wakes_getters_and_fails_queued_jobs(clock: FakeClock) -> None:
    """stop() gives waiting getters None and fails every queued envelope with NotRunning."""
    router = await started_router(clock)
    waiting = asyncio.ensure_future(router.get())
    await settle()
    await router.stop()
    assert (await waiting) is None
    router2 = await started_router(clock)
    queued: list[Envelope] = [make_envelope(clock, i) for i in range(2)]
    for env in queued:
        router2.put(env)
    await router2.stop()
    for env in queued:
        with pytest.raises(NotRunning, match="stopped before the job ran"):
            await env.future
    assert await router2.get() is None
    assert router2.stats()["queued"] == 0


async def test_a_queue_refusing_all_the_time_is_saturated_though_seldom_full(
    clock: FakeClock,
) -> None:
    """Workers empty the queue in every turn and submitters overfill it in the next: full
    a tenth of the time, yet refusing jobs throughout. Saturated after half the window of
    refusals, healthy again once refusals have stopped for half of it."""
    router = await started_router(clock, capacity=2, grace=5.0)
    n = 0
    with structlog.testing.capture_logs() as logs:
        for turn in range(40):  # 4 s of 0.1 s turns
            for _ in range(2):  # the burst: two queued...
                n += 1
                router.put(make_envelope(clock, n))
            with pytest.raises(QueueFull):  # ...one refused
                router.put(make_envelope(clock, n + 1))
            clock.advance(0.01)
            await router.get()  # the workers empty it
            await router.get()
            clock.advance(0.09)
            if turn == 15:
                assert router.health().healthy  # 1.6 s of refusals: not yet half the window
        verdict = router.health()
        assert not verdict.healthy
        assert router.stats()["full_ratio"] < 0.2
        assert verdict.reason is not None
        assert ", refusing jobs through " in verdict.reason
        clock.advance(3.0)  # no submissions: the refusals age out of the window
        assert router.health().healthy
    events = [e["event"] for e in logs]
    assert events == ["router_saturated", "router_recovered"]


async def test_a_burst_shorter_than_the_interval_is_absorbed(clock: FakeClock) -> None:
    """Jobs waiting over the target for less than the interval: nothing is refused."""
    router = await started_router(clock, capacity=100, target=0.005)
    for n in range(50):
        router.put(make_envelope(clock, n))
    for _ in range(50):  # 1 ms apart: the last leaves 59 ms after the burst
        clock.advance(0.001)
        await router.get()
    assert not router.standing
    assert router.refusal() is None
    assert router.stats()["rejected_total"] == 0


async def standing(clock: FakeClock) -> Router:
    """A router whose jobs all left over 5 ms late for 110 ms: standing, 90 old jobs left."""
    router = await started_router(clock, capacity=1000, target=0.005)
    for n in range(200):
        router.put(make_envelope(clock, n))
    for _ in range(110):  # 1 ms apart, every one of them over 5 ms late
        clock.advance(0.001)
        await router.get()
    assert router.standing
    return router


async def test_a_standing_queue_is_held_near_its_target(clock: FakeClock) -> None:
    """Standing: a submission is refused (Overloaded, a QueueFull) while the oldest queued
    job has waited over the target, and taken while it has not."""
    router = await standing(clock)
    with pytest.raises(Overloaded, match="standing queue") as refused:
        router.put(make_envelope(clock, 999))
    assert isinstance(refused.value, QueueFull)
    assert refused.value.reason == "standing_wait"
    stats = router.stats()
    assert stats["rejected_total"] == 1
    assert stats["rejected_by_reason"] == {"queue_full": 0, "standing_wait": 1}
    assert stats["standing"] is True
    while router:  # the old jobs leave; a young queue takes submissions again
        await router.get()
    router.put(make_envelope(clock, 1000))
    clock.advance(0.004)
    router.put(make_envelope(clock, 1001))  # the oldest waited 4 ms: taken
    clock.advance(0.002)
    assert isinstance(router.refusal(), Overloaded)  # now 6 ms: refused
    assert router.standing


async def test_a_standing_queue_ends_once_nothing_was_refused_for_an_interval(
    clock: FakeClock,
) -> None:
    """It stays standing while it refuses; a job leaving under the target after a whole
    interval without refusals ends it."""
    router = await standing(clock)
    assert router.refusal() is not None
    while router:
        await router.get()
    router.put(make_envelope(clock, 1))
    clock.advance(0.001)
    await router.get()  # under the target, but a refusal came less than an interval ago
    assert router.standing
    clock.advance(0.1)
    router.put(make_envelope(clock, 2))
    clock.advance(0.001)
    await router.get()
    assert not router.standing


async def test_a_standing_queue_refusing_through_the_grace_stays_healthy(
    clock: FakeClock,
) -> None:
    """Shedding is not saturation: a standing queue refusing through all of
    ``saturation_grace`` (5 s) keeps the router healthy, where a full one turns it
    unhealthy (an HTTP flood that made the demo's jobs wait turned /health 503)."""
    router = await standing(clock)
    for _ in range(60):  # 6 s: a refusal every 100 ms, the queue kept standing, probed
        assert isinstance(router.refusal(), Overloaded)
        assert router.health().healthy
        clock.advance(0.1)
    assert router.stats()["rejected_by_reason"]["standing_wait"] == 60
    full = await started_router(clock, capacity=1)
    full.put(make_envelope(clock, 1))
    for _ in range(60):
        assert isinstance(full.refusal(), QueueFull)
        full.health()
        clock.advance(0.1)
    assert not full.health().healthy


async def test_without_a_target_only_the_length_bounds_the_queue(clock: FakeClock) -> None:
    """queue_target=None: however long jobs wait, only a full queue refuses."""
    router = await started_router(clock, capacity=1000, target=None)
    for n in range(200):
        router.put(make_envelope(clock, n))
    for _ in range(150):
        clock.advance(0.01)
        await router.get()
    assert not router.standing
    router.put(make_envelope(clock, 999))

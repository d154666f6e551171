"""The in-progress limit: the lag-steered controller and the gate that applies it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest

from orchestrator import FakeClock
from orchestrator.components.limit import (
    FLOW_WINDOW,
    STEER_INTERVAL,
    GradientLimit,
    InProgressGate,
    InProgressLimit,
    JobFlow,
)
from orchestrator.loop_lag import LoopSample
from tests.components.test_workers import make_rig
from tests.fakes import BlockingHandler, settle, until

TARGET = 0.002


Plant = Callable[[int], tuple[float, float]]


def plant(cost: float, base: float = 0.0001, knee: int = 1) -> Plant:
    """A saturated loop whose lag grows with the jobs in progress (``cost`` seconds per job
    per turn), and which has idle time below ``knee`` jobs at once (Little's law)."""
    return lambda limit: (base + cost * limit, min(1.0, limit / knee))


def steer(controller: GradientLimit, loop: Plant, intervals: int) -> list[int]:
    """The limits of ``intervals`` control intervals against ``loop(limit)``."""
    return [controller.update(*loop(controller.current)) for _ in range(intervals)]


def test_it_converges_on_a_steady_load() -> None:
    """50 µs per job per turn and a 2 ms target: the limit settles near 38 and stays."""
    controller = GradientLimit(200, floor=4, target=TARGET)
    limits = steer(controller, plant(50e-6), 40)
    settled = limits[-20:]
    assert all(34 <= n <= 42 for n in settled), settled
    assert max(settled) - min(settled) <= 2


def test_it_backs_off_within_a_bounded_time_when_the_lag_jumps() -> None:
    """The jobs get four times as costly: within 16 intervals (1.6 s) the limit is near
    the new equilibrium (about a quarter), and the lag back under twice the target."""
    controller = GradientLimit(200, floor=4, target=TARGET)
    steer(controller, plant(50e-6), 40)
    before = controller.current
    costly = plant(200e-6)
    limits = steer(controller, costly, 16)
    assert limits[-1] <= before / 3
    assert costly(limits[-1])[0] < 2 * TARGET


def test_it_recovers_when_the_load_falls() -> None:
    """With the loop quick again, the limit climbs back to its ceiling within 12 intervals."""
    controller = GradientLimit(200, floor=4, target=TARGET)
    steer(controller, plant(400e-6), 40)
    assert controller.current <= 10
    limits = steer(controller, lambda _: (0.0001, 0.3), 12)
    assert limits[-1] == 200


def test_it_never_leaves_its_bounds() -> None:
    """Whatever the lag (none, tiny, huge), the limit stays within floor..ceiling."""
    rng = random.Random(7)
    controller = GradientLimit(50, floor=3, target=TARGET)
    for _ in range(5000):
        lag = rng.choice([0.0, 1e-9, rng.uniform(0, 0.01), rng.uniform(0.01, 5.0)])
        assert 3 <= controller.update(lag) <= 50
    assert controller.update(10.0) >= 3
    for _ in range(100):
        controller.update(10.0)
    assert controller.current == 3
    for _ in range(100):
        controller.update(0.0)
    assert controller.current == 50


@pytest.mark.parametrize(
    ("ceiling", "floor", "target", "smoothing"),
    [(4, 0, TARGET, 0.5), (4, 5, TARGET, 0.5), (4, 1, 0.0, 0.5), (4, 1, TARGET, 0.0)],
    ids=["floor-0", "floor-over-ceiling", "no-target", "no-smoothing"],
)
def test_bad_parameters_are_refused(
    ceiling: int, floor: int, target: float, smoothing: float
) -> None:
    """The bounds and the target are checked when the controller is made."""
    with pytest.raises(ValueError, match=r"floor|target"):
        GradientLimit(ceiling, floor=floor, target=target, smoothing=smoothing)


async def test_the_gate_parks_workers_over_the_limit_and_wakes_them_in_order() -> None:
    """Two places: the third worker waits; a place left is given to the first parked."""
    gate = InProgressGate(2)
    assert gate.try_enter()
    assert gate.try_enter()
    assert not gate.try_enter()
    order: list[str] = []

    async def parked(name: str) -> None:
        await gate.wait()
        order.append(name)

    first = asyncio.ensure_future(parked("first"))
    second = asyncio.ensure_future(parked("second"))
    await asyncio.sleep(0)
    assert gate.parked == 2
    gate.leave()
    await first
    assert (order, gate.active, gate.parked) == (["first"], 2, 1)
    gate.set_limit(3)  # a higher limit wakes at once
    await second
    assert (order, gate.active, gate.parked) == (["first", "second"], 3, 0)


async def test_a_lower_limit_binds_as_places_are_left() -> None:
    """Lowering the limit interrupts nobody; places come back only under the new limit."""
    gate = InProgressGate(3)
    for _ in range(3):
        assert gate.try_enter()
    gate.set_limit(1)
    assert gate.active == 3
    gate.leave()
    gate.leave()
    assert not gate.try_enter()  # one place held, limit 1
    gate.leave()
    assert gate.try_enter()


async def test_a_cancelled_worker_gives_back_a_place_it_was_given() -> None:
    """A parked worker cancelled in the turn it was given a place frees it for the next."""
    gate = InProgressGate(1)
    assert gate.try_enter()
    one = asyncio.ensure_future(gate.wait())
    two = asyncio.ensure_future(gate.wait())
    await asyncio.sleep(0)
    gate.leave()  # the place goes to `one`...
    one.cancel()  # ...which is cancelled before it runs
    await asyncio.gather(one, return_exceptions=True)
    await two
    assert (gate.active, gate.parked) == (1, 0)


def test_it_never_trades_throughput_for_lag() -> None:
    """Costly jobs (lag over target at any limit past 5) but a core that idles below 90
    jobs at once: the limit stays about the knee, where the core is just busy (at least
    0.9 of it on average, never under 0.85), never near where the lag would be on target."""
    controller = GradientLimit(200, floor=4, target=TARGET)
    settled = steer(controller, plant(400e-6, knee=90), 60)[-30:]
    assert min(settled) >= 0.85 * 90, settled
    assert sum(settled) / len(settled) >= 0.9 * 90, settled
    assert max(settled) <= 100, settled


def test_with_idle_time_it_rises_by_what_the_idle_share_says() -> None:
    """Half busy, lag over target: never lowered; the estimate is twice the limit."""
    controller = GradientLimit(200, floor=4, target=TARGET, smoothing=1.0)
    controller.limit = 40.0
    assert controller.update(0.010, 0.5) == 80
    assert controller.update(0.010, 1.0) == 64  # saturated: the gradient's cut (bounded)


def run_jobs(
    controller: GradientLimit,
    intervals: int,
    lag: Callable[[int], float],
    capacity: float = 12_000.0,
    await_seconds: float = 0.005,
) -> list[int]:
    """Steer against a saturated core that finishes ``min(capacity, limit / duration)``
    jobs per second (Little's law), where a job lasts its await plus the loop lag
    ``lag(limit)``; the workers' ``JobFlow`` is fed as they would feed it."""
    flow = JobFlow(round(FLOW_WINDOW / STEER_INTERVAL))
    limits = []
    for _ in range(intervals):
        limit = controller.current
        duration = await_seconds + lag(limit)
        finished = round(min(capacity, limit / duration) * STEER_INTERVAL)
        for _ in range(finished):
            flow.finished(duration)
        keep = flow.product(STEER_INTERVAL)
        limits.append(controller.update(lag(limit), 1.0, keep=keep))
    return limits


def test_the_flow_is_the_peak_rate_times_the_shortest_duration() -> None:
    """Nothing finished: 0. Then the window's peak rate times its shortest mean duration,
    each possibly from another interval; a full window forgets the oldest."""
    flow = JobFlow(3)
    assert flow.product(0.1) == 0.0
    for seconds in (0.01, 0.03):  # 20 jobs/s, mean 20 ms
        flow.finished(seconds)
    assert flow.product(0.1) == pytest.approx(20 * 0.02)
    for _ in range(50):  # 500 jobs/s, 40 ms each
        flow.finished(0.04)
    assert flow.product(0.1) == pytest.approx(500 * 0.02)
    assert flow.product(0.1) == pytest.approx(500 * 0.02)  # nothing finished: still
    assert flow.product(0.1) == pytest.approx(500 * 0.04)  # the 20 ms interval left
    flow.clear()
    assert flow.product(0.1) == 0.0


def test_a_lag_the_jobs_do_not_cause_does_not_cut_their_throughput_away() -> None:
    """The loop lags 10 ms whatever the limit (callers retrying refusals at once): a cut
    only loses jobs. The limit stops at the bandwidth-delay product's probe (12,000 jobs/s
    x 15 ms = 180, x 0.8) for the whole window instead of falling to the floor, and only
    then probes a fifth lower."""
    controller = GradientLimit(200, floor=4, target=TARGET)
    window = round(FLOW_WINDOW / STEER_INTERVAL)
    limits = run_jobs(controller, window, lambda _: 0.010)
    assert min(limits) >= 143, limits  # 0.8 x 180, rounded
    later = run_jobs(controller, window, lambda _: 0.010)
    assert min(later) >= 0.8 * min(limits) - 1, later


def test_a_lag_the_jobs_cause_is_cut_through_the_keep() -> None:
    """A core saturated by the jobs (12,000 jobs/s, 5 ms awaits): past 60 jobs at once
    every extra job only waits for the loop (lag = limit / 12,000 - 5 ms). The cuts
    shorten the jobs while the rate stays, so the bandwidth-delay product falls with the
    limit, and the limit settles where the lag meets its target: 12,000 x 7 ms = 84."""
    controller = GradientLimit(200, floor=4, target=TARGET)
    settled = run_jobs(controller, 60, lambda limit: max(0.0001, limit / 12_000 - 0.005))
    assert all(80 <= n <= 90 for n in settled[-20:]), settled


class Lags:
    """A lag source that gives the samples it is handed, one per take()."""

    def __init__(self) -> None:
        self.samples: list[LoopSample | None] = []

    def take(self) -> LoopSample | None:
        return self.samples.pop(0) if self.samples else None


async def steps(clock: FakeClock, n: int) -> None:
    """Let the steering run ``n`` intervals of the fake clock."""
    for _ in range(n):
        await until(lambda: clock.sleepers == 1)
        clock.advance(STEER_INTERVAL)
        await asyncio.sleep(0)


async def test_the_limit_is_steered_every_interval_of_its_clock(clock: FakeClock) -> None:
    """Each interval the limit reads the lag source and sets the gate; a saturated slow
    loop lowers it (counted), a quick one lets it climb back; stats tell it all."""
    lags = Lags()
    limit = InProgressLimit(100, clock, lag=lags, target=0.002, floor=5)
    await limit.start()
    try:
        lags.samples = [LoopSample(0.008, 1.0)] * 3
        await steps(clock, 3)
        assert limit.gate.limit < 50
        stats = limit.stats()
        assert stats["adaptive_limit"] is True
        assert stats["in_progress_limit"] == limit.gate.limit
        assert (stats["lag_seconds"], stats["loop_busy"]) == (0.008, 1.0)
        assert stats["limit_lowered_total"] == 3
        assert (stats["limit_floor"], stats["lag_target_seconds"]) == (5, 0.002)
        lags.samples = [LoopSample(0.0001, 0.3)] * 10
        await steps(clock, 10)
        assert limit.gate.limit == 100
    finally:
        await limit.stop()


async def test_without_a_lag_source_the_limit_is_the_ceiling(clock: FakeClock) -> None:
    """adaptive_limit off: the gate holds ``workers`` places and nothing steers it."""
    limit = InProgressLimit(8, clock)
    await limit.start()
    assert clock.sleepers == 0
    stats = limit.stats()
    assert (stats["adaptive_limit"], stats["in_progress_limit"]) == (False, 8)
    await limit.stop()


async def test_workers_take_jobs_only_within_the_limit(clock: FakeClock) -> None:
    """Four workers, limit 2: two jobs run, the others wait queued; a higher limit lets
    them in; lowering it again stops none of the running ones."""
    rig = await make_rig(clock, count=4)
    hold = BlockingHandler()
    rig.register("hold", hold, timeout=None)
    rig.workers.limit.gate.set_limit(2)
    envs = [rig.submit("hold", n) for n in range(4)]
    await until(lambda: len(hold.started) == 2)
    await settle()
    assert len(hold.started) == 2
    assert rig.workers.stats()["in_progress"] == 2
    rig.workers.limit.gate.set_limit(4)
    await until(lambda: len(hold.started) == 4)
    rig.workers.limit.gate.set_limit(1)
    hold.release_all()
    assert [await env.future for env in envs] == [0, 1, 2, 3]
    await rig.workers.stop()
    await rig.router.stop()

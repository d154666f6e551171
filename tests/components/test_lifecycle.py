"""Lifecycle: states, ordered start with rollback, reverse stop, and restart supervision."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import Application, ComponentHealth, FakeClock, Job, WorkerCrashed
from orchestrator.components.lifecycle import Lifecycle, State
from orchestrator.types import Component, StatsDict
from tests.fakes import make_app, until

STATS_KEYS = {"state", "started_at", "uptime_seconds", "restarts_total", "pending_restarts",
              "transitions"}  # fmt: skip


class Recorded:
    """A component that appends ``start:name`` / ``stop:name`` to a shared event list."""

    def __init__(
        self, name: str, events: list[str], *, fail_start: bool = False, fail_stop: bool = False
    ) -> None:
        self.name = name
        self.events = events
        self.fail_start = fail_start
        self.fail_stop = fail_stop

    async def start(self) -> None:
        self.events.append(f"start:{self.name}")
        if self.fail_start:
            raise RuntimeError(f"{self.name} cannot start")

    async def stop(self) -> None:
        self.events.append(f"stop:{self.name}")
        if self.fail_stop:
            raise RuntimeError(f"{self.name} cannot stop")

    def stats(self) -> StatsDict:
        return {}

    def health(self) -> ComponentHealth:
        return ComponentHealth.ok()


class Respawns:
    """A respawn target that records the worker ids it was asked to restart."""

    def __init__(self) -> None:
        self.respawned: list[int] = []

    def respawn(self, worker_id: int) -> None:
        self.respawned.append(worker_id)


def steps(*components: Recorded) -> list[tuple[str, Component]]:
    return [(c.name, c) for c in components]


async def test_start_all_starts_in_order(clock: FakeClock) -> None:
    """start_all() starts every component in the given order."""
    events: list[str] = []
    lifecycle = Lifecycle(clock)
    await lifecycle.start_all(steps(*(Recorded(n, events) for n in "abc")))
    assert events == ["start:a", "start:b", "start:c"]
    assert lifecycle.state is State.STARTING


async def test_a_failed_start_rolls_back_in_reverse(clock: FakeClock) -> None:
    """When a component fails to start, those started before stop in reverse; state failed."""
    events: list[str] = []
    lifecycle = Lifecycle(clock)
    parts = [Recorded("a", events), Recorded("b", events), Recorded("c", events, fail_start=True),
             Recorded("d", events)]  # fmt: skip
    with pytest.raises(RuntimeError, match="c cannot start"):
        await lifecycle.start_all(steps(*parts))
    assert events == ["start:a", "start:b", "start:c", "stop:b", "stop:a"]
    assert lifecycle.state is State.FAILED
    assert not lifecycle.health().healthy


async def test_stop_all_runs_in_reverse_past_failures(clock: FakeClock) -> None:
    """stop_all() stops in reverse, continues past failures, then raises them as a group."""
    events: list[str] = []
    lifecycle = Lifecycle(clock)
    parts = [Recorded("a", events, fail_stop=True), Recorded("b", events),
             Recorded("c", events, fail_stop=True)]  # fmt: skip
    with pytest.raises(ExceptionGroup) as info:
        await lifecycle.stop_all(steps(*parts))
    assert events == ["stop:c", "stop:b", "stop:a"]
    assert [str(e) for e in info.value.exceptions] == ["c cannot stop", "a cannot stop"]


async def test_stop_all_without_errors_returns(clock: FakeClock) -> None:
    """stop_all() with components that stop cleanly raises nothing."""
    events: list[str] = []
    await Lifecycle(clock).stop_all(steps(Recorded("a", events), Recorded("b", events)))
    assert events == ["stop:b", "stop:a"]


async def test_then_starts_once_running_and_stops_first(clock: FakeClock) -> None:
    """The parts of ``then`` start after the components, once the state is running, and
    stop before them, in reverse."""
    events: list[str] = []
    lifecycle = Lifecycle(clock)
    parts = steps(Recorded("a", events), Recorded("b", events))
    then = steps(Recorded("m", events), Recorded("h", events))
    await lifecycle.start_all(parts, then=then)
    assert lifecycle.state is State.RUNNING
    await lifecycle.stop_all(parts, then=then)
    assert events == ["start:a", "start:b", "start:m", "start:h",
                      "stop:h", "stop:m", "stop:b", "stop:a"]  # fmt: skip


async def test_a_failure_in_then_rolls_everything_back(clock: FakeClock) -> None:
    """A part of ``then`` that fails to start stops every started part and component in
    reverse, past a failure to stop; the state goes running → stopping → failed."""
    events: list[str] = []
    lifecycle = Lifecycle(clock)
    parts = steps(Recorded("a", events), Recorded("b", events, fail_stop=True))
    then = steps(Recorded("m", events), Recorded("h", events, fail_start=True))
    with pytest.raises(RuntimeError, match="h cannot start"):
        await lifecycle.start_all(parts, then=then)
    assert events == ["start:a", "start:b", "start:m", "start:h", "stop:m", "stop:b", "stop:a"]
    states = [t["state"] for t in lifecycle.stats()["transitions"]]
    assert states == ["created", "starting", "running", "stopping", "failed"]


async def test_transitions_are_recorded_with_uptime(clock: FakeClock) -> None:
    """Each transition is kept in stats; uptime counts from entering running."""
    lifecycle = Lifecycle(clock)
    assert lifecycle.uptime() == 0.0
    assert lifecycle.stats()["started_at"] is None
    for state in (State.STARTING, State.RUNNING):
        lifecycle.transition(state)
    lifecycle.transition(State.RUNNING)  # same state: not recorded again
    clock.advance(12.5)
    stats = lifecycle.stats()
    assert set(stats) == STATS_KEYS
    assert [t["state"] for t in stats["transitions"]] == ["created", "starting", "running"]
    assert all(t["at"].endswith("Z") for t in stats["transitions"])
    assert stats["uptime_seconds"] == 12.5
    assert stats["started_at"] == "2025-12-05T10:30:00Z"
    assert lifecycle.started_at == clock.wall() - 12.5


@pytest.mark.parametrize("state", list(State), ids=[s.value for s in State])
async def test_health_is_healthy_only_while_running(clock: FakeClock, state: State) -> None:
    """The lifecycle is healthy in the running state and unhealthy, with the state, otherwise."""
    lifecycle = Lifecycle(clock)
    lifecycle.transition(state)
    verdict = lifecycle.health()
    assert verdict.healthy is (state is State.RUNNING)
    if state is not State.RUNNING:
        assert verdict.reason == f"application is {state.value}"


async def test_a_death_is_restarted_after_the_backoff(clock: FakeClock) -> None:
    """A reported death is respawned only once the backoff has passed on the clock."""
    target = Respawns()
    lifecycle = Lifecycle(clock, restart_backoff=0.5)
    lifecycle.supervise(target)
    await lifecycle.start()
    lifecycle.report_death(7, RuntimeError("x"))
    await until(lambda: clock.sleepers == 1)
    assert lifecycle.stats()["pending_restarts"] == 1
    clock.advance(0.4)
    await until(lambda: clock.sleepers == 1)
    assert target.respawned == []
    clock.advance(0.1)
    await until(lambda: target.respawned == [7])
    await until(lambda: lifecycle.stats()["pending_restarts"] == 0)
    assert lifecycle.restarts_total == 1
    await lifecycle.stop()


async def test_backoff_doubles_for_recent_deaths_and_is_capped(clock: FakeClock) -> None:
    """Deaths within the window double the delay up to the maximum; old deaths are forgotten."""
    target = Respawns()
    lifecycle = Lifecycle(clock, restart_backoff=1.0, restart_backoff_max=3.0, backoff_window=60)
    lifecycle.supervise(target)
    await lifecycle.start()
    for worker_id in (1, 2, 3):  # delays 1, 2, 3 (4 capped)
        lifecycle.report_death(worker_id, RuntimeError())
    await until(lambda: clock.sleepers == 3)
    clock.advance(1.0)
    await until(lambda: target.respawned == [1])
    clock.advance(1.0)
    await until(lambda: target.respawned == [1, 2])
    clock.advance(1.0)
    await until(lambda: target.respawned == [1, 2, 3])
    clock.advance(61.0)  # the window has passed: back to the first delay
    lifecycle.report_death(4, RuntimeError())
    await until(lambda: clock.sleepers == 1)
    clock.advance(1.0)
    await until(lambda: target.respawned == [1, 2, 3, 4])
    await lifecycle.stop()


async def test_no_restart_when_not_supervising(clock: FakeClock) -> None:
    """Deaths reported before start() or after stop() are not restarted."""
    target = Respawns()
    lifecycle = Lifecycle(clock)
    lifecycle.supervise(target)
    lifecycle.report_death(1, RuntimeError())
    assert lifecycle.stats()["pending_restarts"] == 0
    await lifecycle.start()
    lifecycle.report_death(2, RuntimeError())
    await until(lambda: clock.sleepers == 1)
    await lifecycle.stop()  # cancels the pending restart
    clock.advance(10.0)
    await until(lambda: lifecycle.stats()["pending_restarts"] == 0)
    assert target.respawned == []
    assert lifecycle.restarts_total == 0


class Fatal(BaseException):
    """Kills the worker running the handler that raises it."""


async def test_a_crashed_worker_is_restarted_and_health_recovers(clock: FakeClock) -> None:
    """End to end: a worker dies → WorkerCrashed, unhealthy; after the backoff it is back."""
    app = make_app(clock, workers=2, restart_backoff=0.1)

    @app.handler("fatal")
    async def fatal(job: Job) -> Any:
        raise Fatal()

    async with app:
        with pytest.raises(WorkerCrashed) as info:
            await app.submit("fatal")
        assert isinstance(info.value.__cause__, Fatal)
        report = app.health()
        assert not report.healthy
        assert report.failing() == {"workers": "1 of 2 workers alive"}
        await until(lambda: clock.sleepers == 2)  # the recycler's sweep and the restart
        clock.advance(0.09)
        await until(lambda: clock.sleepers == 2)
        assert not app.health().healthy
        clock.advance(0.01)
        await until(lambda: app.lifecycle.restarts_total == 1)
        assert app.health().healthy
        assert app.get_stats()["lifecycle"]["restarts_total"] == 1
        assert app.get_stats()["workers"]["alive"] == 2
        assert await app.submit("echo", "after") == "after"


async def test_application_states_through_a_run(clock: FakeClock) -> None:
    """An application goes created → starting → running → draining → stopping → stopped."""
    app: Application = make_app(clock)
    seen = [app.state]
    await app.start()
    seen.append(app.state)
    await app.stop()
    seen.append(app.state)
    assert seen == [State.CREATED, State.RUNNING, State.STOPPED]
    states = [t["state"] for t in app.get_stats()["lifecycle"]["transitions"]]
    assert states == ["created", "starting", "running", "draining", "stopping", "stopped"]

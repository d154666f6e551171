"""The demo's load generator: paced without bursts, bounded, every outcome counted."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator

import pytest

from orchestrator import Application, ConfigError, FakeClock, Job
from orchestrator.demo import LoadGenerator
from tests.fakes import settle


@pytest.fixture
async def gated() -> AsyncIterator[tuple[Application, asyncio.Event]]:
    """A running application whose demo job kinds wait for an event before they finish."""
    gate = asyncio.Event()
    app = Application(clock=FakeClock(), workers=2, queue_size=1000)
    for kind, _ in LoadGenerator.MIX:

        @app.handler(kind)
        async def handler(job: Job) -> int:
            await gate.wait()
            return job.id

    await app.start()
    yield app, gate
    gate.set()
    await app.stop(timeout=1.0)


def submitted(app: Application) -> int:
    kinds = app.get_stats()["registry"]["kinds"]
    return sum(k["submitted_total"] for k in kinds.values())


async def test_far_behind_schedule_it_submits_one_job_per_loop_turn(
    gated: tuple[Application, asyncio.Event],
) -> None:
    """A rate the loop cannot keep up with gives one submission per turn, never a burst."""
    app, gate = gated
    generator = LoadGenerator(app, 1_000_000, random.Random(1), max_outstanding=10_000)
    task = asyncio.ensure_future(generator.run())
    await settle(50)
    count = submitted(app)
    assert 10 <= count <= 51  # one per turn at most (the generator task ran in every turn)
    generator.stop()
    await task
    gate.set()
    await generator.settle()
    assert generator.outcomes["done"] == submitted(app)


async def test_outstanding_submissions_are_bounded_and_the_rest_shed(
    gated: tuple[Application, asyncio.Event],
) -> None:
    """Beyond max_outstanding, slots are counted as shed; every submission still ends."""
    app, gate = gated
    generator = LoadGenerator(app, 1_000_000, random.Random(2), max_outstanding=5)
    task = asyncio.ensure_future(generator.run())
    await settle(40)
    assert submitted(app) == 5
    assert generator.outcomes["shed"] > 20
    generator.stop()
    await task
    gate.set()
    await generator.settle()
    assert generator.outcomes["done"] == 5


@pytest.mark.parametrize("rate", [math.inf, math.nan, -1.0], ids=["inf", "nan", "negative"])
def test_a_rate_must_be_finite(rate: float) -> None:
    """An infinite, NaN or negative rate is a ConfigError, before anything runs."""
    with pytest.raises(ConfigError, match="rate must be a finite number"):
        LoadGenerator(Application(), rate)

"""The summary's arithmetic: job rates from two snapshots, durations in human units."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.terminal.options import SECTIONS
from orchestrator.terminal.view import PARTS, human_seconds, rates


def snapshot(uptime: float, **done: tuple[int, int]) -> dict[str, Any]:
    kinds = {k: {"succeeded_total": s, "failed_total": f} for k, (s, f) in done.items()}
    return {"application": {"uptime_seconds": uptime}, "registry": {"kinds": kinds}}


def test_rates_count_finished_jobs_per_second_of_the_instances_uptime() -> None:
    before = snapshot(10.0, io=(100, 0), cpu=(5, 5))
    after = snapshot(12.0, io=(140, 2), cpu=(5, 5), new=(3, 1))
    assert rates(before, after) == {"io": 21.0, "cpu": 0.0, "new": 2.0}


def test_the_same_snapshot_twice_has_no_rate() -> None:
    same = snapshot(10.0, io=(100, 0))
    assert rates(same, same) is None


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "-"),
        (0.00025, "0.25 ms"),
        (0.0066, "6.6 ms"),
        (0.0262, "26 ms"),
        (1.234, "1.2 s"),
        (192, "3m 12s"),
        (7500, "2h 5m"),
        (356_400, "4d 3h"),
    ],
)
def test_human_seconds(seconds: float | None, shown: str) -> None:
    assert human_seconds(seconds) == shown


def test_every_section_has_a_part() -> None:
    assert tuple(PARTS) == SECTIONS

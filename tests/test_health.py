"""Health values, their aggregation and the JSON shape of a report."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from orchestrator.health import ComponentHealth, HealthReport, aggregate

WALL = 1_764_930_600.0  # 2025-12-05T10:30:00Z


def ok() -> ComponentHealth:
    return ComponentHealth.ok()


def bad() -> ComponentHealth:
    return ComponentHealth.failing("queue saturated")


def raises() -> ComponentHealth:
    raise ValueError("no data")


def test_verdict_constructors() -> None:
    """ok() is healthy with an optional note; failing() is unhealthy with its reason."""
    assert ComponentHealth.ok() == ComponentHealth(True, None)
    assert ComponentHealth.ok("no factory") == ComponentHealth(True, "no factory")
    assert ComponentHealth.failing("down") == ComponentHealth(False, "down")


@pytest.mark.parametrize(
    ("checks", "healthy", "failing"),
    [
        ({"a": ok, "b": ok}, True, {}),
        ({"a": ok, "b": bad}, False, {"b": "queue saturated"}),
        ({"a": raises, "b": ok}, False, {"a": "health check raised ValueError"}),
        ({}, True, {}),
    ],
    ids=["all-healthy", "one-failing", "one-raising", "no-checks"],
)
def test_aggregate(
    checks: dict[str, Callable[[], ComponentHealth]], healthy: bool, failing: dict[str, str]
) -> None:
    """The report is healthy only when every check is; a raising check is failing."""
    report = aggregate(checks.items(), WALL)
    assert report.healthy is healthy
    assert report.failing() == failing
    assert list(report.components) == list(checks)


def test_to_dict_shapes() -> None:
    """to_dict() gives healthy, an ISO UTC timestamp and per-component booleans (+ checks)."""
    report = aggregate([("a", ok), ("b", bad)], WALL)
    assert report.to_dict() == {
        "healthy": False,
        "timestamp": "2025-12-05T10:30:00Z",
        "components": {"a": True, "b": False},
    }
    assert report.to_dict(verbose=True)["checks"] == {
        "a": {"healthy": True, "reason": None},
        "b": {"healthy": False, "reason": "queue saturated"},
    }


def test_failing_without_reason_says_unhealthy() -> None:
    """A failing component without a reason is listed as 'unhealthy'."""
    report = HealthReport(False, WALL, {"x": ComponentHealth(False)})
    assert report.failing() == {"x": "unhealthy"}

"""Component health values and their aggregation into one report."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.clock import utc_iso

__all__ = ["ComponentHealth", "HealthReport", "aggregate"]


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    """One component's health: a verdict and, when useful, why."""

    healthy: bool
    reason: str | None = None

    @classmethod
    def ok(cls, reason: str | None = None) -> ComponentHealth:
        """A healthy verdict (a shared instance when there is no reason)."""
        return _OK if reason is None else cls(True, reason)

    @classmethod
    def failing(cls, reason: str) -> ComponentHealth:
        """An unhealthy verdict with its reason."""
        return cls(False, reason)


_OK = ComponentHealth(True, None)


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The aggregated health of an application at one instant."""

    healthy: bool
    timestamp: float
    components: dict[str, ComponentHealth]
    since: Mapping[str, float] = field(default_factory=dict)
    """Since when (epoch seconds) each component has had its verdict, where known."""

    def to_dict(self, *, verbose: bool = False) -> dict[str, Any]:
        """The JSON shape: healthy, timestamp, components (+ checks when verbose)."""
        out: dict[str, Any] = {
            "healthy": self.healthy,
            "timestamp": utc_iso(self.timestamp),
            "components": {name: h.healthy for name, h in self.components.items()},
        }
        if verbose:
            out["checks"] = {name: self._check(name, h) for name, h in self.components.items()}
        return out

    def _check(self, name: str, health: ComponentHealth) -> dict[str, Any]:
        check: dict[str, Any] = {"healthy": health.healthy, "reason": health.reason}
        since = self.since.get(name)
        if since is not None:
            check["since"] = utc_iso(since)
        return check

    def failing(self) -> dict[str, str]:
        """The unhealthy components and their reasons."""
        return {n: h.reason or "unhealthy" for n, h in self.components.items() if not h.healthy}


def aggregate(
    checks: Iterable[tuple[str, Callable[[], ComponentHealth]]],
    timestamp: float,
    since: Mapping[str, float] | None = None,
) -> HealthReport:
    """Run every check; a check that raises counts as unhealthy with the error as reason."""
    components: dict[str, ComponentHealth] = {}
    for name, check in checks:
        try:
            result = check()
        except Exception as exc:  # a broken check is a failing component, never an error
            # the type only: an exception's text may carry credentials, and reasons are shown
            result = ComponentHealth.failing(f"health check raised {type(exc).__name__}")
        components[name] = result
    healthy = all(h.healthy for h in components.values())
    return HealthReport(healthy, timestamp, components, since or {})

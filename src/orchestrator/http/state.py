"""Mutable runtime state shared by the HTTP app and its server: drain flag and counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.http.concerns.auth import TokenAuth
    from orchestrator.http.concerns.rate_limit import RateLimiter

__all__ = ["HttpState", "status_class"]

_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


def status_class(status: int) -> str:
    """``"2xx"`` for 200 and so on."""
    return _CLASSES[status // 100 - 1] if 100 <= status < 600 else "5xx"


@dataclass(slots=True)
class HttpState:
    """What the server and the views share while the process lives."""

    draining: bool = False
    drain_until: float | None = None
    """When a timed drain ends (clock time); None for an admin drain, which has no end."""
    requests_total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_CLASSES, 0))
    limiter: RateLimiter | None = None
    auth: TokenAuth | None = None
    by_route: dict[str, dict[str, int]] = field(default_factory=dict)
    fast_probes_total: int = 0
    """Requests answered on the probe fast path (``fast_probe.py``)."""

    def drain_left(self, now: float) -> float | None:
        """Seconds left of a timed drain (0 once over), or None when it has no end."""
        if self.drain_until is None:
            return None
        return max(0.0, self.drain_until - now)

    def count(self, route: str | None, status: int) -> None:
        """Count one response by status class, overall and per route (None: ``other``)."""
        cls = status_class(status)
        self.requests_total[cls] += 1
        key = route or "other"  # unknown paths share one label: random 404s add no series
        counts = self.by_route.get(key)
        if counts is None:
            counts = self.by_route[key] = dict.fromkeys(_CLASSES, 0)
        counts[cls] += 1

    def stats(self) -> dict[str, Any]:
        """Request, rate-limit and auth counters."""
        limiter, auth = self.limiter, self.auth
        return {
            "draining": self.draining,
            "requests_total": dict(self.requests_total),
            "requests_by_route": {route: dict(c) for route, c in self.by_route.items()},
            "fast_probes_total": self.fast_probes_total,
            "rate_limit": {
                "enabled": limiter is not None,
                "clients": limiter.clients if limiter is not None else 0,
                "rejected_total": limiter.rejected_total if limiter is not None else 0,
            },
            "auth": {
                "enabled": auth is not None,
                "failures_total": auth.failures_total if auth is not None else 0,
            },
        }

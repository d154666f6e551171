"""The probes' answers: the status and body of ``/health``, ``/ready`` and ``/live``.

One function, :func:`probe`, used by the views (``views.py``) and by the probe fast path
(``fast_probe.py``), so that both give the same answer to the same caller.
"""

from __future__ import annotations

from typing import Any

from orchestrator.health import HealthReport
from orchestrator.types import Observable

__all__ = ["PROBES", "REASON_HIDDEN", "probe", "shown_reason"]

PROBES = ("/health", "/ready", "/live")
"""The probe routes :func:`probe` answers."""

REASON_HIDDEN = "hidden: send a valid bearer token to see it"
"""A health reason as a caller without the token sees it (the same in every route)."""


def shown_reason(reason: str | None, may_see: bool) -> str | None:
    """``reason``, or that it is hidden from a caller who may not see it."""
    return reason if reason is None or may_see else REASON_HIDDEN


def _health(report: HealthReport, may_see: bool, verbose: bool) -> tuple[int, dict[str, Any]]:
    body = report.to_dict(verbose=verbose)
    if verbose and not may_see:
        for check in body["checks"].values():
            check["reason"] = shown_reason(check["reason"], may_see)
    return (200 if report.healthy else 503), body


def _ready(report: HealthReport, may_see: bool) -> tuple[int, dict[str, Any]]:
    if report.healthy:
        return 200, {"ready": True}
    failing = report.failing()
    reason = ", ".join(f"{name}: {shown_reason(why, may_see)}" for name, why in failing.items())
    return 503, {"ready": False, "reason": f"unhealthy: {reason}"}


def probe(
    path: str, observable: Observable, may_see: bool, *, verbose: bool = False
) -> tuple[int, dict[str, Any]]:
    """The status and body of the probe route ``path``, computed fresh.

    ``/ready`` is answered as for an application that is not draining: a drain's 503 and
    its ``Retry-After`` are the view's (the fast path leaves a draining server's probes to
    the chain).

    Args:
        path: one of :data:`PROBES`.
        observable: what ``/health`` and ``/ready`` report on (``/live`` asks nothing).
        may_see: whether the caller may see health reasons (a valid token, or none set).
        verbose: ``/health?verbose``: each component's check with its reason and since when.

    Raises:
        KeyError: for a path that is not a probe route.
    """
    if path == "/live":
        return 200, {"status": "alive"}
    if path == "/ready":
        return _ready(observable.health(), may_see)
    if path == "/health":
        return _health(observable.health(), may_see, verbose)
    raise KeyError(path)

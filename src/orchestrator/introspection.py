"""What an application tells about itself beyond its components' stats: its own stats
section, and for a debugging operator its jobs in flight and its settings."""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

from orchestrator.clock import utc_iso
from orchestrator.job import Origin
from orchestrator.log_level import LEVEL
from orchestrator.stats import ApplicationStats
from orchestrator.version import __version__

if TYPE_CHECKING:
    from orchestrator.application import Application

__all__ = ["application_stats", "effective_config", "explicit_settings", "jobs_report"]

SECRETS = frozenset({"http_token"})
"""Settings shown only as a count."""


def application_stats(app: Application) -> ApplicationStats:
    """The ``application`` section of the stats: identity, state, jobs in flight, the
    monitors' figures, the log level and the event subscribers."""
    lc = app.lifecycle
    return {
        "name": app.settings.name,
        "version": __version__,
        "pid": os.getpid(),
        "state": lc.state.value,
        "started_at": utc_iso(lc.started_at) if lc.started_at else None,
        "uptime_seconds": lc.uptime(),
        "jobs_in_flight": app.in_flight.count,
        **app.monitors.stats(),
        "log_level": LEVEL.name(),
        "log_level_reverts_at": utc_iso(LEVEL.until) if LEVEL.until is not None else None,
        "event_subscribers": app.events.subscribers,
    }


def jobs_report(app: Application, limit: int) -> dict[str, Any]:
    """Jobs in flight (oldest first, at most ``limit``), the last failures (newest first) and
    the slowest jobs of the last minute per kind."""
    now = app.clock.now()
    running: list[dict[str, Any]] = [
        {"id": w.current.job.id, "kind": w.current.spec.kind, "attempt": w.current.job.attempt,
         "state": "running", "worker": w.id, "age_seconds": round(now - w.current.enqueued_at, 6),
         "connection": w.connection_id, "entry_id": _entry(w.current.job.origin)}
        for w in app.workers.workers() if w.current is not None
    ]  # fmt: skip
    queued: list[dict[str, Any]] = [
        {"id": env.job.id, "kind": env.spec.kind, "attempt": 0, "state": "queued",
         "worker": None, "age_seconds": round(now - env.enqueued_at, 6), "connection": None,
         "entry_id": _entry(env.job.origin)}
        for env in app.router.queued(limit)
    ]  # fmt: skip
    in_flight = sorted(running + queued, key=lambda job: -job["age_seconds"])
    total = len(running) + len(app.router)
    return {
        "in_flight": in_flight[:limit],
        "in_flight_total": total,
        "in_flight_omitted": max(0, total - limit),
        "recent_failures": list(reversed(app.jobs.failures)),
        "slowest": app.jobs.slowest(),
    }


def _entry(origin: Origin | None) -> str | None:
    return origin.entry_id if origin is not None else None


def effective_config(app: Application) -> dict[str, Any]:
    """Every core and HTTP setting in force, where it came from, secrets as a count only."""
    out: dict[str, Any] = {}
    for section, settings in (("core", app.settings), ("http", app.http_settings)):
        entries: dict[str, Any] = {}
        for spec in dataclasses.fields(settings):
            value = getattr(settings, spec.name)
            if spec.name in SECRETS:
                value = {"count": len(value)}  # never a token, not even its length
            elif isinstance(value, tuple):
                value = list(value)
            source = app.sources.get(spec.name)
            if source is None:
                source = "default" if getattr(settings, spec.name) == spec.default else "keyword"
            entries[spec.name] = {"value": value, "source": source}
        out[section] = entries
    return out


def explicit_settings(app: Application) -> dict[str, object]:
    """The settings ``app`` was given: named in its sources (keyword arguments), or away
    from their default (whole settings objects); what ``orchestrator run`` keeps of a
    TARGET's module unless a variable or a flag says otherwise."""
    return {
        spec.name: getattr(settings, spec.name)
        for settings in (app.settings, app.http_settings)
        for spec in dataclasses.fields(settings)
        if spec.name in app.sources or getattr(settings, spec.name) != spec.default
    }

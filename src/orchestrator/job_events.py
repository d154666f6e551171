"""What happens to jobs, told: bounded log events, recent failures, the slowest jobs.

``JobEvents`` logs ``job_failed``, ``job_retried`` and ``job_timed_out`` (at most ``limit``
per event and kind per ``window`` seconds, then one ``job_events_suppressed`` line with the
count) and publishes the same events, summaries included, to the event bus; it keeps the
last 100 failures, and the slowest jobs of the last minute per kind. Refused submissions
cost no log call each (a refusal must stay cheap): ``jobs_refused`` sums them up by reason,
once when they begin and then at most once per ``window``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from orchestrator.clock import utc_iso
from orchestrator.events import EventSink, Throttle

__all__ = ["MESSAGE_LIMIT", "JobEvents", "error_fields"]

log = structlog.get_logger("orchestrator.jobs")

MESSAGE_LIMIT = 200
"""Characters of an error message kept."""

SLOWEST_PER_KIND = 5
_BUCKET = 10.0  # seconds per bucket of the slowest-jobs window
_BUCKETS = 6  # buckets in the window: one minute


def error_fields(error: BaseException) -> dict[str, str]:
    """``error_type`` and ``message`` (cut to 200 characters) of an exception."""
    message = str(error)
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 1] + "…"
    return {"error_type": type(error).__name__, "message": message}


class JobEvents:
    """Tells what happened to jobs, at a bounded rate.

    Args:
        sink: where notable events go (the application's event bus), or None.
        wall: wall-clock time (epoch seconds).
        limit: events per event name and kind per ``window``.
        window: seconds.
    """

    def __init__(
        self,
        sink: EventSink | None,
        wall: Callable[[], float],
        *,
        limit: int = 5,
        window: float = 10.0,
    ) -> None:
        self._sink = sink
        self._wall = wall
        self._throttle = Throttle(limit, window, self._suppressed)
        self.failures: deque[dict[str, Any]] = deque(maxlen=100)
        self._slowest: dict[str, dict[int, list[tuple[float, dict[str, Any]]]]] = {}
        self._refusals: Callable[[], Mapping[str, int]] | None = None
        self._refusals_told: dict[str, int] = {}
        self._refusals_at = -math.inf  # wall time of the last jobs_refused

    def count_refusals(self, counts: Callable[[], Mapping[str, int]]) -> None:
        """Where the refusals are counted (cumulative, by reason), for ``jobs_refused``."""
        self._refusals = counts
        self._refusals_told = dict(counts())

    def _suppressed(self, key: tuple[str, str], count: int) -> None:
        event, kind = key
        fields = {"of": event, "kind": kind, "suppressed": count,
                  "window_seconds": self._throttle.window}  # fmt: skip
        log.info("job_events_suppressed", **fields)
        if self._sink is not None:
            self._sink("job_events_suppressed", fields)

    def _emit(self, level: str, event: str, kind: str, fields: dict[str, Any]) -> None:
        if not self._throttle.allow((event, kind), self._wall()):
            return
        getattr(log, level)(event, kind=kind, **fields)
        if self._sink is not None:
            self._sink(event, {"kind": kind, **fields})

    def failed(
        self, job_id: int, kind: str, attempt: int, error: BaseException, seconds: float,
        *, timed_out: bool, entry_id: str | None = None,
    ) -> None:  # fmt: skip
        """A job's last attempt failed (or timed out); ``entry_id``: its source's entry."""
        fields = {"job_id": job_id, "attempt": attempt, **error_fields(error),
                  "duration_seconds": round(seconds, 6)}  # fmt: skip
        if entry_id is not None:
            fields["entry_id"] = entry_id
        self.failures.append({"at": utc_iso(self._wall()), "kind": kind, **fields})
        self._emit("warning", "job_timed_out" if timed_out else "job_failed", kind, fields)

    def retried(
        self, job_id: int, kind: str, attempt: int, error: BaseException, seconds: float,
        *, entry_id: str | None = None,
    ) -> None:  # fmt: skip
        """An attempt failed and the job is tried again."""
        fields = {"job_id": job_id, "attempt": attempt, **error_fields(error),
                  "duration_seconds": round(seconds, 6)}  # fmt: skip
        if entry_id is not None:
            fields["entry_id"] = entry_id
        self._emit("info", "job_retried", kind, fields)

    def finished(self, job_id: int, kind: str, attempt: int, seconds: float) -> None:
        """A job is done: keep it if it is among the slowest of its kind lately."""
        now = self._wall()
        bucket = math.floor(now / _BUCKET)
        buckets = self._slowest.setdefault(kind, {})
        top = buckets.get(bucket)
        if top is None:
            for old in [b for b in buckets if b <= bucket - _BUCKETS]:
                del buckets[old]
            top = buckets[bucket] = []
        if len(top) < SLOWEST_PER_KIND or seconds > top[-1][0]:
            entry = {"job_id": job_id, "attempt": attempt, "seconds": round(seconds, 6),
                     "at": utc_iso(now)}  # fmt: skip
            top.append((seconds, entry))
            top.sort(key=lambda item: -item[0])
            del top[SLOWEST_PER_KIND:]

    def slowest(self) -> dict[str, list[dict[str, Any]]]:
        """The slowest jobs of the last minute (to within 10 s), five per kind at most."""
        first = math.floor(self._wall() / _BUCKET) - _BUCKETS + 1
        out: dict[str, list[dict[str, Any]]] = {}
        for kind, buckets in self._slowest.items():
            entries = [e for b, top in buckets.items() if b >= first for e in top]
            entries.sort(key=lambda item: -item[0])
            if entries:
                out[kind] = [entry for _, entry in entries[:SLOWEST_PER_KIND]]
        return out

    def flush(self) -> None:
        """Log and publish the suppressed counts of windows that have ended, and the
        refusals since the last ``jobs_refused`` (once a window at most)."""
        now = self._wall()
        self._throttle.flush(now)
        if self._refusals is None or now - self._refusals_at < self._throttle.window:
            return
        counts = dict(self._refusals())
        since = {k: n - self._refusals_told.get(k, 0) for k, n in counts.items()}
        if any(since.values()):
            self._refusals_told, self._refusals_at = counts, now
            fields = {**since, "window_seconds": self._throttle.window}
            log.info("jobs_refused", **fields)
            if self._sink is not None:
                self._sink("jobs_refused", fields)

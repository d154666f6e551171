"""Access log: one structured event per request, quiet for healthy probes."""

from __future__ import annotations

import logging
import random
from typing import Any

import structlog
from cachetools import TTLCache

from orchestrator.log_level import LEVEL

__all__ = ["AccessLog"]

EVENT = "http_request_served"


class AccessLog:
    """Logs ``http_request_served`` with method, path, route, status, duration and client.

    Successful requests to probe routes are logged at debug (a ``sample`` fraction of
    them at info), so high-frequency polling does not flood the log; other successes at
    info, client errors at info and server errors at warning, each with its error code,
    except a probe's 503 (a verdict: unhealthy or draining, expected), logged at info;
    a flood of 429s logs one info line per client per 10 s, the rest at debug.
    Each line names the request's id. Headers are never logged, so neither
    is an ``Authorization`` header.

    The logger is bound when the access log is built (configure logging first): that
    spares the lazy proxy on every request, and lets a disabled debug level cost nothing.

    Args:
        sample: fraction of successful probe requests logged at info.
    """

    def __init__(self, sample: float = 0.0) -> None:
        self._sample = sample
        self._refused: TTLCache[str, None] = TTLCache(maxsize=10_000, ttl=10.0)
        self._log = structlog.get_logger("orchestrator.http.access").bind()
        self._debug = self._log.is_enabled_for(logging.DEBUG)

    def _refused_lately(self, client: str) -> bool:
        """A 429 for ``client`` was logged at info within the last 10 s (a flood stays quiet)."""
        if client in self._refused:
            return True
        self._refused[client] = None
        return False

    def _sampled(self) -> bool:
        return bool(self._sample) and random.random() < self._sample

    def record(
        self,
        *,
        method: str,
        path: str,
        route: str | None,
        status: int,
        duration: float,
        sent: int,
        client: str,
        user_agent: str,
        probe: bool,
        request_id: str,
        error: str | None = None,
    ) -> None:
        """Log one served request, from the chain or the probe fast path.

        Args:
            method, path, status: the request's and the response's.
            route: the matched route's path (None: no route matched).
            duration: seconds spent serving it.
            sent: bytes of body sent.
            client: the client's address (resolved through trusted proxies).
            user_agent: its ``User-Agent`` (cut to 200 characters here).
            probe: a probe route (its successes are logged quietly).
            request_id: the request's id (the chain's context carries it too, but the fast
                path binds no context: the line names it itself, in the same place).
            error: the error code of an error answer.
        """
        emit = self._level(status, probe, client)
        if emit is None:
            return
        fields: dict[str, Any] = {
            "method": method,
            "path": path,
            "route": route,
            "status": status,
            "duration_ms": round(duration * 1000, 3),
            "bytes": sent,
            "client": client,
            "user_agent": user_agent[:200],
        }
        if error is not None:
            fields["error"] = error
        fields["request_id"] = request_id
        emit(EVENT, **fields)

    def _debug_on(self) -> bool:
        return self._debug and (not LEVEL.configured or LEVEL.level <= logging.DEBUG)

    def _level(self, status: int, probe: bool, client: str) -> Any:
        """The logger method for a response (None: not logged)."""
        log = self._log
        quiet = status == 429 and self._refused_lately(client)
        if status >= 500 and not (probe and status == 503):  # a probe's 503 is a verdict
            return log.warning
        if (status >= 400 and not quiet) or not probe or self._sampled():
            return log.info
        if self._debug_on():
            return log.debug
        return None

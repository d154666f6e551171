"""Mutable runtime state shared by the HTTP app and its server: drain flag and counters."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["HttpState", "status_class"]

_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


def status_class(status: int) -> str:
    """``"2xx"`` for 200 and so on."""
    return _CLASSES[status // 100 - 1] if 100 <= status < 600 else "5xx"


@dataclass(slots=True)
class HttpState:
    """What the server and the views share while the process lives."""

    draining: bool = False
    requests_total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_CLASSES, 0))

    def count(self, status: int) -> None:
        """Count one response by status class."""
        self.requests_total[status_class(status)] += 1

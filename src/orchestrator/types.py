"""Protocols and aliases at the bottom of the import graph."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from orchestrator.events import EventBus
    from orchestrator.health import ComponentHealth, HealthReport

__all__ = [
    "Clock",
    "Component",
    "ConnectionFactory",
    "Inspectable",
    "Observable",
    "StatsDict",
]

StatsDict = dict[str, Any]
"""A JSON-serialisable mapping of statistics (str keys, JSON primitives, lists, dicts)."""


class Clock(Protocol):
    """Time source: monotonic ``now()``, epoch ``wall()`` and an awaitable ``sleep()``."""

    def now(self) -> float: ...

    def wall(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


@runtime_checkable
class Component(Protocol):
    """A part of the application with a lifecycle, cheap stats and a health verdict."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def stats(self) -> Mapping[str, Any]: ...

    def health(self) -> ComponentHealth: ...


class Observable(Protocol):
    """What the HTTP layer serves: stats and health of anything."""

    def get_stats(self) -> StatsDict: ...

    def health(self) -> HealthReport: ...


@runtime_checkable
class Inspectable(Protocol):
    """An observable that can say more to a debugging operator (``/debug/*``)."""

    events: EventBus

    def debug_jobs(self, limit: int) -> Mapping[str, Any]: ...

    def debug_config(self) -> Mapping[str, Any]: ...


class ConnectionFactory(Protocol):
    """Creates and closes connections for the pool; ``ping`` is optional."""

    async def connect(self) -> Any: ...

    async def close(self, conn: Any) -> None: ...

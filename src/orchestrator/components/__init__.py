"""The six components of an application; each implements ``orchestrator.types.Component``."""

from orchestrator.components.lifecycle import Lifecycle, State
from orchestrator.components.pool import ConnectionPool
from orchestrator.components.recycler import Recycler
from orchestrator.components.registry import Registry
from orchestrator.components.router import Router
from orchestrator.components.workers import WorkerPool

__all__ = [
    "ConnectionPool",
    "Lifecycle",
    "Recycler",
    "Registry",
    "Router",
    "State",
    "WorkerPool",
]

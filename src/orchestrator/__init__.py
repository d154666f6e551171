"""orchestrator: an asyncio application orchestrator with an HTTP observability API."""

from orchestrator.application import Application
from orchestrator.clock import FakeClock, MonotonicClock
from orchestrator.config import CoreSettings
from orchestrator.errors import (
    ConfigError,
    HttpServerError,
    JobFailed,
    JobTimeout,
    NotRunning,
    OrchestratorError,
    Overloaded,
    PoolExhausted,
    QueueFull,
    StartFailed,
    UnknownJobKind,
    WorkerCrashed,
)
from orchestrator.health import ComponentHealth, HealthReport
from orchestrator.job import Job
from orchestrator.log import configure_logging
from orchestrator.version import __version__

__all__ = [
    "Application",
    "ComponentHealth",
    "ConfigError",
    "CoreSettings",
    "FakeClock",
    "HealthReport",
    "HttpServerError",
    "Job",
    "JobFailed",
    "JobTimeout",
    "MonotonicClock",
    "NotRunning",
    "OrchestratorError",
    "Overloaded",
    "PoolExhausted",
    "QueueFull",
    "StartFailed",
    "UnknownJobKind",
    "WorkerCrashed",
    "__version__",
    "configure_logging",
]

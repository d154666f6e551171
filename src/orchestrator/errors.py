"""The typed error hierarchy of the orchestrator, in one place."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "HttpServerError",
    "JobFailed",
    "JobTimeout",
    "NotRunning",
    "Overloaded",
    "OrchestratorError",
    "PoolExhausted",
    "QueueFull",
    "StartFailed",
    "TargetError",
    "TargetFailed",
    "UnknownJobKind",
    "WorkerCrashed",
]


class OrchestratorError(Exception):
    """Base class of every error the orchestrator raises on purpose."""


class ConfigError(OrchestratorError, ValueError):
    """A setting is invalid; raised before anything starts.

    Args:
        message: what is wrong, naming the setting (never a secret's value).
        setting: the settings field at fault, when one is.
    """

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class UnknownJobKind(OrchestratorError, LookupError):
    """No handler is registered for the submitted job kind."""


class QueueFull(OrchestratorError):
    """Refused at once: the router is at its capacity (backpressure); retry later.

    ``reason`` says which bound refused it: ``queue_full`` here, ``standing_wait`` for
    ``Overloaded``. Catching ``QueueFull`` catches both.
    """

    reason = "queue_full"


class Overloaded(QueueFull):
    """Refused at once: the queue has been standing (every job leaving it for
    ``queue_interval`` had waited over ``queue_target``) and the oldest queued job has
    waited over ``queue_target``; retry later."""

    reason = "standing_wait"


class NotRunning(OrchestratorError):
    """The application is not accepting or no longer running jobs."""


class JobFailed(OrchestratorError):
    """The handler raised; the original exception is ``__cause__``."""


class JobTimeout(JobFailed):
    """The handler did not finish within its timeout on the last attempt."""


class WorkerCrashed(JobFailed):
    """The worker running the job died unexpectedly (it is restarted)."""


class PoolExhausted(OrchestratorError):
    """No connection became available within the acquire timeout."""


class StartFailed(OrchestratorError):
    """A component failed to start; what had started was stopped again."""


class HttpServerError(OrchestratorError):
    """The HTTP server could not start while ``http_required`` was set."""


class TargetError(ConfigError):
    """``orchestrator run TARGET``: the target names no application (no such module or
    attribute, or the attribute is not an ``Application`` nor a callable returning one)."""


class TargetFailed(OrchestratorError):
    """Importing the target's module, or calling its factory, raised: the exception is
    ``__cause__``."""

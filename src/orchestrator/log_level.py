"""The log level, changeable while the process runs, and turned back by itself.

``configure_logging`` builds loggers that pass every level and puts ``LEVEL.filter`` first
in the processor chain, so the threshold is one attribute read per call. ``LEVEL.debug``
tells the job path whether its debug events are wanted, so that, below debug, they cost
one attribute read and no call. ``LEVEL.change()``
sets it for a while (at most an hour); a timer on the event loop turns it back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import MutableMapping
from typing import Any

import structlog

from orchestrator.errors import ConfigError

__all__ = ["LEVEL", "LEVELS", "MAX_SECONDS", "RuntimeLevel"]

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}  # fmt: skip
_BY_METHOD = {**LEVELS, "warn": logging.WARNING, "exception": logging.ERROR,
              "critical": logging.CRITICAL, "fatal": logging.CRITICAL}  # fmt: skip

MAX_SECONDS = 3600.0
"""The longest a changed level lasts before it turns back by itself."""


def _log() -> Any:
    # a fresh logger each time (changes are rare): no module-level logger caches a config
    return structlog.get_logger("orchestrator.log")


class RuntimeLevel:
    """The process's log threshold: ``base`` from the configuration, ``level`` right now."""

    def __init__(self) -> None:
        self.base = logging.INFO
        self._level = logging.INFO
        self.debug = False  # whether debug lines are written now (kept with ``level``)
        self.configured = False
        self.until: float | None = None  # epoch seconds when a change turns back
        self._timer: asyncio.TimerHandle | None = None

    @property
    def level(self) -> int:
        """The threshold now."""
        return self._level

    @level.setter
    def level(self, value: int) -> None:
        self._level = value
        self.debug = value <= logging.DEBUG

    def reset(self) -> None:
        """Forget the configuration (as ``structlog.reset_defaults()`` does for structlog)."""
        self.cancel_timer()
        self.base = self.level = logging.INFO
        self.configured = False
        self.until = None

    def configure(self, level: int) -> None:
        """Start from ``level`` (called by ``configure_logging``)."""
        self.cancel_timer()
        self.base = self.level = level
        self.until = None
        self.configured = True

    def enabled(self, level: int) -> bool:
        """Whether a call at ``level`` is written."""
        return level >= self.level

    def filter(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
        """The structlog processor: drop what is below the current level."""
        if _BY_METHOD.get(method, logging.INFO) < self._level:
            raise structlog.DropEvent
        return event

    def name(self, level: int | None = None) -> str:
        """``debug``, ``info``... of ``level`` (the current one by default)."""
        level = self.level if level is None else level
        return next((n for n, v in LEVELS.items() if v == level), str(level))

    def change(self, name: str, seconds: float) -> None:
        """Log at ``name`` (any case) for ``seconds`` (1 to 3600), then go back to the base
        level; the base level itself is a revert now.

        Raises:
            ConfigError: on an unknown level or a duration out of range.
        """
        name = name.lower()  # DEBUG is debug, as everywhere in Python's logging
        if name not in LEVELS:
            raise ConfigError(f"level must be one of {', '.join(LEVELS)}", setting="level")
        if not 1 <= seconds <= MAX_SECONDS:
            raise ConfigError(f"seconds must be within 1..{MAX_SECONDS:g}", setting="seconds")
        if LEVELS[name] == self.base:  # back to the configured level: nothing to undo later
            self.revert()
            return
        previous = self.name()
        self.cancel_timer()
        self.level = LEVELS[name]
        self.until = time.time() + seconds
        self._timer = asyncio.get_running_loop().call_later(seconds, self.revert)
        # "to", not "level": that key is the record's own level in every log line
        _log().warning("log_level_changed", to=name, previous=previous, seconds=seconds)

    def revert(self) -> None:
        """Back to the base level now."""
        self.cancel_timer()
        if self.level != self.base:
            changed = self.name()
            self.level = self.base
            _log().warning("log_level_reverted", to=self.name(), was=changed)
        self.until = None

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


LEVEL = RuntimeLevel()
"""The process's one log level."""

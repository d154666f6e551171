"""Logging: one structlog chain, JSON lines for machines and a console view for people."""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, BinaryIO, Literal, TextIO, cast

import orjson
import structlog

from orchestrator.log_level import LEVEL, LEVELS

__all__ = ["LineBuffer", "LogFormat", "configure_logging", "configure_logging_unless_configured"]

LogFormat = Literal["json", "console", "auto"]


def _dumps(obj: Any, **_: Any) -> bytes:
    return orjson.dumps(obj, default=repr)


class LineBuffer:
    """A write buffer for JSON log lines: one system call per batch, not per line.

    structlog flushes after every line; here ``flush()`` only writes once ``max_bytes`` are
    pending or the oldest pending line is ``max_delay`` seconds old. ``drain()`` writes
    everything now; it runs at exit, and callers with an event loop call it periodically
    (see ``orchestrator run``) so a quiet process does not hold lines back.

    Args:
        raw: the binary stream written to.
        max_bytes: pending bytes that trigger a write.
        max_delay: age of the oldest pending line that triggers a write.
    """

    def __init__(
        self,
        raw: BinaryIO,
        *,
        max_bytes: int = 64 * 1024,
        max_delay: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._raw = raw
        self._max_bytes = max_bytes
        self._max_delay = max_delay
        self._clock = clock
        self._pending: list[bytes] = []
        self._size = 0
        self._since = 0.0
        self._lock = threading.Lock()  # the blocked-loop watchdog logs from its own thread

    def write(self, data: bytes) -> int:
        """Queue ``data``."""
        with self._lock:
            if not self._pending:
                self._since = self._clock()
            self._pending.append(data)
            self._size += len(data)
        return len(data)

    def flush(self) -> None:
        """Write when enough is pending or the oldest line is old enough."""
        if self._size >= self._max_bytes or (
            self._pending and self._clock() - self._since >= self._max_delay
        ):
            self.drain()

    def drain(self) -> None:
        """Write every pending line now."""
        with self._lock:
            if not self._pending:
                return
            data = b"".join(self._pending)
            self._pending.clear()
            self._size = 0
        try:
            self._raw.write(data)
            self._raw.flush()
        except (OSError, ValueError):  # closed or broken stream: drop, never raise into callers
            pass


def configure_logging(
    fmt: LogFormat = "auto",
    level: str = "info",
    stream: TextIO | None = None,
    *,
    buffered: bool = False,
) -> LineBuffer | None:
    """Configure structlog for the process.

    Args:
        fmt: ``json`` lines, ``console`` (coloured when a TTY), or ``auto``: console on a
            TTY, JSON otherwise.
        level: the lowest level written: debug, info, warning or error (any case).
        stream: where lines go (default: standard error).
        buffered: batch JSON lines in a ``LineBuffer`` (returned; drained at exit).

    Returns:
        The line buffer when ``buffered`` and the format is JSON, else None.

    Raises:
        ValueError: on an unknown level or format.
    """
    if level.lower() not in LEVELS:
        raise ValueError(f"unknown log level {level!r}")
    level = level.lower()
    out = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if out.isatty() else "json"
    sink: LineBuffer | None = None
    shared: list[Any] = [
        LEVEL.filter,  # the level can change while the process runs (/debug/loggers)
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    logger_factory: Any
    if fmt == "json":
        processors = [
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ]
        raw = out.buffer if hasattr(out, "buffer") else sys.stderr.buffer
        if buffered:
            sink = LineBuffer(raw)
            atexit.register(sink.drain)
        target = cast(BinaryIO, sink) if sink is not None else raw  # write() and flush() suffice
        logger_factory = structlog.BytesLoggerFactory(target)
    elif fmt == "console":
        # plain tracebacks: with rich installed, structlog's default prints every frame's
        # local variables, and a local may hold a token
        renderer = structlog.dev.ConsoleRenderer(
            colors=out.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
        processors = [*shared, renderer]
        logger_factory = structlog.PrintLoggerFactory(out)
    else:
        raise ValueError(f"unknown log format {fmt!r}")
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=logger_factory,
        cache_logger_on_first_use=True,
    )
    LEVEL.configure(LEVELS[level])
    return sink


def configure_logging_unless_configured() -> bool:
    """``configure_logging()`` with its defaults, unless the program configured structlog.

    ``Application.start()`` calls it, so that a program that configured nothing gets info
    level (structlog's own default writes debug lines) and plain tracebacks (structlog's own
    console default, with rich installed, prints every frame's local variables).

    Returns:
        Whether logging was configured here.
    """
    if structlog.is_configured():
        return False
    configure_logging()
    return True

"""Logging: one structlog chain, JSON lines for machines and a console view for people."""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO

import orjson
import structlog

__all__ = ["LogFormat", "configure_logging"]

LogFormat = Literal["json", "console", "auto"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}  # fmt: skip


def _dumps(obj: Any, **_: Any) -> bytes:
    return orjson.dumps(obj, default=repr)


def configure_logging(
    fmt: LogFormat = "auto", level: str = "info", stream: TextIO | None = None
) -> None:
    """Configure structlog for the process.

    Args:
        fmt: ``json`` lines, ``console`` (coloured when a TTY), or ``auto``: console on a
            TTY, JSON otherwise.
        level: the lowest level written: debug, info, warning or error.
        stream: where lines go (default: standard error).

    Raises:
        ValueError: on an unknown level or format.
    """
    if level not in _LEVELS:
        raise ValueError(f"unknown log level {level!r}")
    out = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if out.isatty() else "json"
    shared: list[Any] = [
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
        logger_factory = structlog.BytesLoggerFactory(
            out.buffer if hasattr(out, "buffer") else None
        )
    elif fmt == "console":
        processors = [*shared, structlog.dev.ConsoleRenderer(colors=out.isatty())]
        logger_factory = structlog.PrintLoggerFactory(out)
    else:
        raise ValueError(f"unknown log format {fmt!r}")
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=logger_factory,
        cache_logger_on_first_use=True,
    )

"""The type of the ``demo`` fixture: start the demo application with some settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from orchestrator import Application

__all__ = ["DemoFactory"]

DemoFactory = Callable[..., Awaitable[Application]]
"""``await demo(**settings)``: the demo application, started, with a few jobs done."""

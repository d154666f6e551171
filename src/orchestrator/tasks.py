"""Owned background tasks: cancel them and wait until they have ended."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(tasks: asyncio.Task[Any] | Iterable[asyncio.Task[Any]] | None) -> None:
    """Cancel ``tasks`` (one, several or None) and wait until each has ended.

    Their results and exceptions are dropped: this is how an owner stops what it started.
    """
    if tasks is None:
        return
    todo = [tasks] if isinstance(tasks, asyncio.Task) else list(tasks)
    for task in todo:
        task.cancel()
    await asyncio.gather(*todo, return_exceptions=True)

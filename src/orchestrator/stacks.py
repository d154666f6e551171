"""Stacks of suspended coroutines, as ``file:line function`` entries, innermost last."""

from __future__ import annotations

import asyncio
from types import FrameType
from typing import Any

__all__ = ["coroutine_stack", "frame_stack", "task_stack"]


def _entry(frame: FrameType) -> str:
    return f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}"


def coroutine_stack(coro: Any, limit: int = 50) -> list[str]:
    """The await chain of a coroutine (or generator), outermost first, innermost last.

    ``Task.get_stack()`` gives one frame for a suspended coroutine; following ``cr_await``
    gives the whole chain down to the future it waits on.
    """
    out: list[str] = []
    while coro is not None and len(out) < limit:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            frame = getattr(coro, "ag_frame", None)
            if frame is None:
                break
        out.append(_entry(frame))
        coro = (
            getattr(coro, "cr_await", None)
            or getattr(coro, "gi_yieldfrom", None)
            or getattr(coro, "ag_await", None)
        )
    return out


def task_stack(task: asyncio.Task[Any], limit: int = 50) -> list[str]:
    """Where ``task`` is: its coroutine's await chain (empty once it is done)."""
    if task.done():
        return []
    return coroutine_stack(task.get_coro(), limit)


def frame_stack(frame: FrameType | None, limit: int = 50) -> list[str]:
    """A thread's stack from its current frame (``sys._current_frames()``), innermost last."""
    out: list[str] = []
    while frame is not None and len(out) < limit:
        out.append(_entry(frame))
        frame = frame.f_back
    out.reverse()
    return out

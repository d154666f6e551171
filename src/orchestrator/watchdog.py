"""A blocked-loop watchdog: a thread that notices when the event loop stops running.

The loop beats a heartbeat every ``threshold / 4`` seconds; a daemon thread checks it as
often. When the loop has not beaten for ``threshold`` seconds, the thread logs
``event_loop_blocked`` (warning) with how long so far and the loop thread's current stack
(``sys._current_frames()``), once per episode; the first heartbeat after it logs
``event_loop_unblocked`` with the total. A lock keeps the two in that order, in the log and
on the event bus, when the loop resumes while the thread is still telling the block. A
healthy loop costs one timer callback, one uncontended lock and one thread wake-up per
``threshold / 4``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from typing import Any

import structlog

from orchestrator.events import EventSink
from orchestrator.stacks import frame_stack

__all__ = ["LoopWatchdog"]

log = structlog.get_logger("orchestrator.watchdog")


class LoopWatchdog:
    """Watches the running loop from a daemon thread.

    Args:
        threshold: seconds without a heartbeat that count as blocked.
        events: where ``event_loop_blocked`` / ``event_loop_unblocked`` are published (on the
            loop, once it runs again).
    """

    def __init__(self, threshold: float = 1.0, *, events: EventSink | None = None) -> None:
        self.threshold = threshold
        self._events = events
        self._beat = threshold / 4
        self._last = time.monotonic()
        self._blocked_since: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._stop = threading.Event()
        self._telling = threading.Lock()  # a block is told whole before its end is
        self._thread: threading.Thread | None = None
        self.blocked_total = 0
        self.longest_block_seconds = 0.0

    @property
    def blocked(self) -> bool:
        """Whether the loop is blocked right now (as the thread last saw it)."""
        return self._blocked_since is not None

    def start(self) -> None:
        """Start beating on the running loop and watching from a thread (idempotent)."""
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._stop.clear()
        self._heartbeat()
        self._thread = threading.Thread(target=self._watch, name="loop-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (the thread ends within one check interval)."""
        self._stop.set()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=self._beat * 2)

    def _heartbeat(self) -> None:
        now = time.monotonic()
        loop = self._loop
        assert loop is not None
        with self._telling:
            since = self._blocked_since
            if since is not None:  # the first beat after a block: it is over
                self._blocked_since = None
                total = round(now - since, 3)
                self.longest_block_seconds = max(self.longest_block_seconds, now - since)
                log.info("event_loop_unblocked", blocked_seconds=total)
                if self._events is not None:  # queued after the thread's event_loop_blocked
                    loop.call_soon(self._events, "event_loop_unblocked", {"blocked_seconds": total})
            self._last = now
        self._handle = loop.call_later(self._beat, self._heartbeat)

    def _watch(self) -> None:
        while not self._stop.wait(self._beat):
            with self._telling:
                last = self._last
                gap = time.monotonic() - last
                if gap < self.threshold or self._blocked_since is not None:
                    continue
                self._blocked_since = last
                self.blocked_total += 1
                frame = sys._current_frames().get(self._loop_thread or 0)
                fields = {"blocked_seconds": round(gap, 3), "frames": frame_stack(frame)}
                try:
                    log.warning("event_loop_blocked", threshold_seconds=self.threshold, **fields)
                except Exception as exc:  # a broken log configuration must not end the watching
                    sys.stderr.write(f"event_loop_blocked could not be logged: {exc!r}\n")
                self._notify_threadsafe("event_loop_blocked", fields)

    def _notify_threadsafe(self, name: str, fields: dict[str, Any]) -> None:
        loop = self._loop
        if self._events is not None and loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
                loop.call_soon_threadsafe(self._events, name, fields)

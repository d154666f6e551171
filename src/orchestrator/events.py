"""Notable events: a bus that fans them out to bounded subscriber queues, and a throttle.

The application publishes what an operator tails live (health changes, worker deaths and
restarts, recycles, drains, a blocked loop, job failures at a bounded rate); the HTTP API
streams them at ``/debug/events``. A slow subscriber never slows the publisher: its queue
keeps the newest ``capacity`` events and counts what it lost.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import NotRunning, OrchestratorError

__all__ = ["Event", "EventBus", "EventSink", "Subscription", "Throttle", "TooManySubscribers"]

EventSink = Callable[[str, Mapping[str, Any]], None]
"""``sink(name, fields)``: what components are given to publish notable events."""


class TooManySubscribers(OrchestratorError):
    """The event bus already has ``max_subscribers`` subscribers."""


@dataclass(frozen=True, slots=True)
class Event:
    """One published event: its name, fields, wall-clock time and sequence number."""

    name: str
    fields: Mapping[str, Any]
    at: float
    seq: int


@dataclass(slots=True)
class Subscription:
    """One subscriber's queue: the newest ``capacity`` events, and how many it lost."""

    capacity: int
    events: deque[Event] = field(default_factory=deque)
    dropped: int = 0
    closed: bool = False
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def put(self, event: Event) -> None:
        if len(self.events) >= self.capacity:
            self.events.popleft()
            self.dropped += 1
        self.events.append(event)
        self._wakeup.set()

    def close(self) -> None:
        """End the subscription: ``next()`` returns None once the queue is empty."""
        self.closed = True
        self._wakeup.set()

    async def next(self) -> tuple[Event | None, int]:
        """The oldest waiting event (None once closed and empty) and the events lost before
        it (counted once)."""
        while not self.events and not self.closed:
            self._wakeup.clear()
            await self._wakeup.wait()
        dropped, self.dropped = self.dropped, 0
        return (self.events.popleft() if self.events else None), dropped


class EventBus:
    """Publish to every subscriber; at most ``max_subscribers`` at once.

    Args:
        max_subscribers: subscribers allowed at once.
        capacity: events each subscriber's queue keeps.
        clock: wall-clock time of events.
    """

    def __init__(
        self,
        max_subscribers: int = 16,
        capacity: int = 256,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_subscribers = max_subscribers
        self.capacity = capacity
        self._clock = clock
        self._subscribers: list[Subscription] = []
        self._seq = 0
        self.published_total = 0
        self.closed = False

    @property
    def subscribers(self) -> int:
        """Subscribers now."""
        return len(self._subscribers)

    def publish(self, name: str, fields: Mapping[str, Any]) -> None:
        """Hand an event to every subscriber (never blocks, never raises)."""
        self._seq += 1
        self.published_total += 1
        if not self._subscribers:
            return
        event = Event(name, dict(fields), self._clock(), self._seq)
        for sub in self._subscribers:
            sub.put(event)

    def subscribe(self) -> Subscription:
        """A new subscription.

        Raises:
            NotRunning: after ``close_all()`` (the application is stopping), until ``reopen()``.
            TooManySubscribers: when ``max_subscribers`` already listen.
        """
        if self.closed:
            raise NotRunning("the event bus is closed: the application is stopping")
        if len(self._subscribers) >= self.max_subscribers:
            raise TooManySubscribers(f"at most {self.max_subscribers} event subscribers")
        sub = Subscription(self.capacity)
        self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget ``sub`` (idempotent)."""
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    def close_all(self) -> None:
        """End every subscription and refuse new ones (the application's stop: no stream
        holds up the HTTP server's shutdown)."""
        self.closed = True
        for sub in self._subscribers:
            sub.close()

    def reopen(self) -> None:
        """Accept subscriptions again (the application starts)."""
        self.closed = False


class Throttle:
    """At most ``limit`` events per key per ``window`` seconds; counts the rest.

    ``allow(key, now)`` says whether to emit; when a key's window ends with events
    suppressed, ``allow`` (for that key) or ``flush(now)`` returns them once as
    ``(key, count)`` summaries through ``on_suppressed``.

    Args:
        limit: events per key per window.
        window: seconds.
        on_suppressed: called with ``(key, suppressed count)`` when a window closes.
    """

    def __init__(
        self, limit: int, window: float, on_suppressed: Callable[[Any, int], None]
    ) -> None:
        self.limit = limit
        self.window = window
        self._on_suppressed = on_suppressed
        self._windows: dict[Any, list[float]] = {}  # key -> [window start, emitted, suppressed]

    def allow(self, key: Any, now: float) -> bool:
        state = self._windows.get(key)
        if state is None or now - state[0] >= self.window:
            if state is not None and state[2]:
                self._on_suppressed(key, int(state[2]))
            state = self._windows[key] = [now, 0, 0]
        if state[1] < self.limit:
            state[1] += 1
            return True
        state[2] += 1
        return False

    def flush(self, now: float) -> None:
        """Report every window that has ended with events suppressed."""
        for key, state in list(self._windows.items()):
            if now - state[0] >= self.window:
                if state[2]:
                    self._on_suppressed(key, int(state[2]))
                del self._windows[key]

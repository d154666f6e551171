"""The ``/debug/*`` views: jobs, tasks, a profile, log levels, settings and live events.

Every one of them exists only when a token is configured (access class ``debug``), goes
through the whole chain, and answers JSON unless a format is asked for.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from typing import Any

import orjson
from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response
from pyinstrument import Profiler
from pyinstrument.renderers import SpeedscopeRenderer

from orchestrator.clock import utc_iso
from orchestrator.errors import ConfigError, NotRunning
from orchestrator.events import Subscription, TooManySubscribers
from orchestrator.http.api_error import ApiError
from orchestrator.http.concerns.request_id import HEADER, REQUEST_ID
from orchestrator.http.keys import OBSERVABLE
from orchestrator.http.responses import NO_STORE, json_response
from orchestrator.http.views import flag
from orchestrator.log_level import LEVEL, LEVELS, MAX_SECONDS
from orchestrator.stacks import task_stack
from orchestrator.types import Inspectable

__all__ = ["config", "events", "jobs", "loggers", "profile", "set_loggers", "tasks"]

PROFILE_FORMATS = {
    "speedscope": "application/json",
    "text": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
}
"""``?format=`` of ``/debug/profile`` and what each is served as (speedscope by default)."""


def _number(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within ``low..high``.

    Raises:
        ApiError: 400 for anything else (the value is not repeated back).
    """
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError(400, "bad_request", f"?{name} takes a whole number from {low} to {high}")
    return value


def _inspectable(request: web.Request) -> Inspectable:
    observable = request.app[OBSERVABLE]
    if not isinstance(observable, Inspectable):
        raise ApiError(404, "not_found", "this application keeps no such debugging data")
    return observable


async def jobs(request: web.Request) -> web.Response:
    """``GET /debug/jobs``: jobs in flight (oldest first), recent failures, slowest jobs."""
    limit = _number(request, "limit", 100, 1, 10_000)
    body = _inspectable(request).debug_jobs(limit)
    return json_response(body, 200, NO_STORE, pretty=flag(request, "pretty"))


def _task_entry(task: asyncio.Task[Any]) -> dict[str, Any]:
    coro = task.get_coro()
    state = "done" if task.done() else "cancelling" if task.cancelling() else "pending"
    return {
        "name": task.get_name(),
        "coroutine": getattr(coro, "__qualname__", type(coro).__name__),
        "state": state,
        "stack": task_stack(task),
    }


async def tasks(request: web.Request) -> web.Response:
    """``GET /debug/tasks``: every task of the loop with its stack; ``?group`` merges alike."""
    limit = _number(request, "limit", 1000, 1, 100_000)
    group = flag(request, "group")
    current = asyncio.current_task()
    every = sorted((t for t in asyncio.all_tasks() if t is not current), key=lambda t: t.get_name())
    entries = [_task_entry(t) for t in every[:limit]]
    body: dict[str, Any] = {"tasks_total": len(every), "tasks_omitted": max(0, len(every) - limit)}
    if group:
        counts = Counter(tuple(e["stack"]) for e in entries)
        first: dict[tuple[str, ...], dict[str, Any]] = {}
        for e in entries:
            first.setdefault(tuple(e["stack"]), e)
        body["groups"] = [
            {
                "count": n,
                "coroutine": first[stack]["coroutine"],
                "stack": list(stack),
                "example": first[stack]["name"],
            }
            for stack, n in counts.most_common()
        ]
    else:
        body["tasks"] = entries
    return json_response(body, 200, NO_STORE, pretty=flag(request, "pretty"))


class ProfileSlot:
    """One profile at a time, per process (the profiler samples the whole thread)."""

    def __init__(self) -> None:
        self.ends_at: float | None = None  # loop time when the running profile ends

    @property
    def busy(self) -> bool:
        return self.ends_at is not None


PROFILE = ProfileSlot()


async def profile(request: web.Request) -> web.StreamResponse:
    """``GET /debug/profile?seconds=N``: a sampling profile of everything the loop runs."""
    seconds = _number(request, "seconds", 10, 1, 60)
    fmt = request.query.get("format", "speedscope")
    if fmt not in PROFILE_FORMATS:
        raise ApiError(400, "bad_request", "?format takes speedscope, text or html")
    loop = asyncio.get_running_loop()
    if PROFILE.ends_at is not None:
        left = max(1, math.ceil(PROFILE.ends_at - loop.time()))
        raise ApiError(409, "profile_running", "a profile is already running; try when it ends",
                       headers={"Retry-After": str(left)})  # fmt: skip
    PROFILE.ends_at = loop.time() + seconds
    profiler = Profiler(interval=0.001, async_mode="disabled")  # the thread: every task
    try:
        profiler.start()
        try:
            await asyncio.sleep(seconds)
        finally:
            profiler.stop()
    finally:
        PROFILE.ends_at = None
    if fmt == "text":
        body = profiler.output_text(unicode=True, color=False).encode()
    elif fmt == "html":
        body = profiler.output_html().encode()
    else:
        body = profiler.output(SpeedscopeRenderer()).encode()
    headers = {**NO_STORE, "Content-Type": PROFILE_FORMATS[fmt]}
    if fmt != "text":  # its own scripts: saved, never rendered in this origin
        ext = "html" if fmt == "html" else "speedscope.json"
        headers["Content-Disposition"] = f'attachment; filename="profile.{ext}"'
    return web.Response(body=body, headers=headers)


def _loggers_body() -> dict[str, Any]:
    until = LEVEL.until
    return {
        "level": LEVEL.name(),
        "default_level": LEVEL.name(LEVEL.base),
        "reverts_at": utc_iso(until) if until is not None else None,
        "configured": LEVEL.configured,
        "levels": list(LEVELS),
    }


async def loggers(request: web.Request) -> web.Response:
    """``GET /debug/loggers``: the log level now, the configured one, when it turns back."""
    return json_response(_loggers_body(), 200, NO_STORE, pretty=flag(request, "pretty"))


async def set_loggers(request: web.Request) -> web.Response:
    """``PUT /debug/loggers`` with ``{"level": "debug", "seconds": 300}``: for a while."""
    raw = await request.content.read(4097)
    try:
        data = orjson.loads(raw) if len(raw) <= 4096 else None
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("level"), str):
        raise ApiError(400, "bad_request", 'the body is JSON: {"level": "debug", "seconds": 300}')
    seconds = data.get("seconds", 300)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ApiError(400, "bad_request", "seconds is a number of seconds")
    if not LEVEL.configured:
        raise ApiError(
            409,
            "logging_not_configured",
            "logging was not set up by orchestrator (configure_logging)",
        )
    try:
        LEVEL.change(data["level"], float(seconds) if math.isfinite(seconds) else 0.0)
    except ConfigError as exc:
        detail = (
            f"level is one of {', '.join(LEVELS)}"
            if exc.setting == "level"
            else f"seconds is within 1..{MAX_SECONDS:g}"
        )
        raise ApiError(400, "bad_request", detail) from None
    return json_response(_loggers_body(), 200, NO_STORE, pretty=flag(request, "pretty"))


async def config(request: web.Request) -> web.Response:
    """``GET /debug/config``: the settings in force and where each came from."""
    body = _inspectable(request).debug_config()
    return json_response(body, 200, NO_STORE, pretty=flag(request, "pretty"))


PING_SECONDS = 15.0
"""Seconds between keep-alive comments on a quiet event stream (they find a gone client)."""


class EventStream(EventSourceResponse):
    """A Server-Sent Events response that counts the body bytes it has written."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._written = 0

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        await super().write(data)
        self._written += len(data)

    @property
    def body_length(self) -> int:
        """Bytes of events and pings written (aiohttp counts only at ``write_eof``, after
        the access log has written its line)."""
        return self._written


async def _relay(subscription: Subscription, stream: EventStream) -> None:
    """Send the subscription's events until it closes.

    Raises:
        ConnectionResetError: the client has gone.
    """
    while True:
        event, dropped = await subscription.next()
        if dropped:
            await stream.send(orjson.dumps({"dropped": dropped}).decode(), event="dropped")
        if event is None:
            return  # the application is stopping, or a ping found the client gone
        data = {"at": utc_iso(event.at), **event.fields}
        await stream.send(
            orjson.dumps(data, default=str).decode(), event=event.name, id=str(event.seq)
        )


async def events(request: web.Request) -> web.StreamResponse:
    """``GET /debug/events``: the application's notable events as Server-Sent Events.

    An operator drain leaves streams be (drained to be watched); the application's stop
    ends them. A client hanging up is a normal end, found at the next event or ping.
    """
    bus = _inspectable(request).events
    if request.method == "HEAD":
        return web.Response(headers={"Content-Type": "text/event-stream", **NO_STORE})
    try:
        subscription = bus.subscribe()
    except TooManySubscribers:
        raise ApiError(
            503, "too_many_subscribers", f"at most {bus.max_subscribers} event streams at once"
        ) from None
    except NotRunning:
        raise ApiError(503, "not_running", "the application is stopping: no new streams") from None
    try:
        headers = {HEADER: request[REQUEST_ID], **NO_STORE}
        async with sse_response(
            request, headers=headers, ping_interval=PING_SECONDS, response_cls=EventStream
        ) as stream:
            pings = asyncio.ensure_future(stream.wait())  # ends when a ping fails
            pings.add_done_callback(lambda _: subscription.close())
            try:
                await _relay(subscription, stream)
            except ConnectionResetError:
                pass  # the client hung up: the stream is over, nothing failed
            finally:
                pings.cancel()
        return stream
    finally:
        bus.unsubscribe(subscription)

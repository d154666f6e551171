"""Request ids: accept a sane incoming ``X-Request-ID`` or make one."""

from __future__ import annotations

import itertools
import os
import re

from aiohttp import web

__all__ = ["HEADER", "REQUEST_ID", "RequestIds"]

HEADER = "X-Request-ID"
"""The header that carries a request's id, in and out (the one place that names it)."""
REQUEST_ID = web.RequestKey("request_id", str)

_SANE = re.compile(r"[A-Za-z0-9._-]{1,128}")


class RequestIds:
    """Assigns each request an id: the client's when sane, else ``<process>-<counter>``.

    A sane id is 1 to 128 characters of ``[A-Za-z0-9._-]``; anything else is replaced, so
    no client byte outside that set reaches a header or a log line. Generated ids are a
    random per-process prefix and a counter: unique, and cheaper than ``uuid4``.
    """

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex()
        self._counter = itertools.count(1)

    def __call__(self, request: web.Request) -> str:
        """The request's id (also stored under ``REQUEST_ID``)."""
        rid = self.given(request.headers.get(HEADER))
        request[REQUEST_ID] = rid
        return rid

    def given(self, incoming: str | None) -> str:
        """``incoming`` when it is a sane id, else a fresh one."""
        return incoming if incoming is not None and _SANE.fullmatch(incoming) else self.new()

    def new(self) -> str:
        """A fresh id (for a request that could not be parsed, say)."""
        return f"{self._prefix}-{next(self._counter):x}"

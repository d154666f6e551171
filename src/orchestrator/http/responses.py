"""JSON responses from bytes or data, serialised with orjson."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

__all__ = ["error_response", "json_bytes", "json_response"]

NO_STORE = {"Cache-Control": "no-store"}


def json_bytes(
    body: bytes, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON response around already serialised bytes."""
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None, *, pretty: bool = False
) -> web.Response:
    """A JSON response; ``pretty`` indents by two spaces."""
    option = orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE if pretty else 0
    return json_bytes(orjson.dumps(data, option=option), status, headers)


def error_response(
    status: int,
    code: str,
    detail: str,
    *,
    request_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """The error shape: ``{"error": code, "detail": detail, "request_id": ...}``."""
    body: dict[str, Any] = {"error": code, "detail": detail}
    if request_id is not None:
        body["request_id"] = request_id
    return json_response(body, status, headers)

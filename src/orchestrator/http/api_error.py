"""Errors the views raise on purpose; the errors middleware renders them as JSON."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ApiError"]


class ApiError(Exception):
    """An HTTP error with a stable machine-readable ``code`` and a safe ``detail``."""

    def __init__(
        self, status: int, code: str, detail: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})

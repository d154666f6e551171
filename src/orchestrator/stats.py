"""Helpers for building stats: bounded per-item listings."""

from __future__ import annotations

import itertools
from collections.abc import Collection
from typing import TypeVar

__all__ = ["bounded"]

T = TypeVar("T")


def bounded(items: Collection[T], limit: int | None) -> tuple[Collection[T], int]:
    """The first ``limit`` items (all when None) and how many were left out."""
    if limit is None or len(items) <= limit:
        return items, 0
    return list(itertools.islice(items, limit)), len(items) - limit

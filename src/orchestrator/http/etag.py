"""Entity tags: one way to make them and one way to answer ``If-None-Match``.

Parsing and formatting are aiohttp's (``request.if_none_match``, ``response.etag``).
"""

from __future__ import annotations

import hashlib

from aiohttp import web
from aiohttp.helpers import ETAG_ANY

__all__ = ["etag_of", "not_modified"]


def etag_of(body: bytes) -> str:
    """A strong entity tag for ``body`` (unquoted: aiohttp adds the quotes)."""
    return hashlib.blake2b(body, digest_size=12).hexdigest()


def not_modified(request: web.Request, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, as RFC 9110 asks) or ``*``."""
    tags = request.if_none_match
    return tags is not None and any(t.value in (etag, ETAG_ANY) for t in tags)

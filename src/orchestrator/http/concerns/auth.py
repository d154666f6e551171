"""Bearer-token authentication, compared in constant time on bytes."""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

from orchestrator.http.api_error import ApiError

__all__ = ["TokenAuth"]

_CHALLENGE = 'Bearer realm="orchestrator"'


class TokenAuth:
    """Checks ``Authorization: Bearer <token>`` against one or several tokens.

    Every configured token is compared with ``hmac.compare_digest`` on bytes, without
    stopping at the first match, so timing does not reveal which token (or how much of
    one) matched. A missing, duplicated, non-ASCII or malformed header is simply not a
    valid credential: the caller answers 401, never 500.

    Args:
        tokens: the accepted tokens (non-empty ASCII strings).
    """

    def __init__(self, tokens: tuple[str, ...]) -> None:
        self._tokens = [(t.encode("ascii"), self.identity_of(t)) for t in tokens]
        self.failures_total = 0

    @staticmethod
    def identity_of(token: str) -> str:
        """A stable, non-reversible name for a token (for rate-limit keys and logs)."""
        return "token:" + hashlib.sha256(token.encode()).hexdigest()[:12]

    def identify(self, request: web.Request) -> str | None:
        """The identity of the request's valid token, or None."""
        values = request.headers.getall("Authorization", ())
        if len(values) != 1:
            return None
        scheme, _, credential = values[0].partition(" ")
        if scheme.lower() != "bearer":
            return None
        try:
            given = credential.strip().encode("ascii")
        except UnicodeEncodeError:
            return None
        found = None
        for token, identity in self._tokens:
            if hmac.compare_digest(given, token):
                found = identity
        return found

    def challenge(self, request: web.Request) -> ApiError:
        """The 401 error for a request without a valid token."""
        self.failures_total += 1
        given = "Authorization" in request.headers
        header = f'{_CHALLENGE}, error="invalid_token"' if given else _CHALLENGE
        detail = "the bearer token is not valid" if given else "a bearer token is required"
        return ApiError(401, "unauthorized", detail, {"WWW-Authenticate": header})

"""One running instance seen over HTTP: where it is, its token, and one-line errors.

Every failure is a :class:`RemoteError` whose message is one sentence naming the URL (never
the token): refused connection, unknown host, timeout, 401, 429 with when to retry, an
answer that is not JSON.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from orchestrator.environment import read_token_file
from orchestrator.errors import ConfigError, OrchestratorError
from orchestrator.version import __version__

__all__ = [
    "DEFAULT_URL",
    "NEEDS_TOKEN",
    "Answer",
    "NotAnOrchestrator",
    "RateLimited",
    "Remote",
    "RemoteError",
    "TokenRefused",
    "Unreachable",
    "remote_from",
]

DEFAULT_URL = "http://127.0.0.1:8080"
NEEDS_TOKEN = "{url} needs a token: set ORCHESTRATOR_HTTP_TOKEN or use --token-file"
REQUEST_TIMEOUT = 5.0
"""Seconds one request may take, connection included."""


class RemoteError(OrchestratorError):
    """The instance could not be asked, or did not answer as an orchestrator does."""


class Unreachable(RemoteError):
    """No HTTP answer: refused, unknown host, timeout, reset."""


class TokenRefused(RemoteError):
    """A 401: no token, or not one the instance accepts."""


class RateLimited(RemoteError):
    """A 429; ``retry_after`` is what the instance said, in seconds."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotAnOrchestrator(RemoteError):
    """An answer that is not JSON, or a redirect: something else listens there."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A JSON answer of any status."""

    status: int
    body: Any
    headers: Mapping[str, str]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """The API never redirects; following one would send the token elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


@dataclass(frozen=True, slots=True)
class Remote:
    """The instance at ``url`` (no trailing slash), asked with ``token`` when there is one."""

    url: str
    token: str | None = field(default=None, repr=False)

    def get(self, path: str, *, timeout: float = REQUEST_TIMEOUT) -> Answer:
        """``GET url+path`` and its JSON body, whatever the status but 401 and 429.

        Raises:
            Unreachable, TokenRefused, RateLimited, NotAnOrchestrator.
        """
        sent = {"Accept": "application/json", "User-Agent": f"orchestrator-cli/{__version__}"}
        request = urllib.request.Request(self.url + path, headers=sent)
        if self.token:
            request.add_unredirected_header("Authorization", f"Bearer {self.token}")
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                status, headers, raw = response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            status, headers = exc.code, exc.headers
            try:
                raw = exc.read()
            except (OSError, http.client.HTTPException):
                raw = b""
        except urllib.error.URLError as exc:
            raise Unreachable(self._why(exc.reason, timeout)) from None
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(self._why(exc, timeout)) from None
        return self._answer(path, status, headers, raw)

    def _answer(self, path: str, status: int, headers: Any, raw: bytes) -> Answer:
        where = self.url + path
        if status == 401:
            if self.token:
                raise TokenRefused(f"{self.url} refused the token")
            raise TokenRefused(NEEDS_TOKEN.format(url=self.url))
        if status == 429:
            retry = _seconds(headers.get("Retry-After"))
            when = f"retry in {retry:g} s" if retry is not None else "retry later"
            raise RateLimited(f"{self.url} is rate limiting this client; {when}", retry)
        if 300 <= status < 400:
            raise NotAnOrchestrator(
                f"{where} redirects elsewhere ({status}): is {self.url} an orchestrator?"
            )
        kind = headers.get_content_type() if hasattr(headers, "get_content_type") else ""
        try:
            if kind != "application/json":
                raise ValueError(kind)
            body = orjson.loads(raw)
        except ValueError:
            shown = kind if raw else "an empty body"
            raise NotAnOrchestrator(
                f"{where} answered {status} with {shown}, not JSON: is {self.url} an orchestrator?"
            ) from None
        return Answer(status, body, {k: v for k, v in headers.items()})

    def _why(self, reason: object, timeout: float) -> str:
        host = urllib.parse.urlsplit(self.url).hostname or self.url
        if isinstance(reason, socket.gaierror):
            return f"cannot resolve host {host!r} of {self.url}"
        if isinstance(reason, ConnectionRefusedError):
            return f"connection refused by {self.url} (is the instance running?)"
        if isinstance(reason, TimeoutError | socket.timeout):
            return f"no answer from {self.url} within {timeout:g} s"
        if isinstance(reason, ssl.SSLError):
            return f"TLS with {self.url} failed: {reason.reason or 'handshake error'}"
        if isinstance(reason, ConnectionError):
            return f"{self.url} closed the connection ({type(reason).__name__})"
        return f"cannot reach {self.url}: {type(reason).__name__}"


def _seconds(text: str | None) -> float | None:
    try:
        return max(0.0, float(text)) if text is not None else None
    except ValueError:
        return None


def remote_from(url: str | None, token_file: str | None, environ: Mapping[str, str]) -> Remote:
    """The instance from ``--url`` (else ``ORCHESTRATOR_URL``, else the default) and the
    token from ``--token-file`` (else ``ORCHESTRATOR_HTTP_TOKEN_FILE``, else
    ``ORCHESTRATOR_HTTP_TOKEN``; the first one when several are given).

    Raises:
        ConfigError: on a URL that is not http(s) with a host, carries credentials, or a
            token file that cannot be read.
    """
    given = url or environ.get("ORCHESTRATOR_URL") or DEFAULT_URL
    source = "--url" if url else "ORCHESTRATOR_URL" if environ.get("ORCHESTRATOR_URL") else "url"
    parts = urllib.parse.urlsplit(given)
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise ConfigError(f"{source}: the port is not a number from 0 to 65535") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{source} must look like http://HOST:PORT")
    if parts.username or parts.password:
        raise ConfigError(
            f"{source} must not carry credentials; the token comes from "
            "ORCHESTRATOR_HTTP_TOKEN or --token-file"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"{source} must not have a query or a fragment")
    path = token_file or environ.get("ORCHESTRATOR_HTTP_TOKEN_FILE")
    if path:
        token: str | None = read_token_file(path)[0]
    else:
        listed = [t.strip() for t in environ.get("ORCHESTRATOR_HTTP_TOKEN", "").split(",")]
        token = next((t for t in listed if t), None)
    return Remote(given.rstrip("/"), token)

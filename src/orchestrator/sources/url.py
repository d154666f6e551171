"""``--source`` URLs: ``redis://host:6379/0?stream=jobs&group=workers`` (the query may also
give ``consumer``, ``claim_idle`` and ``max_deliveries``), read without any broker client so
that a bad URL is a clear error before anything starts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit, urlunsplit

from orchestrator.errors import ConfigError
from orchestrator.sources.base import Source

__all__ = ["SourceUrl", "parse_source_url", "source_from_url"]

SCHEMES = ("redis", "rediss", "unix")
QUERY = ("stream", "group", "consumer", "claim_idle", "max_deliveries")


@dataclass(frozen=True, slots=True)
class SourceUrl:
    """A source URL, read: the broker's URL (without the source's query) and the options."""

    url: str
    stream: str
    group: str
    consumer: str | None = None
    claim_idle: float = 30.0
    max_deliveries: int = 5


def parse_source_url(text: str) -> SourceUrl:
    """Read a ``--source`` URL.

    Raises:
        ConfigError: on another scheme, a missing ``stream`` or ``group``, an unknown or
            repeated query key, or a bad number.
    """
    parts = urlsplit(text.strip())
    if parts.scheme not in SCHEMES:
        given = f"{parts.scheme}://" if parts.scheme else repr(text)
        raise ConfigError(f"source URL must start with redis://, rediss:// or unix://, not {given}")
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise ConfigError(f"source URL query is malformed: {parts.query!r}") from None
    options: dict[str, str] = {}
    broker_query: list[str] = []
    for key, values in query.items():
        if key not in QUERY:
            if key == "db" or key.startswith(("socket_", "ssl_")):  # redis-py's own options
                broker_query += [f"{key}={v}" for v in values]
                continue
            raise ConfigError(f"source URL: unknown query key {key!r} (known: {', '.join(QUERY)})")
        if len(values) != 1 or not values[0]:
            raise ConfigError(f"source URL: {key} must be given once, not empty")
        options[key] = values[0]
    for needed in ("stream", "group"):
        if needed not in options:
            raise ConfigError(f"source URL: missing {needed}= (for example "
                              f"redis://host:6379/0?stream=jobs&group=workers)")  # fmt: skip
    broker = urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(broker_query), ""))
    claim_idle = _number("claim_idle", options.get("claim_idle", "30"), float)
    max_deliveries = int(_number("max_deliveries", options.get("max_deliveries", "5"), int))
    return SourceUrl(broker, options["stream"], options["group"], options.get("consumer"),
                     claim_idle, max_deliveries)  # fmt: skip


def _number(key: str, text: str, kind: type[int] | type[float]) -> float:
    try:
        value = kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ConfigError(f"source URL: {key} must be {what}, not {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"source URL: {key} must be positive, not {text!r}")
    return value


def source_from_url(text: str) -> Source:
    """The source a URL names (its broker client imported only now).

    Raises:
        ConfigError: on a bad URL, or when the ``redis`` extra is not installed.
    """
    url = parse_source_url(text)
    try:
        from orchestrator.sources.redis import RedisStreamSource
    except ImportError:
        raise ConfigError("a Redis source needs the redis extra: "
                          "pip install 'orchestrator[redis]'") from None  # fmt: skip
    return RedisStreamSource(
        url.url,
        stream=url.stream,
        group=url.group,
        consumer=url.consumer,
        claim_idle=url.claim_idle,
        max_deliveries=url.max_deliveries,
    )

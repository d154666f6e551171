"""Frozen settings: the one source of truth, fed by keyword arguments, flags and environment.

Every field is validated in ``__post_init__`` and a bad value raises ``ConfigError`` (naming
the setting in its ``setting`` attribute) before anything starts. ``orchestrator.environment``
reads ``ORCHESTRATOR_*`` variables into these classes.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from orchestrator.errors import ConfigError

__all__ = [
    "ENV_PREFIX",
    "FORWARDED_HEADERS",
    "CoreSettings",
    "HttpSettings",
    "split_settings",
]

ENV_PREFIX = "ORCHESTRATOR_"


def check_int(name: str, value: object, *, minimum: int, optional: bool = False) -> None:
    """Raise ``ConfigError`` unless ``value`` is an int >= ``minimum`` (or None when optional)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}", setting=name)


def check_seconds(
    name: str,
    value: object,
    *,
    positive: bool = True,
    optional: bool = False,
    what: str = "a number of seconds",
) -> None:
    """Raise ``ConfigError`` unless ``value`` is a finite number (> 0, or >= 0)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name} must be {what}, got {value!r}", setting=name)
    if (positive and value <= 0) or value < 0:
        raise ConfigError(
            f"{name} must be {'> 0' if positive else '>= 0'}, got {value!r}", setting=name
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreSettings:
    """Settings of the application core (components); see docs/configuration.md."""

    name: str = "orchestrator"
    workers: int = 4
    queue_size: int = 1024
    pool_min_size: int = 0
    pool_max_size: int = 8
    pool_acquire_timeout: float = 5.0
    max_jobs_per_worker: int | None = None
    max_worker_age: float | None = None
    max_connection_uses: int | None = None
    max_connection_age: float | None = None
    connection_idle_timeout: float | None = None
    recycle_interval: float = 1.0
    saturation_grace: float = 5.0
    restart_backoff: float = 0.1
    handler_stuck_grace: float = 5.0
    blocked_loop_threshold: float | None = 1.0
    stats_max_items: int | None = 1000
    gc_freeze: bool = True
    gc_gen0_threshold: int | None = 7000
    adaptive_limit: bool = True
    lag_target: float = 0.002
    queue_target: float | None = 0.005
    queue_interval: float = 0.1
    source: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("name must not be empty", setting="name")
        check_int("workers", self.workers, minimum=1)
        check_int("queue_size", self.queue_size, minimum=1)
        check_int("pool_min_size", self.pool_min_size, minimum=0)
        check_int("pool_max_size", self.pool_max_size, minimum=1)
        if self.pool_min_size > self.pool_max_size:
            raise ConfigError(
                f"pool_min_size ({self.pool_min_size}) must be <= "
                f"pool_max_size ({self.pool_max_size})",
                setting="pool_min_size",
            )
        check_seconds("pool_acquire_timeout", self.pool_acquire_timeout)
        check_int("max_jobs_per_worker", self.max_jobs_per_worker, minimum=1, optional=True)
        check_int("max_connection_uses", self.max_connection_uses, minimum=1, optional=True)
        for name in ("max_worker_age", "max_connection_age", "connection_idle_timeout"):
            check_seconds(name, getattr(self, name), optional=True)
        check_seconds("recycle_interval", self.recycle_interval)
        check_seconds("saturation_grace", self.saturation_grace, positive=False)
        check_seconds("restart_backoff", self.restart_backoff, positive=False)
        check_seconds("handler_stuck_grace", self.handler_stuck_grace)
        check_seconds("blocked_loop_threshold", self.blocked_loop_threshold, optional=True)
        check_int("stats_max_items", self.stats_max_items, minimum=0, optional=True)
        check_int("gc_gen0_threshold", self.gc_gen0_threshold, minimum=1, optional=True)
        check_seconds("lag_target", self.lag_target)
        check_seconds("queue_target", self.queue_target, optional=True)
        check_seconds("queue_interval", self.queue_interval)

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def _env(name: str) -> dict[str, str]:
    return {"env": ENV_PREFIX + "HTTP_" + name}


FORWARDED_HEADERS = ("x-forwarded-for", "forwarded")
"""The headers a trusted proxy may name the client in (``forwarded_header``)."""

_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-._~+/=")


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSettings:
    """Settings of the HTTP observability API; see docs/configuration.md.

    Environment variables are ``ORCHESTRATOR_HTTP_<NAME>`` (``http_`` prefixes dropped).
    """

    enable_http: bool = field(default=False, metadata=_env("ENABLED"))
    http_host: str = field(default="0.0.0.0", metadata=_env("HOST"))
    http_port: int = field(default=8080, metadata=_env("PORT"))
    http_required: bool = field(default=False, metadata=_env("REQUIRED"))
    http_shutdown_timeout: float = field(default=5.0, metadata=_env("SHUTDOWN_TIMEOUT"))
    http_header_timeout: float = field(default=10.0, metadata=_env("HEADER_TIMEOUT"))
    http_keepalive_timeout: float = field(default=75.0, metadata=_env("KEEPALIVE_TIMEOUT"))
    http_max_connections: int = field(default=1000, metadata=_env("MAX_CONNECTIONS"))
    stats_ttl: float = field(default=1.0, metadata=_env("STATS_TTL"))
    stats_slow_threshold: float = field(default=0.05, metadata=_env("STATS_SLOW_THRESHOLD"))
    http_token: tuple[str, ...] = field(default=(), repr=False, metadata=_env("TOKEN"))
    http_public_paths: tuple[str, ...] | None = field(default=None, metadata=_env("PUBLIC_PATHS"))
    """Routes served without a token; None: the public and probe routes of the route table."""
    rate_limit: float | None = field(default=100.0, metadata=_env("RATE_LIMIT"))
    rate_limit_burst: int | None = field(default=None, metadata=_env("RATE_LIMIT_BURST"))
    rate_limit_max_clients: int = field(default=10_000, metadata=_env("RATE_LIMIT_MAX_CLIENTS"))
    rate_limit_exempt_paths: tuple[str, ...] | None = field(
        default=None, metadata=_env("RATE_LIMIT_EXEMPT_PATHS")
    )
    """Routes never rate limited; None: the probe routes of the route table."""
    trusted_proxies: tuple[str, ...] = field(default=(), metadata=_env("TRUSTED_PROXIES"))
    forwarded_header: str = field(default="x-forwarded-for", metadata=_env("FORWARDED_HEADER"))
    cors_origins: tuple[str, ...] = field(default=(), metadata=_env("CORS_ORIGINS"))
    access_log_probe_sample: float = field(default=0.0, metadata=_env("ACCESS_LOG_PROBE_SAMPLE"))
    metrics_per_item: bool = field(default=False, metadata=_env("METRICS_PER_ITEM"))
    drain_delay: float = field(default=0.0, metadata=_env("DRAIN_DELAY"))
    max_event_subscribers: int = field(default=16, metadata=_env("MAX_EVENT_SUBSCRIBERS"))
    fast_probes: bool = field(default=True, metadata=_env("FAST_PROBES"))
    """Answer plain ``/health``, ``/ready`` and ``/live`` requests as their bytes arrive."""

    @property
    def rate_limited(self) -> bool:
        """Whether per-client rate limiting is on."""
        return bool(self.rate_limit)

    @property
    def burst(self) -> int:
        """The bucket size: ``rate_limit_burst``, or the rate rounded up."""
        if self.rate_limit_burst is not None:
            return self.rate_limit_burst
        return max(1, math.ceil(self.rate_limit or 0))

    def __post_init__(self) -> None:
        if not isinstance(self.http_host, str) or not self.http_host:
            raise ConfigError(
                "http_host must be a non-empty host name or address", setting="http_host"
            )
        check_int("http_port", self.http_port, minimum=0)
        if self.http_port > 65535:
            raise ConfigError(
                f"http_port must be <= 65535, got {self.http_port}", setting="http_port"
            )
        check_seconds("http_shutdown_timeout", self.http_shutdown_timeout, positive=False)
        check_seconds("http_header_timeout", self.http_header_timeout)
        check_seconds("http_keepalive_timeout", self.http_keepalive_timeout)
        check_int("http_max_connections", self.http_max_connections, minimum=1)
        check_seconds("stats_ttl", self.stats_ttl, positive=False)
        check_seconds("stats_slow_threshold", self.stats_slow_threshold, positive=False)
        self._check_tokens()
        for name in ("http_public_paths", "rate_limit_exempt_paths"):
            paths = getattr(self, name)
            if paths is None:
                continue
            if not isinstance(paths, tuple) or not all(
                isinstance(p, str) and p.startswith("/") for p in paths
            ):
                raise ConfigError(
                    f"{name} must be a tuple of paths starting with '/'", setting=name
                )
        if self.rate_limit is not None:
            check_seconds("rate_limit", self.rate_limit, positive=False, what="requests per second")
        check_int("rate_limit_burst", self.rate_limit_burst, minimum=1, optional=True)
        check_int("rate_limit_max_clients", self.rate_limit_max_clients, minimum=1)
        try:
            tuple(ipaddress.ip_network(p, strict=False) for p in self.trusted_proxies)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"trusted_proxies: {exc}", setting="trusted_proxies") from None
        if self.forwarded_header not in FORWARDED_HEADERS:
            raise ConfigError(
                f"forwarded_header must be one of {', '.join(FORWARDED_HEADERS)}, "
                f"got {self.forwarded_header!r}",
                setting="forwarded_header",
            )
        for origin in self.cors_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ConfigError(
                    f"cors_origins: {origin!r} is not '*' or an http(s) origin",
                    setting="cors_origins",
                )
        check_seconds("drain_delay", self.drain_delay, positive=False)
        check_int("max_event_subscribers", self.max_event_subscribers, minimum=1)
        sample = self.access_log_probe_sample
        if isinstance(sample, bool) or not isinstance(sample, int | float) or not 0 <= sample <= 1:
            raise ConfigError(
                f"access_log_probe_sample must be within [0, 1], got {sample!r}",
                setting="access_log_probe_sample",
            )

    def _check_tokens(self) -> None:
        if isinstance(self.http_token, str):  # one token given as a plain string
            object.__setattr__(self, "http_token", (self.http_token,) if self.http_token else ())
        if not isinstance(self.http_token, tuple):
            raise ConfigError(
                "http_token must be a string or a tuple of strings", setting="http_token"
            )
        for i, token in enumerate(self.http_token, 1):
            # never echo a token, not even a bad one: name its position only
            if not isinstance(token, str) or not token or not set(token) <= _TOKEN_CHARS:
                raise ConfigError(
                    f"http_token #{i} is invalid: use letters, digits and -._~+/= only",
                    setting="http_token",
                )

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def split_settings(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split keyword arguments into core and HTTP settings by field name.

    Raises:
        ConfigError: for a name that is neither.
    """
    core_names = {f.name for f in dataclasses.fields(CoreSettings)}
    http_names = {f.name for f in dataclasses.fields(HttpSettings)}
    unknown = sorted(set(options) - core_names - http_names)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    core = {k: v for k, v in options.items() if k in core_names}
    http = {k: v for k, v in options.items() if k in http_names}
    return core, http

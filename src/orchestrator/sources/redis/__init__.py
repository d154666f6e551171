"""Jobs from Redis Streams: ``RedisStreamSource`` and the producer ``enqueue`` (needs the
``redis`` extra: ``pip install 'orchestrator[redis]'``)."""

try:
    import redis.asyncio  # noqa: F401
except ImportError as exc:  # pragma: no cover - only without the extra
    raise ImportError(
        "orchestrator.sources.redis needs redis-py: pip install 'orchestrator[redis]'"
    ) from exc

from orchestrator.sources.redis.source import RedisStreamSource
from orchestrator.sources.redis.wire import BadEntry, enqueue

__all__ = ["BadEntry", "RedisStreamSource", "enqueue"]

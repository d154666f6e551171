"""The wire format of a job entry, the dead-letter record, and the producer.

An entry has the fields ``kind`` (text) and ``payload`` (JSON text; absent means null).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

import orjson
import redis.asyncio as aredis

from orchestrator.clock import utc_iso
from orchestrator.errors import ConfigError, OrchestratorError

__all__ = ["BadEntry", "dead_letter_fields", "decode_entry", "default_consumer", "enqueue"]


class BadEntry(OrchestratorError):
    """An entry that cannot be a job: no kind, a kind that is not text, a payload that is
    not JSON. It goes to the dead-letter stream without running."""


def default_consumer() -> str:
    """``<host>-<pid>``: unique per process, and readable in ``XINFO CONSUMERS``."""
    return f"{socket.gethostname()}-{os.getpid()}"


def decode_entry(fields: Mapping[bytes, bytes]) -> tuple[str, Any]:
    """An entry's kind and payload.

    Raises:
        BadEntry: saying what is wrong with it.
    """
    raw_kind = fields.get(b"kind")
    if raw_kind is None:
        raise BadEntry("the entry has no kind field")
    try:
        kind = raw_kind.decode()
    except UnicodeDecodeError:
        raise BadEntry("the entry's kind is not UTF-8 text") from None
    raw = fields.get(b"payload")
    if raw is None:
        return kind, None
    try:
        return kind, orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadEntry(f"the entry's payload is not JSON: {exc}") from None


def dead_letter_fields(
    fields: Mapping[bytes, bytes], *, stream: str, entry_id: str, error: BaseException,
    attempts: int, deliveries: int, consumer: str, now: float,
) -> dict[str | bytes, str | bytes]:  # fmt: skip
    """The dead-letter record of an entry: its own fields, then why it failed, how often
    it was tried and delivered, by whom, when, and where it came from."""
    cause = error.__cause__ if error.__cause__ is not None else error
    record: dict[str | bytes, str | bytes] = {k: v for k, v in fields.items()}
    record.update({
        "error_type": type(cause).__name__,
        "error": (str(cause) or type(cause).__name__)[:1000],
        "attempts": str(attempts),
        "deliveries": str(deliveries),
        "consumer": consumer,
        "time": utc_iso(now),
        "stream": stream,
        "entry_id": entry_id,
    })  # fmt: skip
    return record


async def enqueue(client_or_url: aredis.Redis | str, stream: str, kind: str,
                  payload: Any = None) -> str:  # fmt: skip
    """Add a job to ``stream`` for a source to run: the new entry's id.

    Args:
        client_or_url: a ``redis.asyncio.Redis`` client, or a ``redis://`` URL (a client
            is made and closed for this one entry).
        stream: the stream's key.
        kind: the job kind.
        payload: anything JSON can carry (None: the entry has no payload field).

    Raises:
        ConfigError: on an empty kind, or a payload JSON cannot carry.
        redis.exceptions.ConnectionError: when the broker cannot be reached.
    """
    if not kind:
        raise ConfigError("kind must not be empty")
    fields: dict[str, str | bytes] = {"kind": kind}
    if payload is not None:
        try:
            fields["payload"] = orjson.dumps(payload)
        except TypeError as exc:
            raise ConfigError(f"payload is not JSON-serialisable: {exc}") from None
    if isinstance(client_or_url, str):
        client = aredis.Redis.from_url(client_or_url)
        try:
            entry_id = await client.xadd(stream, fields)  # type: ignore[arg-type]
        finally:
            await client.aclose()
    else:
        entry_id = await client_or_url.xadd(stream, fields)  # type: ignore[arg-type]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

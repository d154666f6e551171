"""``--source`` URLs: read into a broker URL and the source's options; bad ones are one
clear ``ConfigError``."""

from __future__ import annotations

import pytest

from orchestrator.errors import ConfigError
from orchestrator.sources.url import SourceUrl, parse_source_url


def test_a_full_url_is_read() -> None:
    """Stream, group, consumer, claim_idle and max_deliveries come from the query; the
    broker URL keeps host, port and database."""
    got = parse_source_url("redis://h:6380/2?stream=jobs&group=w&consumer=a&claim_idle=2.5"
                           "&max_deliveries=3")  # fmt: skip
    assert got == SourceUrl("redis://h:6380/2", "jobs", "w", "a", 2.5, 3)


def test_defaults() -> None:
    """Without them, the consumer is the default one, claim_idle 30 s, max_deliveries 5."""
    assert parse_source_url("redis://h/0?stream=s&group=g") == SourceUrl("redis://h/0", "s", "g")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h/0?stream=s&group=g", "must start with redis://"),
        ("h:6379", "must start with redis://"),
        ("redis://h/0?group=g", "missing stream="),
        ("redis://h/0?stream=s", "missing group="),
        ("redis://h/0?stream=s&group=g&colour=red", "unknown query key 'colour'"),
        ("redis://h/0?stream=s&stream=t&group=g", "stream must be given once"),
        ("redis://h/0?stream=s&group=g&claim_idle=soon", "claim_idle must be a number"),
        ("redis://h/0?stream=s&group=g&max_deliveries=0", "max_deliveries must be positive"),
        ("redis://h/0?stream=s&group=g&max_deliveries=2.5", "max_deliveries must be an integer"),
    ],
    ids=[
        "scheme",
        "no-scheme",
        "no-stream",
        "no-group",
        "unknown-key",
        "repeated",
        "not-number",
        "zero",
        "not-int",
    ],
)
def test_bad_urls_are_one_clear_error(url: str, message: str) -> None:
    """Each mistake names itself."""
    with pytest.raises(ConfigError, match=message):
        parse_source_url(url)

"""``orchestrator enqueue`` and the ``--source`` setting (``ORCHESTRATOR_SOURCE``)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from orchestrator import Application
from orchestrator.cli import build_parser, main, settings_from
from orchestrator.errors import ConfigError
from orchestrator.job import Job
from tests.sources.redis_server import RedisServer
from tests.sources.test_redis_delivery import when


def test_enqueue_adds_an_entry_and_prints_its_id(
    redis_server: RedisServer, stream_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The entry has the kind and the payload as JSON text; its id is printed."""
    code = main(["enqueue", "--url", redis_server.url, "--stream", stream_name, "resize",
                 '{"w": 10}'])  # fmt: skip
    entry_id = capsys.readouterr().out.strip()
    assert code == 0
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        assert client.xrange(stream_name) == [(entry_id, {"kind": "resize", "payload": '{"w":10}'})]
    finally:
        client.close()


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["k", "{bad"], 2, "payload is not JSON"),
        (["--url", "redis://127.0.0.1:1/0", "k"], 1, "could not add to s: ConnectionError"),
        (["--url", "nonsense://x", "k"], 2, "bad --url"),
    ],
    ids=["bad-json", "no-broker", "bad-url"],
)
def test_enqueue_errors_are_one_line(
    args: list[str], status: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad payload, an unreachable broker, a bad URL: one line on stderr, non-zero exit."""
    url = [] if "--url" in args else ["--url", "redis://127.0.0.1:1/0"]
    assert main(["enqueue", "--stream", "s", *url, *args]) == status
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert message in err


@pytest.mark.parametrize("where", ["flag", "environment"])
def test_a_bad_source_url_is_a_clear_error(where: str) -> None:
    """``--source`` or ``ORCHESTRATOR_SOURCE`` with a bad URL: a ConfigError naming it."""
    argv = ["run", "--source", "redis://h/0?stream=s"] if where == "flag" else ["run"]
    env = {"ORCHESTRATOR_SOURCE": "redis://h/0?stream=s"} if where == "environment" else {}
    with pytest.raises(ConfigError, match="missing group=") as caught:
        settings_from(build_parser().parse_args(argv), env)
    if where == "flag":
        assert str(caught.value).startswith("--source:")


def test_a_source_url_reaches_the_settings() -> None:
    """``--source`` is a setting like the others, with its source ``flag``."""
    url = "redis://h:6379/0?stream=jobs&group=workers"
    settings, _, sources = settings_from(build_parser().parse_args(["run", "--source", url]), {})
    assert (settings.source, sources["source"]) == (url, "flag")


async def test_an_application_with_a_source_setting_takes_jobs_from_it(
    redis_server: RedisServer, stream_name: str
) -> None:
    """``Application(source=URL)`` adds the Redis source the URL names, and runs its jobs."""
    from orchestrator.sources.redis import enqueue

    app = Application(workers=2, source=f"{redis_server.url}?stream={stream_name}&group=g"
                                        f"&claim_idle=5&consumer=me")  # fmt: skip
    got: list[Any] = []

    @app.handler("echo")
    async def echo(job: Job) -> None:
        got.append(job.payload)

    await enqueue(redis_server.url, stream_name, "echo", 7)
    async with app:
        await when(lambda: got == [7], "ran")
        (stats,) = app.get_stats()["sources"].values()
        assert (stats["consumer"], stats["group"]) == ("me", "g")
        assert app.health().components["sources"].healthy

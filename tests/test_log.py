"""Logging configuration and the buffered JSON line sink."""

from __future__ import annotations

import io

import orjson
import pytest
import structlog

from orchestrator.log import LineBuffer, configure_logging
from orchestrator.log_level import LEVEL
from tests.fakes import make_app


class Now:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_line_buffer_batches_until_size_or_age() -> None:
    """Lines wait until max_bytes are pending or the oldest is max_delay old; drain writes all."""
    raw, now = io.BytesIO(), Now()
    sink = LineBuffer(raw, max_bytes=20, max_delay=1.0, clock=now)
    sink.write(b"first\n")
    sink.flush()
    assert raw.getvalue() == b""
    now.t = 0.5
    sink.write(b"second\n")
    sink.flush()
    assert raw.getvalue() == b""
    now.t = 1.0
    sink.flush()
    assert raw.getvalue() == b"first\nsecond\n"
    sink.write(b"x" * 25)
    sink.flush()  # over max_bytes
    assert raw.getvalue().endswith(b"x" * 25)
    sink.write(b"tail\n")
    sink.drain()
    assert raw.getvalue().endswith(b"tail\n")


def test_line_buffer_survives_a_closed_stream() -> None:
    """Writing to a closed stream drops the lines instead of raising into the caller."""
    raw = io.BytesIO()
    sink = LineBuffer(raw)
    raw.close()
    sink.write(b"lost\n")
    sink.drain()


def test_json_lines_with_request_context() -> None:
    """JSON format writes one orjson line per event, with bound context and ISO timestamps."""
    out = io.TextIOWrapper(io.BytesIO(), write_through=True)
    sink = configure_logging("json", "info", stream=out, buffered=True)
    assert sink is not None
    structlog.contextvars.bind_contextvars(request_id="rid-1")
    try:
        structlog.get_logger("t").info("something_happened", n=1)
        structlog.get_logger("t").debug("filtered_out")
    finally:
        structlog.contextvars.clear_contextvars()
    sink.drain()
    lines = out.buffer.getvalue().splitlines()
    assert len(lines) == 1
    event = orjson.loads(lines[0])
    assert event["event"] == "something_happened"
    assert event["request_id"] == "rid-1"
    assert event["level"] == "info"
    assert event["timestamp"].endswith("Z")


def test_bad_level_rejected() -> None:
    """An unknown level is a ValueError."""
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("json", "loud")


async def test_the_level_changes_while_running() -> None:
    """After configure_logging(level=info), a change to debug writes debug lines at once, and
    its revert stops them again."""
    out = io.TextIOWrapper(io.BytesIO(), write_through=True)
    configure_logging("json", "info", out)
    logger = structlog.get_logger("test.level")
    logger.debug("before")
    LEVEL.change("debug", 60)
    logger.debug("during")
    LEVEL.revert()
    logger.debug("after")
    lines = [orjson.loads(line) for line in out.buffer.getvalue().splitlines()]
    events = [line["event"] for line in lines]
    assert "before" not in events
    assert "during" in events
    assert "after" not in events
    assert events.count("log_level_changed") == 1
    assert events.count("log_level_reverted") == 1
    (changed,) = [line for line in lines if line["event"] == "log_level_changed"]
    assert (changed["level"], changed["to"], changed["previous"]) == ("warning", "debug", "info")


def test_console_tracebacks_never_show_local_variables() -> None:
    """Console format prints a plain traceback: no frame's locals (a token, say), even with
    rich installed (structlog's default would print them)."""
    out = io.StringIO()
    configure_logging("console", "info", stream=out)
    secret = "console-canary-3c9e1d"
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        structlog.get_logger("t").exception("it_failed", n=len(secret))
    text = out.getvalue()
    assert "it_failed" in text
    assert "Traceback (most recent call last):" in text
    assert "RuntimeError: boom" in text
    assert secret not in text


def test_level_names_are_read_in_any_case() -> None:
    """configure_logging("DEBUG") is debug, as in Python's logging; unknown names raise."""
    configure_logging("json", "DEBUG", stream=io.TextIOWrapper(io.BytesIO()))
    assert LEVEL.name() == "debug"
    with pytest.raises(ValueError, match="unknown log level 'verbose'"):
        configure_logging("json", "verbose")


async def test_a_program_that_configured_nothing_logs_at_info(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Application.start() in a program that configured nothing sets up logging with its
    defaults: info lines (no debug ones), JSON on a stream that is no terminal."""
    app = make_app()
    await app.start()
    await app.stop(timeout=1.0)
    assert structlog.is_configured()
    assert LEVEL.configured
    events = [orjson.loads(line)["event"] for line in capsys.readouterr().err.splitlines()]
    assert "application_started" in events  # info
    assert "component_started" not in events  # debug


async def test_a_program_that_configured_structlog_keeps_its_configuration() -> None:
    """A program's own structlog configuration is left as it is."""
    processors = [structlog.processors.JSONRenderer()]
    structlog.configure(processors=processors)
    app = make_app()
    await app.start()
    await app.stop(timeout=1.0)
    assert structlog.get_config()["processors"] == processors
    assert not LEVEL.configured

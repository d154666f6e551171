"""``orchestrator wait`` against real instances on 127.0.0.1: one started after the command,
one that never becomes ready; its backoff on an injected clock."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
import structlog

from orchestrator.cli import build_parser
from orchestrator.terminal.wait import MAX_DELAY, run_wait
from tests.terminal.conftest import TOKEN, Cli, start_instance


async def test_waits_for_an_instance_started_after_the_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Refused connections first (the port is bound, not listening), then the instance
    starts on that port: exit 0 once /ready answers 200."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        args = build_parser().parse_args(["wait", "--url", url, "--timeout", "30"])
        refused = threading.Event()
        delays: list[float] = []

        def sleep(seconds: float) -> None:  # the command's own backoff, observed
            delays.append(seconds)
            refused.set()
            time.sleep(seconds)  # sleep-ok: the command's own backoff, done for real

        waiting = asyncio.create_task(asyncio.to_thread(run_wait, args, {}, sleep=sleep))
        assert await asyncio.to_thread(refused.wait, 10)
    with structlog.testing.capture_logs():  # the instance's log lines stay off stdout
        app = await start_instance(http_port=port)  # the port was held until now
        try:
            code = await asyncio.wait_for(waiting, 30)
        finally:
            await app.stop(timeout=2.0)
    assert code == 0
    out, err = capsys.readouterr()
    assert out == f"orchestrator: {url} is ready\n"
    assert err == ""
    assert delays[0] == pytest.approx(0.1)


async def test_never_ready_exits_1_with_the_last_reason(
    cli: Cli, clean_env: pytest.MonkeyPatch
) -> None:
    """/ready 503 (a stopped recycler) until the timeout: exit 1, the reason in one line
    (shown whole with the token)."""
    clean_env.setenv("ORCHESTRATOR_HTTP_TOKEN", TOKEN)
    app = await start_instance()
    url = app.http_url
    try:
        await app.recycler.stop()
        ran = await cli("wait", "--url", url, "--timeout", "0.5")
        live = await cli("wait", "--url", url, "--for", "live", "--timeout", "5")
        healthy = await cli("wait", "--url", url, "--for", "healthy", "--timeout", "0.3")
    finally:
        await app.stop(timeout=2.0)
    assert ran.code == 1, ran
    assert ran.out == ""
    reason = "unhealthy: recycler: recycler sweep loop is not running"
    assert ran.err == f"orchestrator: error: {url} not ready after 0.5 s; last: /ready " \
        f"answered 503 {reason}\n"  # fmt: skip
    assert live.code == 0, live
    assert live.out == f"orchestrator: {url} is live\n"
    assert healthy.code == 1, healthy
    assert healthy.err.endswith("last: /health answered 503 unhealthy: recycler\n")


def test_backoff_grows_to_its_ceiling_and_stops_at_the_timeout(
    closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """On an injected clock: 0.1 s, growing by half, at most 2 s, never past the timeout."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        now[0] += seconds

    delays: list[float] = []
    url = f"http://127.0.0.1:{closed_port}"
    args = build_parser().parse_args(["wait", "--url", url, "--timeout", "10"])
    assert run_wait(args, {}, clock=lambda: now[0], sleep=sleep) == 1
    assert delays[:3] == pytest.approx([0.1, 0.15, 0.225])
    assert max(delays) == MAX_DELAY
    assert delays[:-1] == sorted(delays[:-1])  # the last one is cut to the timeout
    assert sum(delays) == pytest.approx(10)
    err = capsys.readouterr().err
    assert err == (f"orchestrator: error: {url} not ready after 10 s; last: connection refused "
                   f"by {url} (is the instance running?)\n")  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--timeout", "0"], "argument --timeout: must be a number of seconds above 0: '0'"),
        (["--timeout", "nan"], "argument --timeout: must be a number of seconds above 0"),
        (["--for", "started"], "argument --for: invalid choice: 'started'"),
        (["--url", "localhost:8080"], "--url must look like http://HOST:PORT"),
    ],
)
async def test_usage_errors_exit_2(argv: list[str], expected: str, cli: Cli) -> None:
    ran = await cli("wait", *argv)
    assert ran.code == 2, ran
    assert len(ran.err.splitlines()) == 1
    assert expected in ran.err

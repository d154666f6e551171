"""`orchestrator run` as a user meets it: bind failures, output order, IPv6, signals, overload."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator

import aiohttp
import orjson
import pytest

from tests.fakes import reaped
from tests.test_cli import COMMAND, clean_env, summary_of


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port held by a real listening socket."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("host", "message"),
    [("127.0.0.1", "EADDRINUSE: address already in use"), ("host.invalid", "cannot resolve")],
    ids=["port-in-use", "unresolvable-host"],
)
def test_http_that_cannot_serve_stops_the_command(held_port: int, host: str, message: str) -> None:
    """HTTP is required by the command: a failed bind is one error line and exit 1."""
    proc = subprocess.run(
        [*COMMAND, "run", "--http-host", host, "--http-port", str(held_port),
         "--log-format", "json"],
        capture_output=True, text=True, timeout=30, env=clean_env(), check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stdout == ""
    *logs, last = proc.stderr.splitlines()
    assert last.startswith("orchestrator: error: cannot serve HTTP on ")
    assert message in last
    assert "--http-port" in last
    assert all(orjson.loads(line)["event"] for line in logs)  # the rest are JSON log lines
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_http_optional_by_environment(held_port: int) -> None:
    """ORCHESTRATOR_HTTP_REQUIRED=false runs on without HTTP when the port is taken."""
    proc = subprocess.run(
        [*COMMAND, "run", "--http-port", str(held_port), "--duration", "0.2", "--rate", "10"],
        capture_output=True, text=True, timeout=30, check=False,
        env=clean_env(ORCHESTRATOR_HTTP_REQUIRED="false"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary_of(proc.stdout)


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_a_json_run_in_order_on_ipv6_with_a_ctrl_c_hint() -> None:
    """One run with stdout and stderr merged, as a terminal or a CI log shows them.

    - ``--http-host ::`` prints a bracketed URL that works (``http://[::1]:PORT``);
    - the URL lines come after the start-up logs, the summary after the shutdown logs;
    - an unknown ``ORCHESTRATOR_*`` variable is named once, without its value;
    - the first SIGINT says that a second one stops at once.
    """
    proc = await asyncio.create_subprocess_exec(
        *COMMAND, "run", "--http-host", "::", "--rate", "20", "--log-format", "json",
        env=clean_env(ORCHESTRATOR_WOKERS="hunter2"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    async with reaped(proc):
        async with asyncio.timeout(30):
            while not lines or "HTTP API on" not in lines[-1]:
                line = (await proc.stdout.readline()).decode()
                assert line, "\n".join(lines)
                lines.append(line.rstrip("\n"))
        url = re.search(r"HTTP API on (http://\S+):", lines[-1])
        assert url is not None
        assert re.fullmatch(r"http://\[::1\]:\d+", url.group(1))
        async with aiohttp.ClientSession() as session, session.get(url.group(1) + "/live") as r:
            assert r.status == 200
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            rest, _ = await proc.communicate()
    assert proc.returncode == 0
    lines += rest.decode().splitlines()
    assert "hunter2" not in "\n".join(lines)
    events = [orjson.loads(line) if line.startswith("{") else {"event": line} for line in lines]
    names = [e["event"] for e in events]
    url_at = next(i for i, n in enumerate(names) if n.startswith("orchestrator: HTTP API on"))
    assert names.index("application_started") < url_at
    assert names.index("http_server_started") < url_at
    assert names[-1].startswith("orchestrator: ")
    assert " jobs done, " in names[-1]
    assert names.index("application_stopped") < len(names) - 1
    (unknown,) = [e for e in events if e["event"] == "environment_unknown"]
    assert unknown["variables"] == ["ORCHESTRATOR_WOKERS"]
    assert unknown["level"] == "warning"
    (requested,) = [e for e in events if e["event"] == "shutdown_requested"]
    assert requested["signal"] == "SIGINT"
    assert "again" in requested["detail"]


@pytest.mark.slow
async def test_an_impossible_rate_is_paced_and_bounded() -> None:
    """`--rate 1000000 --duration 1` keeps time and memory: the run, as it times itself
    from start to stopped, lasts under 5 s (1 s of load, then the stop); RSS < 200 MB.

    The generator cannot submit a million jobs a second; it submits one per loop turn,
    never catches up in a burst, and sheds what is beyond its bound on outstanding jobs.
    The interpreter's start and exit are left out of the time (on a starved machine they
    took seconds of wall time); the process only has a deadline against a hang.
    """
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *COMMAND, "run", "--rate", "1000000", "--duration", "1", "--log-format", "json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=clean_env(),
    )  # fmt: skip
    peak_kb = 0
    async with reaped(proc):
        while proc.returncode is None and time.monotonic() - started < 60:
            peak_kb = max(peak_kb, _peak_rss_kb(proc.pid))
            await asyncio.sleep(0.05)  # sleep-ok: polling a real process, bounded by the deadline
        async with asyncio.timeout(60):
            out, _ = await proc.communicate()
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, out
    assert 0 < peak_kb < 200 * 1024, peak_kb
    summary = summary_of(out.decode())
    assert float(summary["seconds"]) < 5.0, summary.group(0)
    assert int(summary["shed"]) + int(summary["done"]) > 0
    print(f"elapsed={elapsed:.2f}s peak_rss={peak_kb / 1024:.0f}MB {summary.group(0)}")


def _peak_rss_kb(pid: int) -> int:
    """The process's peak resident set since it started the program (``VmHWM``), or 0.

    Unlike ``ru_maxrss``, ``VmHWM`` starts afresh at ``exec``, so the parent's memory,
    shared for an instant after ``fork``, does not count.
    """
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0

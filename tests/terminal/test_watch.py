"""``orchestrator status --watch`` in a real terminal: tmux runs the command, the test reads
the screen with ``capture-pane``, types Ctrl-C with ``send-keys`` and reads the exit status."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from orchestrator import Application
from tests.fakes import poll_process
from tests.ops.deploy_files import require_binary
from tests.terminal.conftest import JOBS, RECYCLER_ROW, TOKEN, drain

pytestmark = pytest.mark.slow

DEADLINE = 20.0
"""Seconds a screen gets to show what the test waits for (a real process is involved)."""

Tmux = Callable[..., Awaitable[str]]


@pytest.fixture
async def tmux(tmp_path: Path) -> AsyncIterator[Tmux]:
    """``await tmux(*args)``: a command to a tmux server of this test's own (its own socket,
    no user configuration)."""
    binary = require_binary("tmux")
    base = [binary, "-S", str(tmp_path / "tmux.sock"), "-f", os.devnull]

    async def run(*args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            *base, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 10)
        assert proc.returncode == 0, err.decode()
        return out.decode()

    try:
        yield run
    finally:
        kill = await asyncio.create_subprocess_exec(*base, "kill-server",
                                                    stderr=asyncio.subprocess.DEVNULL)  # fmt: skip
        await kill.wait()


async def screen_until(tmux: Tmux, check: Callable[[str], bool], what: str) -> str:
    """The pane's screen once ``check`` holds for it; fails after ``DEADLINE`` seconds."""
    screen = ""

    async def shown() -> str | None:
        nonlocal screen
        screen = await tmux("capture-pane", "-p", "-t", "watch")
        return screen if check(screen) else None

    try:
        return await poll_process(shown, seconds=DEADLINE, what=f"the screen showing {what}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}:\n{screen}") from None


def done(screen: str) -> int | None:
    """The ``done`` column of the ``echo`` row, when the row is on the screen."""
    for line in screen.splitlines():
        if line.startswith("  echo "):
            return int(line.split()[2].replace(",", ""))
    return None


async def status_in_pane(tmux: Tmux, app: Application, status_file: Path, *argv: str,
                         columns: int = 100) -> None:  # fmt: skip
    """``orchestrator status --url URL ARGV`` against ``app`` in a new pane ``columns`` wide,
    40 high, with the token in its environment; the pane stays open after the command,
    whose exit status lands in ``status_file``."""
    url = app.http_url
    assert url is not None
    # bash waits for the command through Ctrl-C (it dies of SIGINT only when the command
    # did), then writes the command's exit status; cat then keeps the pane on the screen
    status = shlex.join([sys.executable, "-m", "orchestrator", "status", "--url", url, *argv])
    wrapper = f"{status}; echo $? > {shlex.quote(str(status_file))}; exec cat"
    await tmux("new-session", "-d", "-s", "watch", "-x", str(columns), "-y", "40",
               "-e", f"ORCHESTRATOR_HTTP_TOKEN={TOKEN}", "-e", "TERM=xterm-256color",
               shlex.join(["bash", "-c", wrapper]))  # fmt: skip


async def test_watch_redraws_in_place_and_ctrl_c_exits_0(
    instance: Application, tmux: Tmux, tmp_path: Path
) -> None:
    url = instance.http_url
    header = f"orchestrator 0.1.0 at {url} · running · up "
    status_file = tmp_path / "exit-status"
    await status_in_pane(tmux, instance, status_file, "--watch", "0.2")
    first = await screen_until(tmux, lambda s: done(s) == JOBS, f"{JOBS} echo jobs done")
    assert first.splitlines()[0].startswith(header)
    assert "Ctrl-C quits" in first
    assert TOKEN not in first
    for n in range(2):
        assert await instance.submit("echo", n) == n
    later = await screen_until(tmux, lambda s: done(s) == JOBS + 2, "the two new jobs")
    assert later.splitlines()[0].startswith(header)
    assert later.count(header) == 1  # redrawn in place, not appended below
    await tmux("send-keys", "-t", "watch", "C-c")
    assert await exit_status(status_file) == "0"


async def exit_status(path: Path) -> str:
    """What the wrapper wrote in ``path`` once the command exited."""

    async def written() -> str | None:
        text = await asyncio.to_thread(lambda: path.read_text() if path.exists() else "")
        return text.strip() if text.endswith("\n") else None

    return await poll_process(written, seconds=DEADLINE, what="the command's exit status "
                              "(it did not exit, or died of a signal)")  # fmt: skip


@pytest.mark.parametrize("argv", [[], ["--watch", "0.2"]], ids=["once", "watch"])
async def test_80_columns_draining_and_unhealthy_keeps_each_line_whole(
    instance: Application, tmux: Tmux, tmp_path: Path, argv: list[str]
) -> None:
    """In a terminal 80 columns wide, an instance drained by an operator, with a stopped
    recycler: the header is one line ending in 'not ready', the DRAINING line follows, and
    the recycler's row (for how long, why) is one line, directly followed by the next."""
    await drain(instance)
    await instance.recycler.stop()
    url = instance.http_url
    status_file = tmp_path / "exit-status"
    await status_in_pane(tmux, instance, status_file, *argv, columns=80)
    screen = await screen_until(tmux, lambda s: "  lifecycle " in s and "HTTP " in s,
                                "the whole summary")  # fmt: skip
    lines = screen.splitlines()
    assert lines[0].startswith(f"orchestrator 0.1.0 at {url} · running · up "), screen
    assert lines[0].endswith(" · not ready"), screen
    assert lines[1] == "DRAINING: drained by an operator; /ready answers 503", screen
    row = next(i for i, line in enumerate(lines) if line.startswith("  recycler "))
    assert RECYCLER_ROW.fullmatch(lines[row].rstrip()), screen
    assert lines[row + 1].startswith("Jobs "), screen
    if argv:
        await tmux("send-keys", "-t", "watch", "C-c")
    assert await exit_status(status_file) == ("0" if argv else "1")

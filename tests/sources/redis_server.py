"""A real ``redis-server`` on a free port in a temporary folder, for the source's tests.

The tests that need one fail when ``redis-server`` is missing (CI installs Debian's
package); ``ORCHESTRATOR_SKIP_REDIS=1`` turns that into a skip, for a machine without it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

__all__ = ["RedisServer", "redis_binary"]

SKIP_VARIABLE = "ORCHESTRATOR_SKIP_REDIS"


def redis_binary() -> str:
    """The path of ``redis-server``; a failure (or a skip when opted out) without it."""
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if found is None:
        if os.environ.get(SKIP_VARIABLE) == "1":
            pytest.skip(f"redis-server is not installed ({SKIP_VARIABLE}=1)")
        pytest.fail(f"redis-server is not installed (apt-get install redis-server, or set "
                    f"{SKIP_VARIABLE}=1 to skip these tests)")  # fmt: skip
    return found


def free_port() -> int:
    """A TCP port free on 127.0.0.1 a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process: ``start()``, ``stop()`` (SIGTERM, or SIGKILL with
    ``kill=True``), and ``start()`` again on the same port and folder (an outage).

    Args:
        folder: its working directory (the append-only file lives there).
        appendonly: whether every write goes to the append-only file first.
    """

    def __init__(self, folder: Path, *, appendonly: bool = False) -> None:
        self.folder = folder
        self.appendonly = appendonly
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, seconds: float = 10.0) -> None:
        """Start the server and wait until it answers ``PING``.

        Raises:
            AssertionError: when it exits or does not answer within ``seconds``.
        """
        command = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                   "--dir", str(self.folder), "--save", "",
                   "--appendonly", "yes" if self.appendonly else "no"]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + seconds
        while not self._answers():
            if self.process.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.process.returncode}")
            if time.monotonic() >= deadline:
                raise AssertionError(f"redis-server did not answer within {seconds:g} s")
            time.sleep(0.02)  # sleep-ok: polling a real process, bounded by the deadline

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server (idempotent) and wait for it to exit."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        if kill:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

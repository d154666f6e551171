"""`orchestrator run TARGET` as a user meets it: the example worker module served, settings
over it, and one-line errors (a traceback only for the module's own exception)."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.fakes import reaped
from tests.test_cli import COMMAND, clean_env

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
TOKEN = "target-test-token"
TARGET_SUMMARY = re.compile(r"^orchestrator: (\d+) jobs done, (\d+) failed in \d+\.\ds$")


def run_target(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``orchestrator run ARGS`` to completion (30 s at most) from ``cwd``."""
    return subprocess.run([*COMMAND, "run", *args], capture_output=True, text=True,
                          timeout=30, env=clean_env(), check=False, cwd=cwd)  # fmt: skip


@pytest.mark.slow
async def test_the_example_worker_serves_its_kinds_and_stops_on_sigterm(tmp_path: Path) -> None:
    """`run --app-dir docs/examples worker:app --workers 3`: ready, its two kinds in
    /stats, the flag over the module's ``workers=8`` and the module's name in
    /debug/config with their sources; SIGTERM ends it with exit 0 and a summary. It runs
    from another folder: ``--app-dir`` is where the module is found."""
    proc = await asyncio.create_subprocess_exec(
        *COMMAND, "run", "--app-dir", str(EXAMPLES), "worker:app", "--workers", "3",
        "--log-format", "json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=clean_env(ORCHESTRATOR_HTTP_TOKEN=TOKEN), cwd=tmp_path,
    )  # fmt: skip
    assert proc.stdout is not None
    async with reaped(proc):
        async with asyncio.timeout(30):
            first = (await proc.stdout.readline()).decode()
        url = re.search(r"HTTP API on (http://\S+):", first)
        assert url is not None, first
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(url.group(1), headers=headers) as http:
            async with http.get("/ready") as ready:
                assert ready.status == 200
            stats: dict[str, Any] = await (await http.get("/stats")).json()
            config: dict[str, Any] = await (await http.get("/debug/config")).json()
        assert set(stats["registry"]["kinds"]) == {"fetch", "notify"}
        assert stats["application"]["name"] == "example-worker"
        assert config["core"]["workers"] == {"value": 3, "source": "flag"}
        assert config["core"]["name"] == {"value": "example-worker", "source": "module"}
        assert config["http"]["enable_http"]["source"] == "command"
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            rest, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    assert TARGET_SUMMARY.match(rest.decode().strip().splitlines()[-1]), rest
    events = [orjson.loads(line)["event"] for line in stderr.splitlines()]
    assert "application_stopped" in events


@pytest.mark.slow
@pytest.mark.parametrize(
    ("module", "target", "message"),
    [
        ("", "absent:app", "TARGET absent:app: no module named 'absent' in "),
        ("from orchestrator import Application\napp = Application()\n", "tasks:ap",
         "TARGET tasks:ap: module 'tasks' has no attribute 'ap' (its applications: app)"),
        ("app = 'not one'\n", "tasks:app", "app is an object of type str, not an Application"),
        ("def app():\n    return 3\n", "tasks:app", "app() returned an object of type int"),
        ("", "tasks", "TARGET must be MODULE:ATTRIBUTE"),
    ],
    ids=["no-module", "no-attribute", "not-an-application", "factory-returns-other",
         "no-colon"],
)  # fmt: skip
def test_a_target_naming_no_application_exits_2_with_one_line(
    tmp_path: Path, module: str, target: str, message: str
) -> None:
    """No module, no attribute, not an Application: one error line, exit 2, no traceback;
    the current folder is where the module is looked for by default."""
    (tmp_path / "tasks.py").write_text(module)
    proc = run_target([target, "--log-format", "json"], cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith("orchestrator: error: ")
    assert message in line


@pytest.mark.slow
def test_a_module_that_raises_shows_its_traceback_then_one_line(tmp_path: Path) -> None:
    """An exception raised while the module imports: its traceback, from the user's file,
    then one error line; exit 1."""
    (tmp_path / "tasks.py").write_text("import os\n\nURL = os.environ['NO_SUCH_VARIABLE']\n")
    proc = run_target(["tasks:app", "--log-format", "json"], cwd=tmp_path)
    assert proc.returncode == 1
    *trace, last = proc.stderr.splitlines()
    assert trace[0] == "Traceback (most recent call last):"
    assert f'File "{tmp_path / "tasks.py"}", line 3, in <module>' in trace[1]
    assert trace[-1] == "KeyError: 'NO_SUCH_VARIABLE'"
    assert "importlib" not in proc.stderr
    assert last == (
        "orchestrator: error: TARGET tasks:app: importing tasks raised (traceback above)"
    )


def test_rate_is_for_the_demo_only(tmp_path: Path) -> None:
    """``--rate`` with a TARGET is a usage error, before anything is imported."""
    (tmp_path / "tasks.py").write_text("raise SystemExit('imported')\n")
    proc = run_target(["tasks:app", "--rate", "5"], cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "orchestrator: error: --rate drives the demo's jobs; it does not apply to a TARGET"
    ]

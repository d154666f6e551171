"""The ``orchestrator`` command: a real run, bad flags, and a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from orchestrator import Application
from orchestrator.cli import FLAGS, build_parser, settings_from
from orchestrator.introspection import SECRETS
from tests.fakes import reaped

SUMMARY = re.compile(
    r"^orchestrator: (?P<done>\d+) jobs done, \d+ failed, \d+ rejected, (?P<shed>\d+) shed, "
    r"\d+ refused at shutdown in (?P<seconds>\d+\.\d)s$"
)
COMMAND = [sys.executable, "-m", "orchestrator"]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without ORCHESTRATOR_* variables, HTTP on a free loopback port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    env.update(ORCHESTRATOR_HTTP_HOST="127.0.0.1", ORCHESTRATOR_HTTP_PORT="0",
               ORCHESTRATOR_HTTP_DRAIN_DELAY="0")  # fmt: skip
    env.update(extra)
    return env


def json_lines(stderr: str) -> list[dict[str, Any]]:
    """Every stderr line parsed as JSON (fails on a line that is not)."""
    return [orjson.loads(line) for line in stderr.splitlines() if line.strip()]


def summary_of(stdout: str) -> re.Match[str]:
    """The summary line, which is the last line on stdout."""
    match = SUMMARY.match(stdout.strip().splitlines()[-1])
    assert match is not None, stdout
    return match


@pytest.mark.slow
def test_a_timed_run_exits_zero_with_a_summary_and_json_logs() -> None:
    """`run --duration 1` runs jobs, exits 0, prints the summary and logs JSON lines."""
    proc = subprocess.run(
        [*COMMAND, "run", "--duration", "1", "--rate", "20", "--log-format", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert int(summary_of(proc.stdout)["done"]) > 0
    lines = json_lines(proc.stderr)
    assert all({"event", "level", "timestamp"} <= set(line) for line in lines)
    events = [line["event"] for line in lines]
    assert "application_started" in events
    assert events[-1] == "application_stopped" or "application_stopped" in events
    (requested,) = [line for line in lines if line["event"] == "shutdown_requested"]
    assert requested["reason"] == "duration"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["run", "--workers", "-1"], {}, "--workers: workers must be an integer >= 1"),
        (["run", "--bogus"], {}, "unrecognized option --bogus; see --help"),
        (["run"], {"ORCHESTRATOR_WORKERS": "abc"}, "ORCHESTRATOR_WORKERS: cannot parse 'abc'"),
        (["run"], {"ORCHESTRATOR_WORKERS": "0"}, "ORCHESTRATOR_WORKERS: workers must be"),
        (["run"], {"ORCHESTRATOR_HTTP_PORT": "70000"}, "ORCHESTRATOR_HTTP_PORT: http_port must"),
        (["run", "--rate", "-5"], {}, "must be >= 0"),
        (["run", "--rate", "inf"], {}, "must be a finite rate"),
        (["run", "--duration", "nan"], {}, "must be a finite number of seconds"),
        (["run", "--token-file", "/nonexistent/t"], {}, "token file '/nonexistent/t' does not"),
    ],
    ids=["negative-workers", "unknown-flag", "bad-env", "env-out-of-range", "env-port",
         "negative-rate", "infinite-rate", "nan-duration", "missing-token-file"],
)  # fmt: skip
def test_bad_flags_exit_2_with_a_one_line_error(
    args: list[str], env: dict[str, str], message: str
) -> None:
    """Invalid flags or environment exit with status 2 and one error line on stderr."""
    proc = run_cli(args, env)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert re.match(r"orchestrator( run)?: error: ", lines[0])
    assert message in lines[0]


SECRET = "sekrit-7f3a9c"


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--token", SECRET],
        ["run", f"--token={SECRET}"],
        ["run", "--tok", SECRET],
        ["run", "--workers", "2", f"--{SECRET}"],
        ["run", SECRET],
    ],
    ids=["token-space", "token-equals", "abbreviation", "secret-as-option", "positional"],
)
def test_unknown_arguments_never_echo_a_value(args: list[str]) -> None:
    """An unknown option is not an abbreviation, and its value is never printed back."""
    proc = run_cli(args, {})
    assert proc.returncode == 2
    assert SECRET not in proc.stdout + proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("orchestrator: error: ")
    if any("tok" in a for a in args):
        assert "ORCHESTRATOR_HTTP_TOKEN or --token-file" in line


def test_a_bare_command_prints_the_usage() -> None:
    """`orchestrator` alone prints the usage and the commands, and exits 2."""
    proc = run_cli([], {})
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: orchestrator")
    assert "run" in proc.stderr


def test_help_names_variables_defaults_and_the_token_source() -> None:
    """`run --help` gives each setting's default and variable, and where tokens come from."""
    proc = run_cli(["run", "--help"], {})
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())  # argparse wraps lines
    for fragment in ("default 4; ORCHESTRATOR_WORKERS", "default 1024; ORCHESTRATOR_QUEUE_SIZE",
                     "default 8080; ORCHESTRATOR_HTTP_PORT", "ORCHESTRATOR_HTTP_TOKEN",
                     "--log-format {json,console,auto} json lines",
                     "--log-level {debug,info,warning,error} lowest level logged"):  # fmt: skip
        assert fragment in text


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the command to completion (30 s at most) with a clean environment plus ``env``."""
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=30,
                          env=clean_env(**env), check=False)  # fmt: skip


def test_version_flag() -> None:
    """`--version` prints the version and exits 0."""
    proc = subprocess.run([*COMMAND, "--version"], capture_output=True, text=True, timeout=30,
                          env=clean_env(), check=False)  # fmt: skip
    assert proc.returncode == 0
    assert re.fullmatch(r"orchestrator \d+\.\d+\.\d+\n", proc.stdout)


@pytest.mark.slow
async def test_sigterm_stops_a_running_command_cleanly() -> None:
    """SIGTERM to a running `orchestrator run` drains, prints the summary and exits 0."""
    proc = await asyncio.create_subprocess_exec(
        *COMMAND, "run", "--rate", "50", "--log-format", "json",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stderr is not None
    seen: list[bytes] = []
    async with reaped(proc):
        async with asyncio.timeout(20):
            while not any(b'"application_started"' in line for line in seen):
                line = await proc.stderr.readline()
                assert line, b"".join(seen).decode()  # EOF before the start event
                seen.append(line)
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            stdout, stderr = await proc.communicate()
    assert proc.returncode == 0, (b"".join(seen) + stderr).decode()
    summary_of(stdout.decode())
    lines = json_lines((b"".join(seen) + stderr).decode())
    (requested,) = [line for line in lines if line["event"] == "shutdown_requested"]
    assert requested["reason"] == "signal"
    assert "application_stopped" in [line["event"] for line in lines]


@pytest.mark.parametrize(
    ("argv", "environ", "workers", "queue_size"),
    [
        (["run"], {}, 4, 1024),
        (["run"], {"ORCHESTRATOR_WORKERS": "3"}, 3, 1024),
        (["run", "--workers", "5"], {"ORCHESTRATOR_WORKERS": "3"}, 5, 1024),
        (["run", "--queue-size", "8"], {"ORCHESTRATOR_QUEUE_SIZE": "9"}, 4, 8),
    ],
    ids=["defaults", "env", "flag-over-env", "queue-flag"],
)
def test_settings_from_flags_over_environment(
    argv: list[str], environ: dict[str, str], workers: int, queue_size: int
) -> None:
    """Flags win over ORCHESTRATOR_* variables, which win over defaults."""
    args = build_parser().parse_args(argv)
    core = settings_from(args, environ)[0]
    assert (core.workers, core.queue_size) == (workers, queue_size)


def test_sources_say_flag_environment_file_command_or_default(tmp_path: Path) -> None:
    """/debug/config of the command's application names where each setting came from."""
    token = tmp_path / "token"
    token.write_text("a-secret-token\n")
    token.chmod(0o600)
    args = build_parser().parse_args(["run", "--workers", "5", "--token-file", str(token)])
    environ = {"ORCHESTRATOR_WORKERS": "3", "ORCHESTRATOR_QUEUE_SIZE": "9"}
    core, http, sources_given = settings_from(args, environ)
    app = Application(core, http=http, sources=sources_given)
    config = app.debug_config()
    sources = {name: entry["source"] for name, entry in config["core"].items()}
    sources.update({name: entry["source"] for name, entry in config["http"].items()})
    assert sources["workers"] == "flag"
    assert sources["queue_size"] == "environment"
    assert sources["http_token"] == "file"
    assert config["http"]["http_token"]["value"] == {"count": 1}
    assert (sources["enable_http"], sources["http_required"]) == ("command", "command")
    assert sources["drain_delay"] == "command"
    assert sources["pool_max_size"] == "default"


def test_no_secret_is_a_flag() -> None:
    """The flag table has no secret: a token never comes from the command line."""
    assert {flag.setting for flag in FLAGS} & SECRETS == set()

"""``orchestrator status`` against a real instance on 127.0.0.1: what it prints, its exit
status, and its one-line errors."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from orchestrator import Application
from orchestrator.terminal.remote import Remote, Unreachable
from tests.http.helpers import served
from tests.terminal.conftest import (
    JOBS,
    RECYCLER_ROW,
    TOKEN,
    WORKERS,
    Cli,
    Ran,
    drain,
    start_instance,
)

COMPONENTS = ("registry", "pool", "router", "workers", "lifecycle", "recycler")


def one_error_line(ran: Ran, code: int) -> str:
    """The run failed with ``code`` and one line on stderr, no traceback, nothing on stdout."""
    assert ran.code == code, ran
    assert ran.out == ""
    lines = ran.err.splitlines()
    assert len(lines) == 1, ran.err
    assert lines[0].startswith("orchestrator: error: ")
    assert "Traceback" not in ran.err
    return lines[0]


@pytest.fixture
def token_env(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ORCHESTRATOR_HTTP_TOKEN", TOKEN)


@pytest.mark.usefixtures("token_env")
async def test_healthy_instance_summary_exit_0(instance: Application, cli: Cli) -> None:
    """Every part in a compact summary; the token nowhere; exit 0."""
    url = instance.http_url
    ran = await cli("status", "--url", url)
    assert ran.code == 0, ran
    assert ran.err == ""
    lines = ran.out.splitlines()
    assert len(lines) <= 40
    assert lines[0].startswith(f"orchestrator 0.1.0 at {url} · running · up ")
    assert lines[0].endswith(" · ready")
    assert lines[1] == "Health   healthy"
    for name in COMPONENTS:
        assert f"  {name:<10} healthy" in ran.out
    echo = next(line.split() for line in lines if line.startswith("  echo "))
    assert echo[1] == "0.0"  # no job between the two snapshots
    assert echo[2:6] == [str(JOBS), "0", "0", "0"]  # done, failed, timed out, refused
    assert echo[7] == "ms" or echo[7] == "s"  # p50 in human units
    assert any(line.startswith("Queue    0 of 1,024 (0%) · routed 3") for line in lines)
    assert any(line.startswith(f"Workers  {WORKERS} of {WORKERS} alive") for line in lines)
    assert any(line.startswith("HTTP     2xx ") for line in lines)
    assert "DRAINING" not in ran.out
    assert TOKEN not in ran.out


@pytest.mark.usefixtures("token_env")
async def test_unhealthy_instance_reasons_exit_1(instance: Application, cli: Cli) -> None:
    """A stopped recycler: for how long and why, 'not ready' in the header; exit 1."""
    await instance.recycler.stop()
    ran = await cli("status", "--url", instance.http_url)
    assert ran.code == 1, ran
    assert "Health   unhealthy" in ran.out
    row = next(line for line in ran.out.splitlines() if line.startswith("  recycler "))
    assert RECYCLER_ROW.fullmatch(row), row
    assert ran.out.splitlines()[0].endswith(" · not ready")


async def test_without_a_token_public_parts_and_hidden_reasons(
    instance: Application, cli: Cli
) -> None:
    """No token: health and readiness still show, reasons hidden, and the rest says what it
    needs; the exit status still tells unhealthy apart."""
    ran = await cli("status", "--url", instance.http_url)
    assert ran.code == 0, ran
    assert ran.out.splitlines()[0] == f"instance at {instance.http_url} · ready"
    assert "The rest needs a token: set ORCHESTRATOR_HTTP_TOKEN or use --token-file" in ran.out
    assert "Jobs" not in ran.out
    await instance.recycler.stop()
    ran = await cli("status", "--url", instance.http_url)
    assert ran.code == 1, ran
    assert "hidden: send a valid bearer token to see it" in ran.out
    ran = await cli("status", "--url", instance.http_url, "--section", "jobs")
    line = one_error_line(ran, 3)
    assert line.endswith(f"{instance.http_url} needs a token: set ORCHESTRATOR_HTTP_TOKEN or "
                         "use --token-file")  # fmt: skip


async def test_draining_instance_exit_1(instance: Application, cli: Cli, tmp_path: Path) -> None:
    """After POST /admin/drain: a DRAINING line and exit 1 (the token from --token-file)."""
    await drain(instance)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    ran = await cli("status", "--url", instance.http_url, "--token-file", str(token_file))
    assert ran.code == 1, ran
    assert ran.out.splitlines()[0].endswith(" · not ready")
    assert ran.out.splitlines()[1] == "DRAINING: drained by an operator; /ready answers 503"


async def test_draining_without_a_token_says_so(instance: Application, cli: Cli) -> None:
    """No token: the header says not ready, and a DRAINING line says why (from /ready)."""
    await drain(instance)
    ran = await cli("status", "--url", instance.http_url)
    assert ran.code == 1, ran
    lines = ran.out.splitlines()
    assert lines[0] == f"instance at {instance.http_url} · not ready"
    assert lines[1] == "DRAINING: /ready answers 503 (drained or stopping)"


async def test_unreachable_exit_3(closed_port: int, cli: Cli) -> None:
    """A refused connection: one line naming the URL, exit 3."""
    url = f"http://127.0.0.1:{closed_port}"
    line = one_error_line(await cli("status", "--url", url), 3)
    assert line == f"orchestrator: error: connection refused by {url} (is the instance running?)"


async def test_url_from_the_environment(
    closed_port: int, cli: Cli, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("ORCHESTRATOR_URL", f"http://127.0.0.1:{closed_port}/")
    line = one_error_line(await cli("status"), 3)
    assert f"refused by http://127.0.0.1:{closed_port} (" in line


async def test_wrong_token_exit_3_and_never_printed(
    instance: Application, cli: Cli, clean_env: pytest.MonkeyPatch
) -> None:
    wrong = "wrong-token-0a9b8c"
    clean_env.setenv("ORCHESTRATOR_HTTP_TOKEN", wrong)
    line = one_error_line(await cli("status", "--url", instance.http_url), 3)
    assert line == f"orchestrator: error: {instance.http_url} refused the token"
    ran = await cli("status", "--url", instance.http_url, "--json")
    assert wrong not in ran.out + ran.err
    assert TOKEN not in ran.out + ran.err


@pytest.mark.usefixtures("token_env")
async def test_json_round_trip(instance: Application, cli: Cli) -> None:
    """--json: the answers of /stats, /health?verbose and /ready, as JSON; the exit status
    is the same as without it."""
    ran = await cli("status", "--url", instance.http_url, "--json")
    assert ran.code == 0, ran
    doc = orjson.loads(ran.out)
    assert list(doc) == ["url", "health", "ready", "stats"]
    assert doc["url"] == instance.http_url
    assert doc["health"]["healthy"] is True
    assert set(doc["health"]["checks"]) == set(COMPONENTS)
    assert doc["ready"] == {"status": 200, "body": {"ready": True}}
    assert doc["stats"]["registry"]["kinds"]["echo"]["succeeded_total"] == JOBS
    assert doc["stats"]["workers"]["count"] == WORKERS
    ran = await cli("status", "--url", instance.http_url, "--json", "--section", "workers")
    workers = orjson.loads(ran.out)
    assert workers["count"] == WORKERS
    assert workers["jobs_completed_total"] == JOBS
    await instance.recycler.stop()
    ran = await cli("status", "--url", instance.http_url, "--json", "--section", "health")
    assert ran.code == 1
    assert orjson.loads(ran.out)["checks"]["recycler"]["healthy"] is False


@pytest.mark.usefixtures("token_env")
async def test_section_narrows_to_one_part(instance: Application, cli: Cli) -> None:
    """--section queue: the header line and the queue line, nothing else."""
    ran = await cli("status", "--url", instance.http_url, "--section", "queue")
    assert ran.code == 0, ran
    lines = ran.out.splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("Queue    0 of 1,024")
    ran = await cli("status", "--url", instance.http_url, "--section", "health")
    assert len(ran.out.splitlines()) == 2 + len(COMPONENTS)


@pytest.mark.usefixtures("token_env")
async def test_rate_limited_says_when_to_retry(cli: Cli) -> None:
    """A 429 (a burst of 1 at one request a minute): exit 3, and when to retry."""
    app = await start_instance(rate_limit=1 / 60, rate_limit_burst=1)
    url = app.http_url
    try:
        line = one_error_line(await cli("status", "--url", url), 3)
    finally:
        await app.stop(timeout=2.0)
    assert f"{url} is rate limiting this client; retry in " in line
    seconds = float(line.rsplit("retry in ", 1)[1].removesuffix(" s"))
    assert 1 <= seconds <= 60


def answering(response: Callable[[], web.Response]) -> web.Application:
    """An aiohttp application answering ``response()`` to every GET."""

    async def handle(request: web.Request) -> web.Response:
        return response()

    web_app = web.Application()
    web_app.router.add_get("/{tail:.*}", handle)
    return web_app


@pytest.fixture
async def not_an_orchestrator() -> AsyncIterator[str]:
    """A plain aiohttp server on 127.0.0.1 answering text to everything."""
    async with served(answering(lambda: web.Response(text="hello"))) as url:
        yield url


async def test_not_json_is_not_an_orchestrator(not_an_orchestrator: str, cli: Cli) -> None:
    url = not_an_orchestrator
    line = one_error_line(await cli("status", "--url", url), 3)
    assert line == (f"orchestrator: error: {url}/stats answered 200 with text/plain, not JSON: "
                    f"is {url} an orchestrator?")  # fmt: skip


@pytest.fixture
async def other_json() -> AsyncIterator[str]:
    """A plain aiohttp server on 127.0.0.1 answering ``{"ok": true}`` to everything."""
    async with served(answering(lambda: web.json_response({"ok": True}))) as url:
        yield url


@pytest.mark.parametrize("argv", [[], ["--json", "--section", "jobs"]])
async def test_json_of_another_shape_is_one_line(
    other_json: str, argv: list[str], cli: Cli
) -> None:
    line = one_error_line(await cli("status", "--url", other_json, *argv), 3)
    assert line.startswith(f"orchestrator: error: {other_json} answered JSON this client does "
                           "not read (no '")  # fmt: skip
    assert line.endswith("is it an orchestrator, of a version close to 0.1.0?")


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_timeout_names_the_url(silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}"
    with pytest.raises(Unreachable) as caught:
        Remote(url, TOKEN).get("/stats", timeout=0.2)
    assert str(caught.value) == f"no answer from {url} within 0.2 s"


async def test_unknown_host_names_the_url(cli: Cli, clean_env: pytest.MonkeyPatch) -> None:
    """A DNS failure (the resolver answers 'unknown name' here, so no query leaves)."""

    def unknown(*args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    clean_env.setattr(socket, "getaddrinfo", unknown)
    url = "http://orchestrator.example.invalid:8080"
    line = one_error_line(await cli("status", "--url", url), 3)
    assert (
        line == f"orchestrator: error: cannot resolve host 'orchestrator.example.invalid' of {url}"
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--watch", "0"], "argument --watch: must be a number of seconds above 0: '0'"),
        (["--section", "nope"], "argument --section: invalid choice: 'nope'"),
        (["--url", "ftp://host"], "--url must look like http://HOST:PORT"),
        (["--url", "http://u:secret@host:1"], "--url must not carry credentials"),
        (["--url", "http://host:99999"], "--url: the port is not a number from 0 to 65535"),
        (["--url", "http://host:1/?x=1"], "--url must not have a query or a fragment"),
        (
            ["--token", "secret-value"],
            "option --token and 1 unexpected argument (not shown); tokens come from",
        ),
    ],
)
async def test_usage_errors_exit_2(argv: list[str], expected: str, cli: Cli) -> None:
    ran = await cli("status", *argv)
    assert ran.code == 2, ran
    assert ran.out == ""
    assert len(ran.err.splitlines()) == 1, ran.err
    assert expected in ran.err
    assert "secret-value" not in ran.err
    assert ":secret@" not in ran.err


def test_the_command_loads_no_server_code(closed_port: int) -> None:
    """``orchestrator status`` imports neither aiohttp nor prometheus_client nor the HTTP
    server (checked in a fresh interpreter)."""
    code = (
        "import sys\n"
        "from orchestrator.cli import main\n"
        f"code = main(['status', '--url', 'http://127.0.0.1:{closed_port}'])\n"
        "loaded = ('aiohttp', 'prometheus_client', 'orchestrator.http')\n"
        "print(code, sorted(m for m in loaded if m in sys.modules))\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)  # fmt: skip
    assert ran.stdout == "3 []\n"

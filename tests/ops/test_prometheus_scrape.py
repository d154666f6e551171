"""A real Prometheus scrapes the real application with its token and evaluates deploy/."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from orchestrator import Application, __version__
from tests.ops.deploy_files import (
    ALERTS,
    DASHBOARD,
    OPERATIONS,
    alert_rules,
    dashboard_panels,
    docs_queries,
    require_binary,
)
from tests.ops.live import JOBS, TOKEN, WORKERS

T = TypeVar("T")

DEADLINE_SECONDS = 60.0
"""Longest the whole exchange with Prometheus may take (start, scrapes, rules, queries)."""
NEVER = "0001-01-01T00:00:00Z"
"""``lastEvaluation`` of a rule Prometheus has not evaluated yet."""
DASHBOARD_VARIABLES = {"$job": "orchestrator", "$instance": ".+", "$__rate_interval": "1m"}

CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - {rules}
scrape_configs:
  - job_name: orchestrator
    authorization:
      type: Bearer
      credentials_file: {token}
    static_configs:
      - targets: [{target}]
  - job_name: orchestrator-wrong-token
    authorization:
      type: Bearer
      credentials_file: {wrong_token}
    static_configs:
      - targets: [{target}]
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Prometheus:
    """Queries a running Prometheus over its HTTP API, polling until a deadline."""

    def __init__(
        self, session: aiohttp.ClientSession, url: str, process: asyncio.subprocess.Process,
        log: Path,
    ) -> None:  # fmt: skip
        self.session = session
        self.url = url
        self.process = process
        self.log = log
        self.deadline = asyncio.get_running_loop().time() + DEADLINE_SECONDS

    async def api(self, path: str, **params: str) -> dict[str, Any] | None:
        """The JSON ``data`` of a successful API call, or None while Prometheus is not up."""
        try:
            async with self.session.get(f"{self.url}{path}", params=params) as resp:
                body: dict[str, Any] = await resp.json()
        except aiohttp.ClientConnectionError:
            return None
        assert body["status"] == "success", (path, params, body)
        data: dict[str, Any] = body["data"]
        return data

    async def query(self, promql: str) -> list[dict[str, Any]] | None:
        """The instant vector ``promql`` evaluates to now, or None while Prometheus is not up."""
        data = await self.api("/api/v1/query", query=promql)
        if data is None:
            return None
        result: list[dict[str, Any]] = data["result"]
        return result

    async def value(self, promql: str) -> tuple[dict[str, str], float]:
        """The labels and value of the single series ``promql`` selects."""
        result = await self.query(promql)
        assert result is not None
        assert len(result) == 1, (promql, result)
        return result[0]["metric"], float(result[0]["value"][1])

    async def until(
        self, what: str | Callable[[], str], probe: Callable[[], Awaitable[T | None]]
    ) -> T:
        """Poll ``probe`` until it returns a value; fail at the deadline or if Prometheus exits.

        ``what`` (or what it returns, when called at the deadline) names the awaited state.
        """
        loop = asyncio.get_running_loop()
        while True:
            got = await probe()
            if got is not None:
                return got
            if self.process.returncode is not None:
                pytest.fail(f"prometheus exited ({self.process.returncode}):\n{self.tail()}")
            if loop.time() > self.deadline:
                name = what if isinstance(what, str) else what()
                pytest.fail(f"{name}: not reached in {DEADLINE_SECONDS:.0f}s\n{self.tail()}")
            await asyncio.sleep(0.2)  # sleep-ok: polling a real prometheus process

    def tail(self) -> str:
        """The end of Prometheus's log, for failure messages."""
        return prom_log_tail(self.log)


def prom_log_tail(log: Path) -> str:
    """The last 20 lines of Prometheus's log."""
    return "\n".join(log.read_text(errors="replace").splitlines()[-20:])


async def start_prometheus(
    binary: str, config: Path, tmp_path: Path, port: int
) -> asyncio.subprocess.Process:
    """Start ``prometheus`` on 127.0.0.1:``port`` with its log in tmp_path/prometheus.log."""
    with (tmp_path / "prometheus.log").open("wb") as log:
        return await asyncio.create_subprocess_exec(
            binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


async def stop_prometheus(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, wait up to 15 s, then SIGKILL; always reaps the process."""
    if process.returncode is None:
        process.terminate()
    try:
        async with asyncio.timeout(15):
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()


@pytest.mark.slow
async def test_prometheus_scrapes_the_application(live_app: Application, tmp_path: Path) -> None:
    """Prometheus scrapes with the token, sees real values, evaluates alerts.yml and the panels."""
    binary = require_binary("prometheus")
    (tmp_path / "token").write_text(f"{TOKEN}\n")
    (tmp_path / "wrong-token").write_text("not-the-token\n")
    target = f"127.0.0.1:{live_app.http_port}"
    config = tmp_path / "prometheus.yml"
    config.write_text(CONFIG.format(
        rules=json.dumps(str(ALERTS)), token=json.dumps(str(tmp_path / "token")),
        wrong_token=json.dumps(str(tmp_path / "wrong-token")), target=json.dumps(target),
    ))  # fmt: skip
    port = free_port()
    process = await start_prometheus(binary, config, tmp_path, port)
    try:
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            asyncio.timeout(DEADLINE_SECONDS + 30),
            aiohttp.ClientSession(timeout=timeout) as session,
        ):
            prom = Prometheus(
                session, f"http://127.0.0.1:{port}", process, tmp_path / "prometheus.log"
            )
            await check_scrape(prom, live_app, target)
            await check_rules(prom)
            await check_dashboard_queries(prom)
            await check_not_ready_count(prom, live_app)
    finally:
        await stop_prometheus(process)
    assert process.returncode == 0, prom_log_tail(tmp_path / "prometheus.log")


async def check_scrape(prom: Prometheus, app: Application, target: str) -> None:
    """``up`` is 1 with the token and 0 with a wrong one; values are the application's."""

    async def both_scraped() -> dict[str, float] | None:
        result = await prom.query("up")
        up = {r["metric"]["job"]: float(r["value"][1]) for r in result or []}
        return up if len(up) == 2 else None

    up = await prom.until("up of both jobs", both_scraped)
    assert up == {"orchestrator": 1.0, "orchestrator-wrong-token": 0.0}
    labels, value = await prom.value('orchestrator_jobs_succeeded_total{job="orchestrator"}')
    assert value == JOBS
    assert labels["kind"] == "echo"
    assert labels["instance"] == target
    _, value = await prom.value('orchestrator_workers_configured{job="orchestrator"}')
    assert value == WORKERS
    labels, _ = await prom.value('orchestrator_build_info{job="orchestrator"}')
    assert labels["version"] == __version__
    assert app.get_stats()["http"]["auth"]["failures_total"] >= 1  # the wrong token's 401s


async def check_rules(prom: Prometheus) -> None:
    """Prometheus loads every alert of alerts.yml; each evaluates cleanly and none fires."""

    async def evaluated() -> list[dict[str, Any]] | None:
        data = await prom.api("/api/v1/rules")
        rules = [r for g in (data or {}).get("groups", []) for r in g["rules"]]
        done = rules and all(r["lastEvaluation"] != NEVER for r in rules)
        return rules if done else None

    rules = await prom.until("every rule evaluated", evaluated)
    assert {r["name"] for r in rules} == {rule.name for rule in alert_rules(ALERTS.read_text())}
    assert {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"} == {}
    assert [r["name"] for r in rules if r["state"] == "firing"] == []


async def check_dashboard_queries(prom: Prometheus) -> None:
    """Each dashboard and docs query (variables filled in) is valid PromQL and returns data."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = docs_queries(OPERATIONS.read_text())
    for panel in dashboard_panels(dashboard):
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in DASHBOARD_VARIABLES.items():
                expr = expr.replace(variable, value)
            exprs.append(expr)
    empty: list[str] = []

    async def all_answered() -> bool | None:
        empty[:] = [expr for expr in exprs if not await prom.query(expr)]
        return True if not empty else None

    await prom.until(lambda: f"data from every query; none yet from {empty}", all_answered)


async def check_not_ready_count(prom: Prometheus, app: Application) -> None:
    """The docs' count of instances not ready goes from 0 to 1 when the instance drains."""
    (not_ready,) = [q for q in docs_queries(OPERATIONS.read_text()) if "http_draining" in q]

    async def count_is(expected: float) -> bool | None:
        result = await prom.query(not_ready)
        return True if result and float(result[0]["value"][1]) == expected else None

    assert await prom.until("no instance counted not ready", lambda: count_is(0.0))
    app.http_server.drain()
    try:
        assert await prom.until("the draining instance counted not ready", lambda: count_is(1.0))
    finally:
        app.http_server.drain(False)

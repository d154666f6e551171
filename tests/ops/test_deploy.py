"""deploy/: rules, config and dashboard are valid and name only metrics the application exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.ops.deploy_files import (
    ALERTS,
    ALERTS_TEST,
    DASHBOARD,
    KUBERNETES,
    OPERATIONS,
    PODMONITOR,
    PROMETHEUS_CONFIG,
    AlertRule,
    alert_rules,
    anchors,
    dashboard_exprs,
    dashboard_panels,
    docs_queries,
    exported_names,
    metric_names,
    require_binary,
    yaml_block,
)

RULES = alert_rules(ALERTS.read_text())
DASHBOARD_JSON: dict[str, Any] = json.loads(DASHBOARD.read_text())


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``promtool args`` (bounded in time) and return what it did."""
    binary = require_binary("promtool")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)


# -- Prometheus ---------------------------------------------------------------------------


RUNBOOK_BASE = "https://runbooks.example.test/orchestrator/docs"


def render(text: str, base: str = RUNBOOK_BASE) -> str:
    """The rules as installed: ``${RUNBOOK_BASE_URL}`` replaced, as ``envsubst`` does."""
    return text.replace("${RUNBOOK_BASE_URL}", base)


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    """alerts.yml and alerts_test.yml rendered with a runbook base URL into ``tmp_path``."""
    for source in (ALERTS, ALERTS_TEST):
        (tmp_path / source.name).write_text(render(source.read_text()))
    return tmp_path


@pytest.mark.parametrize("which", ["rendered", "as-shipped"])
def test_promtool_checks_alert_rules(rendered: Path, which: str) -> None:
    """`promtool check rules` accepts alerts.yml, rendered or not, and counts every rule."""
    path = rendered / ALERTS.name if which == "rendered" else ALERTS
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULES)} rules found" in result.stdout


def test_promtool_unit_tests_pass(rendered: Path) -> None:
    """`promtool test rules` passes on the rendered rules; alerts_test.yml tests every alert."""
    result = promtool("test", "rules", str(rendered / ALERTS_TEST.name))
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname:\s*(\w+)", ALERTS_TEST.read_text()))
    assert tested == {rule.name for rule in RULES}
    assert (
        f'runbook_url: "{RUNBOOK_BASE}/operations.md#' in (rendered / ALERTS_TEST.name).read_text()
    )


def test_the_runbook_base_is_the_rules_one_parameter() -> None:
    """Every runbook_url is ${RUNBOOK_BASE_URL} plus a section of docs/operations.md."""
    for rule in RULES:
        url = render(rule.fields["runbook_url"], "BASE")
        assert url.startswith("BASE/operations.md#"), rule.name


def test_promtool_checks_config(tmp_path: Path) -> None:
    """`promtool check config` accepts prometheus.yml and its rule file (token file in tmp)."""
    text = PROMETHEUS_CONFIG.read_text()
    (credentials,) = re.findall(r"credentials_file:\s*(\S+)", text)
    token = tmp_path / "token"
    token.write_text("ops-test-token\n")
    config = tmp_path / "prometheus.yml"
    config.write_text(text.replace(credentials, str(token)))
    (tmp_path / "alerts.yml").write_text(render(ALERTS.read_text()))
    result = promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout
    assert f"SUCCESS: {len(RULES)} rules found" in result.stdout


def test_shipped_config_syntax() -> None:
    """The shipped prometheus.yml passes `promtool check config --syntax-only` as it is."""
    result = promtool("check", "config", "--syntax-only", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_scrape_sends_bearer_token_from_file() -> None:
    """The scrape job authenticates with a Bearer token read from a file, never inline."""
    auth = yaml_block(PROMETHEUS_CONFIG.read_text(), "authorization:")
    assert re.search(r"^\s*type: Bearer$", auth, flags=re.MULTILINE)
    assert "credentials_file:" in auth
    assert not re.search(r"^\s*credentials:", auth, flags=re.MULTILINE)


def test_alerts_select_the_scrape_job() -> None:
    """Every job label an alert selects is the job prometheus.yml scrapes the application as."""
    jobs = set(re.findall(r"job_name:\s*(\S+)", PROMETHEUS_CONFIG.read_text()))
    assert jobs == {"orchestrator"}
    selected = {job for rule in RULES for job in re.findall(r'job="([^"]*)"', rule.expr)}
    assert selected == jobs


@pytest.mark.parametrize("rule", RULES, ids=[rule.name for rule in RULES])
def test_alert_is_documented(rule: AlertRule) -> None:
    """Each alert has a severity, summary, description and a runbook in docs/operations.md."""
    assert rule.fields.get("severity") in ("critical", "warning")
    assert rule.fields.get("summary")
    assert rule.fields.get("description")
    page, _, anchor = rule.fields["runbook_url"].partition("#")
    assert page == "${RUNBOOK_BASE_URL}/operations.md"
    assert anchor in anchors(OPERATIONS.read_text())


async def test_alerts_name_exported_metrics(exposition: str) -> None:
    """Every orchestrator_*/process_* name in alerts.yml is one the real application exports."""
    exported = exported_names(exposition)
    unknown = {rule.name: sorted(metric_names(rule.expr) - exported) for rule in RULES}
    assert {name: names for name, names in unknown.items() if names} == {}
    assert all(metric_names(rule.expr) or "up{" in rule.expr for rule in RULES)


# -- Grafana ------------------------------------------------------------------------------


def test_dashboard_structure() -> None:
    """The dashboard has the datasource/instance variables; each panel queries through them."""
    assert DASHBOARD_JSON["schemaVersion"] == 39
    variables = {v["name"]: v for v in DASHBOARD_JSON["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["instance"]["type"] == "query"
    assert "orchestrator_build_info" in variables["instance"]["query"]
    panels = list(dashboard_panels(DASHBOARD_JSON))
    ids = [p["id"] for p in DASHBOARD_JSON["panels"]] + [
        p["id"] for row in DASHBOARD_JSON["panels"] for p in row.get("panels", [])
    ]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert 'instance=~"$instance"' in target["expr"], panel["title"]


def test_dashboard_covers_the_essentials() -> None:
    """Health, throughput, failures, latency, queue, pool, HTTP, loop lag, restarts are shown."""
    shown = set().union(*(metric_names(e) for es in dashboard_exprs(DASHBOARD_JSON).values()
                          for e in es))  # fmt: skip
    assert {
        "orchestrator_component_healthy",
        "orchestrator_jobs_succeeded_total",
        "orchestrator_jobs_failed_total",
        "orchestrator_jobs_timed_out_total",
        "orchestrator_job_duration_seconds_bucket",
        "orchestrator_queue_depth",
        "orchestrator_queue_capacity",
        "orchestrator_pool_connections",
        "orchestrator_pool_max_connections",
        "orchestrator_http_requests_total",
        "orchestrator_http_rate_limited_total",
        "orchestrator_http_auth_failures_total",
        "orchestrator_event_loop_lag_seconds",
        "orchestrator_worker_restarts_total",
    } <= shown
    latency = " ".join(dashboard_exprs(DASHBOARD_JSON)["Job latency"])
    assert all(f"histogram_quantile({q}," in latency for q in ("0.5", "0.9", "0.99"))


async def test_dashboard_names_exported_metrics(exposition: str) -> None:
    """Every orchestrator_*/process_* name in the dashboard is one the application exports."""
    exported = exported_names(exposition)
    unknown = {
        title: sorted(set().union(*(metric_names(e) for e in exprs)) - exported)
        for title, exprs in dashboard_exprs(DASHBOARD_JSON).items()
    }
    assert {title: names for title, names in unknown.items() if names} == {}
    assert "orchestrator_job_duration_seconds_bucket" in exported
    assert "orchestrator_http_requests_total" in exported  # declared before its first series


async def test_docs_queries_name_exported_metrics(exposition: str) -> None:
    """The fleet queries of docs/operations.md name only metrics the application exports."""
    queries = docs_queries(OPERATIONS.read_text())
    assert len(queries) >= 5
    exported = exported_names(exposition)
    assert {
        q: sorted(metric_names(q) - exported) for q in queries if metric_names(q) - exported
    } == {}


def test_exported_names_reject_a_misspelling() -> None:
    """The name check is not vacuous: an unknown name or a counter without _total is caught."""
    text = (
        "# TYPE orchestrator_queue_routed_total counter\norchestrator_queue_routed_total 3\n"
        "# TYPE orchestrator_job_duration_seconds histogram\n"
        'orchestrator_job_duration_seconds_bucket{le="+Inf"} 1\n'
        "orchestrator_job_duration_seconds_count 1\norchestrator_job_duration_seconds_sum 0.1\n"
    )
    exported = exported_names(text)
    expr = "rate(orchestrator_queue_routed[5m]) + orchestrator_job_duration_seconds_count"
    assert metric_names(expr) - exported == {"orchestrator_queue_routed"}


# -- Kubernetes ---------------------------------------------------------------------------


def _seconds(block: str, key: str) -> int:
    (value,) = re.findall(rf"^\s*{key}:\s*(\d+)$", block, flags=re.MULTILINE)
    return int(value)


def test_kubernetes_probes() -> None:
    """Startup and liveness probe /live, readiness probes /ready, each with explicit timings."""
    text = KUBERNETES.read_text()
    paths = {"startupProbe": "/live", "livenessProbe": "/live", "readinessProbe": "/ready"}
    for probe, path in paths.items():
        block = yaml_block(text, f"{probe}:")
        assert re.search(rf"^\s*path: {path}$", block, flags=re.MULTILINE), probe
        for key in ("periodSeconds", "timeoutSeconds", "failureThreshold"):
            assert _seconds(block, key) >= 1, (probe, key)
    readiness, liveness = yaml_block(text, "readinessProbe:"), yaml_block(text, "livenessProbe:")
    assert _seconds(readiness, "failureThreshold") == 1
    assert _seconds(liveness, "failureThreshold") * _seconds(liveness, "periodSeconds") >= 30


def test_kubernetes_token_from_secret() -> None:
    """ORCHESTRATOR_HTTP_TOKEN comes from a Secret (secretKeyRef); no token in the arguments."""
    text = KUBERNETES.read_text()
    env = yaml_block(text, "- name: ORCHESTRATOR_HTTP_TOKEN")
    assert "secretKeyRef:" in env
    assert not re.search(r"^\s*value:", env, flags=re.MULTILINE)
    (secret,) = re.findall(r"^\s*name: (\S+)$", yaml_block(env, "secretKeyRef:"), re.MULTILINE)
    assert "token" not in yaml_block(text, "args:").lower()
    assert f"name: {secret}" in PODMONITOR.read_text()  # Prometheus scrapes with the same token


def test_grace_period_covers_the_drain() -> None:
    """terminationGracePeriodSeconds exceeds drain delay or job wait, plus HTTP shutdown."""
    text = KUBERNETES.read_text()

    def env(name: str) -> float:
        return float(re.findall(r'^\s*value: "([\d.]+)"$', yaml_block(text, f"- name: {name}"),
                                re.MULTILINE)[0])  # fmt: skip

    drain = env("ORCHESTRATOR_HTTP_DRAIN_DELAY")
    (stop_timeout,) = re.findall(r"--stop-timeout=(\d+)", text)
    shutdown = env("ORCHESTRATOR_HTTP_SHUTDOWN_TIMEOUT")
    grace = _seconds(text, "terminationGracePeriodSeconds")
    assert grace > max(drain, float(stop_timeout)) + shutdown
    readiness = yaml_block(text, "readinessProbe:")
    # readiness notices the drain before the port closes
    assert _seconds(readiness, "periodSeconds") * _seconds(readiness, "failureThreshold") < drain
    assert not re.search(r"^\s*preStop:", text, flags=re.MULTILINE)  # the app drains itself

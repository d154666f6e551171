"""The deploy/ artefacts, and small text parsers for them (the tests read them as text)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "ALERTS",
    "ALERTS_TEST",
    "BLACKBOX",
    "DASHBOARD",
    "KUBERNETES",
    "OPERATIONS",
    "PODMONITOR",
    "PROMETHEUS_CONFIG",
    "AlertRule",
    "alert_rules",
    "anchors",
    "dashboard_exprs",
    "dashboard_panels",
    "docs_queries",
    "exported_names",
    "metric_names",
    "require_binary",
    "yaml_block",
]

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERTS_TEST = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
BLACKBOX = ROOT / "deploy" / "prometheus" / "blackbox.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "orchestrator-dashboard.json"
KUBERNETES = ROOT / "deploy" / "kubernetes" / "deployment.yaml"
PODMONITOR = ROOT / "deploy" / "kubernetes" / "podmonitor.yaml"
OPERATIONS = ROOT / "docs" / "operations.md"

_METRIC = re.compile(r"(?<![\w:])((?:orchestrator|process)_[A-Za-z0-9_:]*)")
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
    "info": ("_info",),
}


def require_binary(name: str) -> str:
    """The path of the executable ``name``; skips the test without it, fails in CI."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required in CI (.ci/run installs it with apt-get)")
        pytest.skip(f"{name} not installed")
    return path


def metric_names(expr: str) -> set[str]:
    """Every ``orchestrator_*`` and ``process_*`` identifier in a PromQL expression."""
    return set(_METRIC.findall(expr))


def exported_names(exposition: str) -> set[str]:
    """Every sample name an exposition can carry: its samples, plus each family's suffixes.

    A labelled family with no series yet (``orchestrator_http_requests_total`` before the
    first counted request) is still declared by its ``# TYPE`` line.
    """
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names


@dataclass(frozen=True)
class AlertRule:
    """One ``- alert:`` entry of a rule file: its name and every scalar under it."""

    name: str
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def expr(self) -> str:
        """The PromQL expression."""
        return self.fields["expr"]


def _unquote(value: str) -> str:
    if value.startswith('"') and value.endswith('"'):
        return str(json.loads(value))
    if value.startswith("'") and value.endswith("'"):
        return value[1:-1].replace("''", "'")
    return value


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def alert_rules(text: str) -> list[AlertRule]:
    """The alerting rules of a Prometheus rule file, read as text.

    Scalars nested under a rule (``expr``, ``for``, labels, annotations) are flattened by
    key; block scalars (``|``, ``>-``) are joined with spaces.
    """
    rules: list[AlertRule] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        start = re.match(r"(\s*)- alert:\s*(\S+)", lines[i])
        i += 1
        if start is None:
            continue
        rule = AlertRule(start.group(2))
        rules.append(rule)
        depth = len(start.group(1))
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > depth):
            pair = re.match(r"\s*([\w.]+):\s*(.*)$", lines[i])
            key_depth = _indent(lines[i])
            i += 1
            if pair is None:
                continue
            key, value = pair.groups()
            if value in ("|", "|-", ">", ">-"):
                parts = []
                while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > key_depth):
                    parts.append(lines[i].strip())
                    i += 1
                value = " ".join(p for p in parts if p)
            if value:
                rule.fields[key] = _unquote(value)
    return rules


def yaml_block(text: str, line: str) -> str:
    """The lines nested under the first line whose content (comments dropped) is ``line``."""
    lines = [re.sub(r"\s+#.*$", "", raw) for raw in text.splitlines()]
    for n, current in enumerate(lines):
        if current.strip() == line:
            depth = _indent(current)
            block = []
            for nested in lines[n + 1 :]:
                if nested.strip() and _indent(nested) <= depth:
                    break
                block.append(nested)
            return "\n".join(block)
    raise AssertionError(f"no line {line!r}")


def dashboard_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that is not a row, rows' nested (collapsed) panels included."""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def dashboard_exprs(dashboard: dict[str, Any]) -> dict[str, list[str]]:
    """Each panel's (or template variable's) PromQL expressions, by title."""
    exprs = {p["title"]: [t["expr"] for t in p["targets"]] for p in dashboard_panels(dashboard)}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            exprs[f"${variable['name']}"] = [variable["query"]]
    return exprs


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown document."""
    out = set()
    for heading in re.findall(r"^#+\s+(.+?)\s*$", markdown, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower().replace("`", ""))
        out.add(slug.replace(" ", "-"))
    return out


def docs_queries(markdown: str) -> list[str]:
    """The PromQL queries of a document's ``promql`` code blocks, one per line."""
    blocks = re.findall(r"^```promql\n(.*?)^```$", markdown, flags=re.MULTILINE | re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]

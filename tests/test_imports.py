"""Every module imports on its own in a fresh interpreter (no hidden import-order cycles)."""

from __future__ import annotations

import ast
import os
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import orchestrator

PACKAGE_DIR = Path(orchestrator.__file__).parent


def module_names(path: Path, prefix: str) -> Iterator[str]:
    """Every module under ``path``, found with pkgutil without importing anything."""
    for info in pkgutil.iter_modules([str(path)], prefix):
        if info.name.endswith(".__main__"):
            continue  # runs the command line on import
        yield info.name
        if info.ispkg:
            yield from module_names(path / info.name.rpartition(".")[2], info.name + ".")


MODULES = sorted(["orchestrator", *module_names(PACKAGE_DIR, "orchestrator.")])


def test_discovery_finds_the_core_modules() -> None:
    """The discovery walks subpackages: the components and the core modules are found."""
    assert {"orchestrator.application", "orchestrator.components.workers",
            "orchestrator.cli"} <= set(MODULES)  # fmt: skip


def import_alone(module: str) -> subprocess.CompletedProcess[str]:
    """Import ``module`` in a fresh interpreter with warnings as errors."""
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def imports() -> dict[str, subprocess.CompletedProcess[str]]:
    """Each module imported in its own interpreter, a few interpreters at a time."""
    with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1)) as pool:
        return dict(zip(MODULES, pool.map(import_alone, MODULES), strict=True))


@pytest.mark.parametrize("module", MODULES, ids=MODULES)
def test_module_imports_on_its_own(
    module: str, imports: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    """``python -W error -c "import <module>"`` succeeds in a fresh interpreter."""
    proc = imports[module]
    assert proc.returncode == 0, proc.stderr


BOTTOM = {
    "types", "errors", "health", "clock", "config", "environment", "state", "stats", "tasks",
    "log", "log_level", "events", "watchdog", "job", "stacks", "loop_lag", "version",
    "job_events", "health_watch", "gc_pauses", "monitors", "in_flight",
}  # fmt: skip
"""The bottom layer of docs/architecture.md."""


def imported(module: str) -> set[str]:
    """The ``orchestrator.*`` and top-level third-party modules ``module`` imports (any depth
    of the file, ``TYPE_CHECKING`` blocks included)."""
    path = PACKAGE_DIR.joinpath(*module.split(".")[1:])
    source = (path / "__init__.py") if path.is_dir() else path.with_suffix(".py")
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("module", MODULES, ids=MODULES)
def test_the_layers_point_one_way(module: str) -> None:
    """Bottom layer → nothing above; components → neither http, aiohttp, application nor each
    other; http → neither components nor application; terminal (a client of the HTTP API)
    → none of the server's modules."""
    names = imported(module)
    parts = module.split(".")
    if len(parts) == 2 and parts[1] in BOTTOM:
        ours = {n for n in names if n.startswith("orchestrator.")}
        above = {n for n in ours if n.split(".")[1] not in BOTTOM}
        assert above == set(), module
    if parts[1:2] == ["components"] and len(parts) == 3:
        helpers = {  # helper modules of a component, not components
            "orchestrator.components.saturation",
            "orchestrator.components.worker",
            "orchestrator.components.execution",
            "orchestrator.components.limit",
        }
        banned = ("orchestrator.http", "orchestrator.application", "aiohttp")
        peers = {n for n in names if n.startswith("orchestrator.components.")} - helpers
        bad = {n for n in names if n.startswith(banned)} | peers
        assert bad == set(), module
    if parts[1:2] == ["http"]:
        bad = {n for n in names if n.startswith(("orchestrator.components", "orchestrator.appl"))}
        assert bad == set(), module
    if parts[1:2] == ["sources"]:  # a component kind: bottom layer and the broker client only
        bad = {
            n
            for n in names
            if n.startswith(("orchestrator.", "aiohttp", "redis"))
            and not n.startswith(("orchestrator.sources", *(f"orchestrator.{b}" for b in BOTTOM)))
        }
        if parts[2:3] == ["redis"]:
            bad = {n for n in bad if not n.startswith("redis")}
        assert bad == set(), module
    if parts[1:2] == ["terminal"]:
        parts_of_server = ("application", "components", "http", "run", "demo")
        server = (*(f"orchestrator.{n}" for n in parts_of_server), "aiohttp", "prometheus_client")
        bad = {n for n in names if n.startswith(server)}
        assert bad == set(), module


def test_import_orchestrator_loads_no_broker_client() -> None:
    """``import orchestrator`` (and ``orchestrator.sources``) leaves redis unloaded: the
    client comes with the optional ``redis`` extra and loads only with its source."""
    code = (
        "import sys, orchestrator, orchestrator.sources, orchestrator.sources.url; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('redis', 'hiredis')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    assert proc.stdout.strip() == "[]"

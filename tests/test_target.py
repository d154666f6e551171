"""`orchestrator run TARGET`: loading the application a module names, in process.

Each test writes its own small modules into a temporary folder (the ``--app-dir``); the
import path and the imported modules are restored afterwards.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator import Application, ConfigError
from orchestrator.errors import TargetError, TargetFailed
from orchestrator.target import Target, load_target, user_traceback

Write = Callable[[str, str], None]


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder for the test's modules; ``sys.path`` and ``sys.modules`` as they were after."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


@pytest.fixture
def write(app_dir: Path) -> Write:
    """``write("name", source)`` creates ``name.py`` (``a/b`` makes the package ``a``)."""

    def create(name: str, source: str) -> None:
        path = app_dir / f"{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(app_dir).parents:
            if parent != Path("."):
                (app_dir / parent / "__init__.py").touch()
        path.write_text(textwrap.dedent(source))

    return create


APP = textwrap.dedent("""
    from orchestrator import Application, Job
    app = Application(workers=3)

    @app.handler("echo")
    async def echo(job: Job) -> object:
        return job.payload
""")


def load(text: str, app_dir: Path) -> Application:
    """``load_target`` of ``text`` with ``app_dir`` as ``--app-dir``."""
    return load_target(Target.parse(text), str(app_dir))


def test_an_application_attribute_is_the_module_own_object(write: Write, app_dir: Path) -> None:
    """The target's Application is the module's object itself (handlers that use the
    module's ``app`` reach the running one), with its handlers and settings."""
    write("tasks", APP)
    app = load("tasks:app", app_dir)
    assert app is sys.modules["tasks"].app
    assert app.settings.workers == 3
    assert app.registry.lookup("echo").kind == "echo"


def test_a_factory_and_a_dotted_path(write: Write, app_dir: Path) -> None:
    """A callable taking no argument is called; attributes and packages may be dotted."""
    write("pkg/jobs", APP + "\ndef create() -> Application:\n    return app\n"
          "\nclass Holder:\n    application = app\n")  # fmt: skip
    assert load("pkg.jobs:create", app_dir) is load("pkg.jobs:Holder.application", app_dir)


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        (APP, "absent:app", "TARGET absent:app: no module named 'absent' in "),
        (APP, "nopkg.tasks:app", "no module named 'nopkg'"),
        (APP, "tasks:ap", "module 'tasks' has no attribute 'ap' (its applications: app)"),
        ("limit = 3\n", "tasks:limit", "limit is an object of type int, not an Application"),
        ("import os\n", "tasks:os", "os is a module, not an Application"),
        ("class Config:\n    pass\n", "tasks:Config", "is the class Config, not an Application"),
        (APP, "tasks:echo", "echo takes arguments"),
        ("def make():\n    return {}\n", "tasks:make", "make() returned an object of type dict"),
        ("def make():\n    return None\n", "tasks:make", "make() returned None, not an"),
        ("async def make():\n    pass\n", "tasks:make", "returned a coroutine (an async def)"),
    ],
    ids=["no-module", "no-package", "no-attribute", "an-int", "a-module", "a-class",
         "a-handler", "factory-dict", "factory-none", "async-factory"],
)  # fmt: skip
def test_a_target_naming_no_application_is_a_one_line_error(
    write: Write, app_dir: Path, source: str, target: str, message: str
) -> None:
    """Each way to name no application raises a ``TargetError`` (a ``ConfigError``: the
    command exits 2) whose one line says what was found."""
    write("tasks", source)
    with pytest.raises(TargetError) as caught:
        load(target, app_dir)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ConfigError)


@pytest.mark.parametrize(
    "text", ["mytasks", "sekrit-7f3a9c", "a:b:c", ":tasks", "mod:", "a b:c", "x:1y"]
)
def test_a_malformed_target_is_never_repeated(text: str) -> None:
    """A TARGET that is not MODULE:ATTRIBUTE is refused without echoing it: an argument in
    the wrong place may be a token."""
    with pytest.raises(TargetError) as caught:
        Target.parse(text)
    assert text not in str(caught.value)
    assert "MODULE:ATTRIBUTE" in str(caught.value)


def test_an_import_that_raises_keeps_the_user_traceback(write: Write, app_dir: Path) -> None:
    """An exception raised by the module's own code is a ``TargetFailed``, the exception its
    cause; the traceback shown starts in the user's file, not in the import machinery."""
    write("tasks", "X = 1\nraise RuntimeError('no database URL')\n")
    with pytest.raises(TargetFailed) as caught:
        load("tasks:app", app_dir)
    cause = caught.value.__cause__
    assert isinstance(cause, RuntimeError)
    lines = user_traceback(cause)
    text = "".join(lines)
    assert lines[0].startswith("Traceback")
    assert f'File "{app_dir / "tasks.py"}", line 2, in <module>' in lines[1]
    assert "importlib" not in text
    assert text.endswith("RuntimeError: no database URL\n")


def test_a_missing_dependency_of_the_module_is_its_own_failure(write: Write, app_dir: Path) -> None:
    """A module that exists but imports a missing one failed itself: a ``TargetFailed``
    with the ``ModuleNotFoundError`` (and its traceback), not "no module named tasks"."""
    write("tasks", "import not_installed_anywhere\n")
    with pytest.raises(TargetFailed) as caught:
        load("tasks:app", app_dir)
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)
    assert caught.value.__cause__.name == "not_installed_anywhere"


def test_a_factory_that_raises_is_a_failure(write: Write, app_dir: Path) -> None:
    """The factory's exception is the cause of a ``TargetFailed``."""
    write("tasks", "def create():\n    raise KeyError('REDIS_URL')\n")
    with pytest.raises(TargetFailed) as caught:
        load("tasks:create", app_dir)
    assert isinstance(caught.value.__cause__, KeyError)
    assert "create() raised" in str(caught.value)

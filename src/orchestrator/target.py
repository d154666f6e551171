"""``orchestrator run TARGET``: the application a ``module:attribute`` names, as uvicorn's
and Celery's ``-A`` targets do.

The attribute is an ``Application``, or a callable taking no argument that returns one.
A target that names nothing usable raises ``TargetError`` (one line); an exception raised
by the user's own code, while its module is imported or its factory called, is kept as the
``__cause__`` of ``TargetFailed``, whose traceback the command shows.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from dataclasses import dataclass
from types import ModuleType, TracebackType

from orchestrator.application import Application
from orchestrator.errors import TargetError, TargetFailed

__all__ = ["DEMO_TARGET", "Target", "load_target", "user_traceback"]

DEMO_TARGET = "orchestrator.demo:demo_app"
"""What ``orchestrator run`` runs without a TARGET."""

EXAMPLE = "worker:app"


def _dotted(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed ``module:attribute`` (the attribute may be dotted: ``module:obj.app``)."""

    module: str
    attribute: str

    @classmethod
    def parse(cls, text: str) -> Target:
        """Read ``module:attribute``.

        Raises:
            TargetError: when ``text`` is not two dotted Python names around a colon. The
                text is not repeated: an argument typed in the wrong place may be a secret.
        """
        module, colon, attribute = text.partition(":")
        if not colon or not _dotted(module) or not _dotted(attribute):
            raise TargetError(
                "TARGET must be MODULE:ATTRIBUTE, dotted Python names (for example "
                f"{EXAMPLE}); the argument given is not shown"
            )
        return cls(module, attribute)

    def __str__(self) -> str:
        return f"{self.module}:{self.attribute}"


def load_target(target: Target, app_dir: str | None = None) -> Application:
    """Import ``target``'s module (``app_dir`` first on ``sys.path``) and return its
    application.

    Raises:
        TargetError: no such module or attribute, or not an application.
        TargetFailed: the module's import, or the factory, raised (``__cause__``).
    """
    if app_dir is not None:
        sys.path.insert(0, os.path.abspath(app_dir))
    found = _attribute(_import(target, app_dir), target)
    if isinstance(found, Application):
        return found
    if inspect.isclass(found) and not issubclass(found, Application):
        raise TargetError(
            f"TARGET {target}: {target.attribute} is the class {found.__name__}, not an "
            "Application nor a callable returning one"
        )
    if not callable(found):
        raise TargetError(
            f"TARGET {target}: {target.attribute} is {_kind(found)}, not an Application "
            "nor a callable returning one"
        )
    if _needs_arguments(found):
        raise TargetError(
            f"TARGET {target}: {target.attribute} takes arguments; name an Application or "
            "a callable taking none that returns one"
        )
    try:
        made = found()
    except Exception as exc:
        raise TargetFailed(f"TARGET {target}: {target.attribute}() raised") from exc
    if inspect.iscoroutine(made):
        made.close()  # never awaited: say so once, not as a RuntimeWarning at exit
        raise TargetError(
            f"TARGET {target}: {target.attribute}() returned a coroutine (an async def); "
            "the factory must be a plain function returning an Application"
        )
    if not isinstance(made, Application):
        raise TargetError(
            f"TARGET {target}: {target.attribute}() returned {_kind(made)}, not an Application"
        )
    return made


def _import(target: Target, app_dir: str | None) -> ModuleType:
    try:
        return importlib.import_module(target.module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if target.module == missing or target.module.startswith(missing + "."):
            where = os.path.abspath(app_dir or os.curdir)
            raise TargetError(
                f"TARGET {target}: no module named {missing!r} in {where} (--app-dir) "
                "or the installed packages"
            ) from None
        raise TargetFailed(f"TARGET {target}: importing {target.module} raised") from exc
    except Exception as exc:
        raise TargetFailed(f"TARGET {target}: importing {target.module} raised") from exc


def _attribute(module: ModuleType, target: Target) -> object:
    found: object = module
    for name in target.attribute.split("."):
        try:
            found = getattr(found, name)
        except AttributeError:
            apps = sorted(k for k, v in vars(module).items() if isinstance(v, Application))
            hint = f" (its applications: {', '.join(apps)})" if apps else ""
            raise TargetError(
                f"TARGET {target}: module {target.module!r} has no attribute "
                f"{target.attribute!r}{hint}"
            ) from None
    return found


def _needs_arguments(fn: object) -> bool:
    try:
        signature = inspect.signature(fn)  # type: ignore[arg-type]
    except (TypeError, ValueError):  # a builtin without one: let the call say
        return False
    return any(
        p.default is p.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        for p in signature.parameters.values()
    )


def _kind(value: object) -> str:
    """What a value is, for an error line, without its (possibly secret) content."""
    if value is None:
        return "None"
    if inspect.ismodule(value):
        return "a module"
    return f"an object of type {type(value).__name__}"


def user_traceback(exc: BaseException) -> list[str]:
    """``exc``'s traceback from the first frame outside the import machinery and this
    module: what the user's own code did."""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None and _ours(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return traceback.format_exception(type(exc), exc, tb or exc.__traceback__)


_IMPORTLIB = os.path.dirname(importlib.__file__) + os.sep


def _ours(filename: str) -> bool:
    return (
        filename == __file__
        or filename.startswith("<frozen importlib")
        or filename.startswith(_IMPORTLIB)
    )

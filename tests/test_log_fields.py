"""No log call in src/ uses a key that structlog or its renderers keep for themselves.

structlog's ``ConsoleRenderer`` treats ``stack`` as preformatted text and ``exception`` as a
formatted traceback (a list there raised ``TypeError`` in every console log); ``event``,
``level``, ``timestamp`` and ``logger`` are written by the chain and would be overwritten or
clash. ``exc_info`` is structlog's own argument for attaching an exception and stays allowed
for that, with an exception or ``True`` as its value.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "orchestrator"
RESERVED = frozenset({"stack", "exception", "event", "level", "timestamp", "logger"})
LOG_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical",
                         "fatal", "msg"})  # fmt: skip
BIND_METHODS = frozenset({"bind", "new", "bind_contextvars"})  # context: keywords only


def _dict_keys(node: ast.expr) -> Iterator[tuple[str, int]]:
    if isinstance(node, ast.Dict):
        for key in node.keys:
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                yield key.value, key.lineno
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        yield from ((kw.arg, kw.value.lineno) for kw in node.keywords if kw.arg)


def _assigned_dicts(scope: ast.AST) -> dict[str, list[ast.expr]]:
    """Names bound to a dict literal (or ``dict(...)``) anywhere in ``scope``."""
    out: dict[str, list[ast.expr]] = {}
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict | ast.Call):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out.setdefault(target.id, []).append(node.value)
    return out


def offending_keys(source: str) -> list[tuple[int, str]]:
    """(line, key) of every reserved key given to a logging call in ``source``.

    Keys come from the call's keywords, from ``**{...}`` literals and from ``**name`` where
    ``name`` is bound to a dict literal in the same function.
    """
    tree = ast.parse(source)
    found: list[tuple[int, str]] = []
    scopes = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    for scope in [tree, *scopes]:
        dicts = _assigned_dicts(scope)
        for node in ast.walk(scope):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            named = bool(node.args) and isinstance(node.args[0], ast.Constant)
            if not (node.func.attr in BIND_METHODS or (node.func.attr in LOG_METHODS and named)):
                continue  # a log call starts with its event name
            for kw in node.keywords:
                if kw.arg in RESERVED:
                    found.append((kw.value.lineno, kw.arg))
                elif kw.arg is None and isinstance(kw.value, ast.Name):
                    for value in dicts.get(kw.value.id, []):
                        found += [(line, k) for k, line in _dict_keys(value) if k in RESERVED]
                elif kw.arg is None:
                    found += [(line, k) for k, line in _dict_keys(kw.value) if k in RESERVED]
    return sorted(set(found))


def test_no_log_call_in_src_uses_a_reserved_key() -> None:
    """Every module under src/ passes: the keys above are never log fields."""
    bad = {
        f"{path.relative_to(SRC)}:{line} {key}": None
        for path in sorted(SRC.rglob("*.py"))
        for line, key in offending_keys(path.read_text())
    }
    assert not bad, f"reserved keys used as log fields: {list(bad)}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('log.warning("blocked", stack=[])', [(1, "stack")]),
        ('log.error("x", exception="text")', [(1, "exception")]),
        ('def f():\n    fields = {"level": 1}\n    log.info("x", **fields)', [(2, "level")]),
        ('log.info("x", **{"timestamp": 1})', [(1, "timestamp")]),
        ('log.bind(logger="x").info("y")', [(1, "logger")]),
        ("structlog.contextvars.bind_contextvars(event=1)", [(1, "event")]),
        ('log.error("x", exc_info=exc, frames=[])', []),
        ('{"stack": []}', []),  # a plain dict (a JSON answer) is no log call
        ("queue.get(level=1)", []),  # neither a log method nor an event name
    ],
    ids=[
        "keyword",
        "exception",
        "named-dict",
        "literal-dict",
        "bind",
        "contextvars",
        "allowed",
        "plain-dict",
        "not-a-log-call",
    ],
)
def test_the_check_finds_what_it_must(source: str, expected: list[tuple[int, str]]) -> None:
    """The scan itself catches each way a reserved key reaches a log call."""
    assert offending_keys(source) == expected

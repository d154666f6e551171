"""Settings from text: ``ORCHESTRATOR_*`` variables, flag values and token files.

The library never reads the environment by itself: ``from_env`` is called by the CLI, or by
an application that wants the same variables.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from orchestrator.config import ENV_PREFIX, CoreSettings, HttpSettings
from orchestrator.errors import ConfigError

__all__ = [
    "OTHER_VARIABLES",
    "env_name",
    "from_env",
    "parse_bool",
    "parse_value",
    "read_token_file",
    "unknown_variables",
]

T = TypeVar("T")

OTHER_VARIABLES = frozenset({"ORCHESTRATOR_HTTP_TOKEN_FILE", "ORCHESTRATOR_URL"})
"""Variables read by the command line besides one per settings field."""

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def env_name(spec: dataclasses.Field[Any]) -> str:
    """The environment variable of a settings field (``metadata["env"]`` or derived)."""
    return str(spec.metadata.get("env", ENV_PREFIX + spec.name.upper()))


def parse_bool(text: str, *, empty: bool | None = None) -> bool | None:
    """``1/true/yes/on`` → True, ``0/false/no/off`` → False (any case), else None.

    Args:
        text: the text to read.
        empty: what an empty text means (None: not a boolean).
    """
    low = text.strip().lower()
    if not low:
        return empty
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    return None


def parse_value(name: str, hint: Any, raw: str) -> Any:
    """Parse ``raw`` text (from a flag or the environment) into the field's type.

    Raises:
        ConfigError: when the text does not parse.
    """
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if raw.strip().lower() in ("", "none", "null", "off"):
            return None
        (hint,) = [a for a in args if a is not type(None)]
        return parse_value(name, hint, raw)
    if origin is tuple:
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    try:
        if hint is bool:
            value = parse_bool(raw)
            if value is None:
                raise ValueError(raw)
            return value
        if hint is int:
            return int(raw)
        if hint is float:
            return float(raw)
    except ValueError:
        raise ConfigError(f"{name}: cannot parse {raw!r} as {hint.__name__}") from None
    return raw


def from_env(cls: type[T], environ: Mapping[str, str], **explicit: Any) -> T:
    """Build settings ``cls`` from ``environ``, with ``explicit`` values taking precedence.

    A value from the environment that is out of range is reported with its variable's name.

    Raises:
        ConfigError: for unknown explicit names and unparsable or invalid values.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(explicit) - set(fields))
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    from_environment: dict[str, str] = {}
    for name, spec in fields.items():
        var = env_name(spec)
        if name in explicit:
            values[name] = explicit[name]
        elif var in environ:
            values[name] = parse_value(var, hints[name], environ[var])
            from_environment[name] = var
    try:
        return cls(**values)
    except ConfigError as exc:
        source = from_environment.get(exc.setting or "")
        if source is None:
            raise
        raise ConfigError(f"{source}: {exc}", setting=exc.setting) from None


def known_variables() -> frozenset[str]:
    """Every ``ORCHESTRATOR_*`` variable the settings and the command line read."""
    fields = (*dataclasses.fields(CoreSettings), *dataclasses.fields(HttpSettings))
    return frozenset(env_name(f) for f in fields) | OTHER_VARIABLES


def unknown_variables(names: Iterable[str]) -> list[str]:
    """The ``ORCHESTRATOR_*`` names among ``names`` that nothing reads (a typo, usually)."""
    known = known_variables()
    return sorted(n for n in names if n.startswith(ENV_PREFIX) and n not in known)


def read_token_file(path: str) -> tuple[str, ...]:
    """Tokens from a file, one per line (blank lines and ``#`` comments ignored).

    Raises:
        ConfigError: when the file cannot be read or holds no token; the message is a
            sentence that names the file, never its content.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        raise ConfigError(f"token file {path!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"token file {path!r} is a directory, not a file") from None
    except PermissionError:
        raise ConfigError(f"token file {path!r} cannot be read: permission denied") from None
    except UnicodeDecodeError:
        raise ConfigError(f"token file {path!r} is not UTF-8 text") from None
    except OSError as exc:
        reason = (exc.strerror or "input/output error").lower()
        raise ConfigError(f"token file {path!r} cannot be read: {reason}") from None
    tokens = tuple(t.strip() for t in lines if t.strip() and not t.strip().startswith("#"))
    if not tokens:
        raise ConfigError(
            f"token file {path!r} holds no token (one per line; blank lines and # comments "
            "are ignored)"
        )
    return tokens

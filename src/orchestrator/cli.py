"""Command line: ``orchestrator run [TARGET]`` runs an application (the demo without a
TARGET); ``orchestrator status`` and ``orchestrator wait`` look at a running one over HTTP
(:mod:`orchestrator.terminal`); ``orchestrator enqueue`` adds a job to a Redis stream
(:mod:`orchestrator.producer`)."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from orchestrator.config import CoreSettings, HttpSettings, split_settings
from orchestrator.environment import env_name, from_env, read_token_file
from orchestrator.errors import ConfigError
from orchestrator.producer import add_enqueue, run_enqueue
from orchestrator.sources.url import parse_source_url
from orchestrator.terminal.options import add_status, add_wait
from orchestrator.version import __version__

__all__ = ["COMMAND_DEFAULTS", "FLAGS", "Flag", "build_parser", "main", "settings_from"]

TOKEN_SOURCES = (
    "tokens come from ORCHESTRATOR_HTTP_TOKEN or --token-file "
    "(ORCHESTRATOR_HTTP_TOKEN_FILE), never from an argument"
)

RUN_EPILOG = (
    "TARGET is MODULE:ATTRIBUTE naming an Application, or a callable returning one, in a "
    "module importable from --app-dir or the installed packages; without it the demo runs. "
    "Flags win over ORCHESTRATOR_* environment variables (each one is listed in "
    "docs/configuration.md), which win over what the module set. The bearer token is never "
    "a flag: " + TOKEN_SOURCES + ". SIGINT or SIGTERM drains, then stops; a second one stops "
    "at once. Exit status: 0 after a clean stop, 1 when the application cannot start "
    "(the module raised while imported, or the HTTP port is in use), 2 on a usage error "
    "(a TARGET naming no application included)."
)

_OPTION_NAME = re.compile(r"--[a-z][a-z-]{0,40}")
"""What an unknown option is shown as: anything else might be a value (a token)."""


class _Parser(argparse.ArgumentParser):
    """One-line errors with exit 2, no abbreviations, never an unknown argument's value."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # `--token x` must not mean `--token-file x`
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(unrecognized(extras))
        return parsed


def unrecognized(extras: Sequence[str]) -> str:
    """The error for unknown arguments, naming option names only, never a value."""
    names = [a.split("=", 1)[0] for a in extras]
    shown = list(dict.fromkeys(n for n in names if _OPTION_NAME.fullmatch(n)))
    hidden = len(extras) - sum(1 for n in names if n in shown)
    parts = []
    if shown:
        parts.append(f"unrecognized option{'s' if len(shown) > 1 else ''} {', '.join(shown)}")
    if hidden:
        parts.append(f"{hidden} unexpected argument{'s' if hidden > 1 else ''} (not shown)")
    hint = TOKEN_SOURCES if any("tok" in n.lower() for n in names) else "see --help"
    return f"{' and '.join(parts)}; {hint}"


def _number(text: str, *, kind: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite {kind}: {text!r}")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


def _rate(text: str) -> float:
    return _number(text, kind="rate")


def _seconds(text: str) -> float:
    return _number(text, kind="number of seconds")


@dataclass(frozen=True, slots=True)
class Flag:
    """A setting that ``orchestrator run`` takes as a flag.

    Args:
        setting: the settings field; its variable and default are shown in the help.
        help: what the setting does.
        parse: reads the flag's value; None makes the flag a switch that sets ``switch``.
        option: the flag (default: ``--`` and the setting with dashes).
        switch: the value a switch sets.
    """

    setting: str
    help: str
    parse: Callable[[str], Any] | None = None
    option: str = ""
    switch: object = None

    @property
    def name(self) -> str:
        """The flag as typed (``--workers``)."""
        return self.option or "--" + self.setting.replace("_", "-")


FLAGS = (
    Flag("workers", "worker tasks", int),
    Flag("queue_size", "router capacity", int),
    Flag("pool_max_size", "most pooled connections", int),
    Flag("http_port", "HTTP API port; 0 picks a free one", int),
    Flag("http_host", "HTTP API bind address", str),
    Flag("enable_http", "do not serve the HTTP API", option="--no-http", switch=False),
    Flag("drain_delay", "seconds /ready answers 503 before HTTP stops", _seconds),
    Flag(
        "source",
        "take jobs from a Redis stream too: redis://host:6379/0?stream=jobs&group=workers",
        str,
    ),
)
"""The flagged settings: one record each drives the parser, the merge and the sources.
Secrets are never flags: tokens come from the environment or a file."""

COMMAND_DEFAULTS: Mapping[str, object] = {
    "enable_http": True,
    "http_required": True,
    "drain_delay": 5.0,
}
"""The command's own defaults, over the settings' ones, where no flag or variable gives a
value: it serves HTTP, a port it cannot bind stops it, and after SIGTERM ``/ready`` answers
503 for 5 s while the server still answers."""

_FIELDS = {f.name: f for cls in (CoreSettings, HttpSettings) for f in dataclasses.fields(cls)}


def _help(flag: Flag) -> str:
    """A flag's help: its text, and the default (the command's, else the settings') and the
    variable of its setting."""
    var = env_name(_FIELDS[flag.setting])
    if flag.parse is None:
        return f"{flag.help} ({var}={str(flag.switch).lower()})"
    default = COMMAND_DEFAULTS.get(flag.setting, _FIELDS[flag.setting].default)
    return f"{flag.help} (default {default}; {var})"


def build_parser() -> argparse.ArgumentParser:
    """The ``orchestrator`` argument parser."""
    parser = _Parser(
        prog="orchestrator",
        description="asyncio application orchestrator with an HTTP observability API",
        epilog="Run `orchestrator COMMAND --help` for a command's options and exit status.",
    )
    parser.add_argument("--version", action="version", version=f"orchestrator {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser(
        "run",
        help="run an application (module:attribute), or the demo",
        description="Run the application TARGET names, or the demo, with its HTTP API.",
        epilog=RUN_EPILOG,
    )
    run.add_argument("target", nargs="?", metavar="TARGET",
                     help="MODULE:ATTRIBUTE, e.g. worker:app (default: the demo)")  # fmt: skip
    run.add_argument(
        "--app-dir",
        metavar="DIR",
        default=".",
        help="folder put first on the import path for TARGET's module (default: the current one)",
    )
    for flag in FLAGS:
        if flag.parse is None:
            run.add_argument(flag.name, dest=flag.setting, action="store_const",
                             const=flag.switch, help=_help(flag))  # fmt: skip
        else:
            run.add_argument(flag.name, dest=flag.setting, type=flag.parse, help=_help(flag))
    run.add_argument(
        "--rate",
        type=_rate,
        help="demo jobs submitted per second (default 50; 0 = none; not with a TARGET)",
    )
    run.add_argument(
        "--duration", type=_seconds, help="stop after this many seconds (default: until a signal)"
    )
    run.add_argument(
        "--stop-timeout",
        type=_seconds,
        default=10.0,
        help="seconds jobs in flight get at shutdown (default 10)",
    )
    run.add_argument(
        "--token-file",
        metavar="PATH",
        help="file of bearer tokens, one per line (ORCHESTRATOR_HTTP_TOKEN_FILE; "
        "or put the token itself in ORCHESTRATOR_HTTP_TOKEN)",
    )
    run.add_argument(
        "--log-format",
        choices=("json", "console", "auto"),
        default="auto",
        help="json lines, console text, or auto: console on a terminal, json "
        "otherwise (default auto)",
    )
    run.add_argument(
        "--log-level",
        type=str.lower,
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="lowest level logged (default info)",
    )
    add_status(sub)
    add_wait(sub)
    add_enqueue(sub)
    return parser


def settings_from(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    module: Mapping[str, object] | None = None,
) -> tuple[CoreSettings, HttpSettings, dict[str, str]]:
    """Settings from flags (when given) over ``ORCHESTRATOR_*`` variables over what the
    TARGET's ``module`` set over the command's defaults over the settings' defaults, and
    where each came from, for ``/debug/config``: ``flag``, ``file`` (the token file),
    ``environment``, ``module`` or ``command`` (one of ``COMMAND_DEFAULTS``); the settings
    missing from the sources are at their default.

    Raises:
        ConfigError: on an invalid value, naming its flag or variable.
    """
    sources = {name: "environment" for name, f in _FIELDS.items() if env_name(f) in environ}
    given = {name: value for name, value in (module or {}).items() if name not in sources}
    sources.update(dict.fromkeys(given, "module"))
    defaults = {k: v for k, v in COMMAND_DEFAULTS.items() if k not in sources}
    given.update(defaults)
    sources.update(dict.fromkeys(defaults, "command"))
    flagged = {f.setting: f for f in FLAGS if getattr(args, f.setting) is not None}
    given.update({name: getattr(args, name) for name in flagged})
    sources.update(dict.fromkeys(flagged, "flag"))
    token_file = args.token_file or environ.get("ORCHESTRATOR_HTTP_TOKEN_FILE")
    if token_file:
        given["http_token"], sources["http_token"] = read_token_file(token_file), "file"
    core, http = split_settings(given)
    try:
        settings = from_env(CoreSettings, environ, **core)
        if settings.source is not None:
            try:
                parse_source_url(settings.source)
            except ConfigError as exc:
                raise ConfigError(str(exc), setting="source") from None
        return settings, from_env(HttpSettings, environ, **http), sources
    except ConfigError as exc:
        if exc.setting in flagged:
            raise ConfigError(f"{flagged[exc.setting].name}: {exc}", setting=exc.setting) from None
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``orchestrator`` command; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if args.command == "status":
        from orchestrator.terminal.status import run_status  # the client, only when asked

        return run_status(args, os.environ)
    if args.command == "enqueue":
        return run_enqueue(args)
    if args.command == "wait":
        from orchestrator.terminal.wait import run_wait

        return run_wait(args, os.environ)
    from orchestrator.launch import launch  # the application and aiohttp

    return launch(args, os.environ, lambda module: settings_from(args, os.environ, module))

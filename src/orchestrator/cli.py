"""Command line: ``orchestrator run`` starts the demo application; ``orchestrator status``
and ``orchestrator wait`` look at a running one over HTTP (:mod:`orchestrator.terminal`)."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import structlog

from orchestrator.config import CoreSettings, HttpSettings
from orchestrator.environment import env_name, from_env, read_token_file, unknown_variables
from orchestrator.errors import ConfigError, HttpServerError, OrchestratorError
from orchestrator.log import configure_logging
from orchestrator.terminal.options import add_status, add_wait
from orchestrator.version import __version__

__all__ = ["build_parser", "main", "settings_from"]

log = structlog.get_logger("orchestrator.cli")

CLI_DRAIN_DELAY = 5.0
"""Seconds ``orchestrator run`` keeps answering (``/ready`` 503) after SIGTERM."""

TOKEN_SOURCES = (
    "tokens come from ORCHESTRATOR_HTTP_TOKEN or --token-file "
    "(ORCHESTRATOR_HTTP_TOKEN_FILE), never from an argument"
)

RUN_EPILOG = (
    "Settings not given as flags come from ORCHESTRATOR_* environment variables (each one "
    "is listed in docs/configuration.md); flags win over them. The bearer token is never a "
    "flag: " + TOKEN_SOURCES + ". SIGINT or SIGTERM drains, then stops; a second one stops "
    "at once. Exit status: 0 after a clean stop, 1 when the application cannot start "
    "(for example, the HTTP port is in use), 2 on a usage error."
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


_FIELDS = {f.name: f for cls in (CoreSettings, HttpSettings) for f in dataclasses.fields(cls)}


def _about(name: str, text: str, default: object = dataclasses.MISSING) -> str:
    """Help for a settings flag: its text, default (from the settings) and variable."""
    spec = _FIELDS[name]
    value = spec.default if default is dataclasses.MISSING else default
    return f"{text} (default {value}; {env_name(spec)})"


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
        help="start the demo application",
        description="Start the demo application with its HTTP API.",
        epilog=RUN_EPILOG,
    )
    run.add_argument("--workers", type=int, help=_about("workers", "worker tasks"))
    run.add_argument("--queue-size", type=int, help=_about("queue_size", "router capacity"))
    run.add_argument(
        "--pool-max-size", type=int, help=_about("pool_max_size", "most pooled connections")
    )
    run.add_argument(
        "--rate",
        type=_rate,
        default=50.0,
        help="demo jobs submitted per second (default 50; 0 = none)",
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
        "--http-port", type=int, help=_about("http_port", "HTTP API port; 0 picks a free one")
    )
    run.add_argument("--http-host", help=_about("http_host", "HTTP API bind address"))
    run.add_argument(
        "--no-http",
        action="store_true",
        help="do not serve the HTTP API (ORCHESTRATOR_HTTP_ENABLED=false)",
    )
    run.add_argument(
        "--drain-delay",
        type=_seconds,
        help=_about("drain_delay", "seconds /ready answers 503 before HTTP stops", CLI_DRAIN_DELAY),
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
    return parser


_FLAGS = {
    "workers": "--workers",
    "queue_size": "--queue-size",
    "pool_max_size": "--pool-max-size",
    "http_port": "--http-port",
    "http_host": "--http-host",
    "drain_delay": "--drain-delay",
}


def _given(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def settings_from(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[CoreSettings, HttpSettings]:
    """Settings from flags (when given) over ``ORCHESTRATOR_*`` variables over defaults.

    The command serves HTTP unless ``--no-http`` or ``ORCHESTRATOR_HTTP_ENABLED=false``, and
    a port it cannot bind stops it (``ORCHESTRATOR_HTTP_REQUIRED=false`` runs on without).

    Raises:
        ConfigError: on an invalid value, naming its flag or variable.
    """
    core_flags = _given(args, "workers", "queue_size", "pool_max_size")
    http = _given(args, "http_port", "http_host", "drain_delay")
    flags = {**core_flags, **http}
    if "drain_delay" not in http and "ORCHESTRATOR_HTTP_DRAIN_DELAY" not in environ:
        http["drain_delay"] = CLI_DRAIN_DELAY
    if "ORCHESTRATOR_HTTP_REQUIRED" not in environ:
        http["http_required"] = True
    token_file = args.token_file or environ.get("ORCHESTRATOR_HTTP_TOKEN_FILE")
    if token_file:
        http["http_token"] = read_token_file(token_file)
    if args.no_http:
        http["enable_http"] = False
    elif "ORCHESTRATOR_HTTP_ENABLED" not in environ:
        http["enable_http"] = True
    try:
        return from_env(CoreSettings, environ, **core_flags), from_env(
            HttpSettings, environ, **http
        )
    except ConfigError as exc:
        if exc.setting in flags:
            raise ConfigError(f"{_FLAGS[exc.setting]}: {exc}", setting=exc.setting) from None
        raise


def sources_from(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, str]:
    """Where each setting the command sets came from, for ``/debug/config``: ``flag``,
    ``environment``, ``file`` (the token file) or ``command`` (this command's own default,
    e.g. HTTP on and required); the settings missing here are at their default."""
    fields = (*dataclasses.fields(CoreSettings), *dataclasses.fields(HttpSettings))
    sources = {f.name: "environment" for f in fields if env_name(f) in environ}
    sources.update(dict.fromkeys(_given(args, *_FLAGS), "flag"))
    for name in ("drain_delay", "http_required", "enable_http"):
        sources.setdefault(name, "command")
    if args.no_http:
        sources["enable_http"] = "flag"
    if args.token_file or environ.get("ORCHESTRATOR_HTTP_TOKEN_FILE"):
        sources["http_token"] = "file"
    return sources


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
    if args.command == "wait":
        from orchestrator.terminal.wait import run_wait

        return run_wait(args, os.environ)
    try:
        settings, http = settings_from(args, os.environ)
    except ConfigError as exc:
        print(f"orchestrator: error: {exc}", file=sys.stderr)
        return 2
    sink = configure_logging(args.log_format, args.log_level, buffered=True)
    unknown = unknown_variables(os.environ)
    if unknown:  # names only: a mistyped token variable must not print the token
        log.warning(
            "environment_unknown",
            variables=unknown,
            detail="no setting reads these; see docs/configuration.md",
        )
    from orchestrator.run import run_command  # the demo, the application and aiohttp

    try:
        return run_command(args, settings, http, sink, sources=sources_from(args, os.environ))
    except HttpServerError as exc:
        print(
            f"orchestrator: error: {exc} (choose another with --http-port or --http-host, "
            "or run without the API with --no-http)",
            file=sys.stderr,
        )
        return 1
    except OrchestratorError as exc:
        print(f"orchestrator: error: {exc}", file=sys.stderr)
        return 1

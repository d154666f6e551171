"""``orchestrator run`` once its arguments are parsed: the TARGET's application (the demo
without one), the command's settings over what its module set, then the run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping

import structlog

from orchestrator.config import CoreSettings, HttpSettings
from orchestrator.environment import unknown_variables
from orchestrator.errors import ConfigError, HttpServerError, OrchestratorError, TargetFailed
from orchestrator.introspection import explicit_settings
from orchestrator.log import LineBuffer, configure_logging
from orchestrator.run import run_command
from orchestrator.target import DEMO_TARGET, Target, load_target, user_traceback

__all__ = ["SettingsOver", "launch"]

log = structlog.get_logger("orchestrator.cli")

SettingsOver = Callable[[Mapping[str, object]], tuple[CoreSettings, HttpSettings, dict[str, str]]]
"""The command's settings over what a module set (``cli.settings_from``), with sources."""


def _error(sink: LineBuffer | None, message: object, code: int) -> int:
    """Print one error line after every log line logged so far; return ``code``."""
    if sink is not None:
        sink.drain()
    print(f"orchestrator: error: {message}", file=sys.stderr)
    return code


def launch(args: argparse.Namespace, environ: Mapping[str, str], settings: SettingsOver) -> int:
    """Load the application, apply the settings over it, run it until a signal; return the
    exit code: 2 for a bad TARGET or setting, 1 when the module raised (its traceback is
    printed, then one line) or the application cannot start."""
    sink = None
    try:
        if args.target is not None and args.rate is not None:
            raise ConfigError("--rate drives the demo's jobs; it does not apply to a TARGET")
        target = Target.parse(args.target or DEMO_TARGET)
        sink = configure_logging(args.log_format, args.log_level, buffered=True)
        app = load_target(target, args.app_dir if args.target is not None else None)
        app.reconfigure(*settings(explicit_settings(app)))
    except ConfigError as exc:  # a TargetError too
        return _error(sink, exc, 2)
    except TargetFailed as exc:
        if sink is not None:
            sink.drain()
        sys.stderr.writelines(user_traceback(exc.__cause__ or exc))
        return _error(sink, f"{exc} (traceback above)", 1)
    unknown = unknown_variables(environ)
    if unknown:  # names only: a mistyped token variable must not print the token
        log.warning(
            "environment_unknown",
            variables=unknown,
            detail="no setting reads these; see docs/configuration.md",
        )
    try:
        return run_command(args, app, sink, demo=args.target is None)
    except HttpServerError as exc:
        return _error(
            sink,
            f"{exc} (choose another with --http-port or --http-host, or run without the "
            "API with --no-http)",
            1,
        )
    except OrchestratorError as exc:
        return _error(sink, exc, 1)

"""`orchestrator run TARGET`: the command's settings over what the module set, and an
application rebuilt with them that keeps its handlers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from orchestrator import Application, CoreSettings, FakeClock, Job, NotRunning
from orchestrator.cli import build_parser, settings_from
from orchestrator.config import HttpSettings
from orchestrator.demo import demo_app
from orchestrator.health import ComponentHealth
from orchestrator.introspection import explicit_settings
from orchestrator.sources.base import Intake
from tests.fakes import FakeFactory


def sources_of(app: Application) -> dict[str, str]:
    """Each setting's source as ``/debug/config`` reports it."""
    config = app.debug_config()
    return {name: e["source"] for section in config.values() for name, e in section.items()}


def command_over(app: Application, argv: list[str], environ: dict[str, str]) -> Application:
    """``app`` with the settings ``orchestrator run argv`` gives it under ``environ``."""
    args = build_parser().parse_args(["run", "tasks:app", *argv])
    app.reconfigure(*settings_from(args, environ, explicit_settings(app)))
    return app


def test_flags_over_environment_over_module_over_command_defaults() -> None:
    """The precedence, lowest first: settings' defaults, the command's defaults, the
    module, the environment, the flags; /debug/config names each source."""
    module = Application(workers=8, queue_size=64, pool_max_size=3, drain_delay=1.0, name="w")
    environ = {"ORCHESTRATOR_QUEUE_SIZE": "32", "ORCHESTRATOR_POOL_MAX_SIZE": "5"}
    app = command_over(module, ["--pool-max-size", "6"], environ)
    s, h = app.settings, app.http_settings
    assert (s.name, s.workers, s.queue_size, s.pool_max_size) == ("w", 8, 32, 6)
    assert (h.drain_delay, h.enable_http, h.http_required) == (1.0, True, True)
    sources = sources_of(app)
    assert {k: sources[k] for k in ("name", "workers", "queue_size", "pool_max_size")} == {
        "name": "module", "workers": "module", "queue_size": "environment",
        "pool_max_size": "flag",
    }  # fmt: skip
    assert (sources["drain_delay"], sources["enable_http"]) == ("module", "command")
    assert sources["recycle_interval"] == "default"


def test_a_module_that_says_no_http_is_heard_and_a_variable_wins_over_it() -> None:
    """``enable_http=False`` given by the module beats the command's default (HTTP on);
    ``ORCHESTRATOR_HTTP_ENABLED`` beats the module."""
    assert not command_over(Application(enable_http=False), [], {}).http_settings.enable_http
    app = command_over(Application(enable_http=False), [], {"ORCHESTRATOR_HTTP_ENABLED": "1"})
    assert app.http_settings.enable_http
    assert sources_of(app)["enable_http"] == "environment"


def test_whole_settings_objects_count_where_they_differ_from_the_defaults() -> None:
    """A module that built ``CoreSettings``/``HttpSettings`` objects is heard for every value
    away from the default."""
    module = Application(CoreSettings(workers=2), http=HttpSettings(http_port=9000))
    assert explicit_settings(module) == {"workers": 2, "http_port": 9000}
    app = command_over(module, [], {})
    assert (app.settings.workers, app.http_settings.http_port) == (2, 9000)
    assert sources_of(app)["http_port"] == "module"


async def test_a_reconfigured_application_keeps_handlers_factory_and_clock(
    clock: FakeClock, factory: FakeFactory
) -> None:
    """After ``reconfigure`` the components follow the new settings, and the handlers,
    the connection factory and the clock registered before are still there."""
    app = Application(workers=1, connection_factory=factory, clock=clock)

    @app.handler("conn")
    async def conn(job: Job) -> object:
        return job.connection is not None and job.payload

    app.reconfigure(app.settings.replace(workers=3), app.http_settings, {"workers": "flag"})
    assert app.clock is clock
    async with app:
        assert len(app.workers.workers()) == 3
        assert await app.submit("conn", "ran") == "ran"
    assert factory.connect_calls >= 1


async def test_reconfigure_after_a_start_is_refused(app: Application) -> None:
    """Components that ran are never swapped underneath: ``reconfigure`` is for before the
    first start only."""
    with pytest.raises(NotRunning, match="cannot reconfigure"):
        app.reconfigure(app.settings, app.http_settings, {})


def test_the_demo_target_sets_nothing_so_the_command_runs_it_as_before() -> None:
    """The demo (``orchestrator run`` without a TARGET) leaves every setting to the command:
    no ``module`` source, the command's defaults and the flags as they always were."""
    assert explicit_settings(demo_app()) == {}
    args = build_parser().parse_args(["run", "--workers", "5"])
    app = demo_app()
    app.reconfigure(*settings_from(args, {}, explicit_settings(app)))
    assert "module" not in sources_of(app).values()
    assert (app.settings.workers, app.http_settings.drain_delay) == (5, 5.0)
    assert set(app.get_stats()["registry"]["kinds"]) == {"io", "cpu", "flaky"}


class RecordingSource:
    """A source that only records the intake it is attached to."""

    name = "recording"

    def __init__(self) -> None:
        self.intake: Intake | None = None

    def attach(self, intake: Intake) -> None:
        self.intake = intake

    async def start(self) -> None:
        pass

    def stop_reading(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def stats(self) -> Mapping[str, Any]:
        return {}

    def health(self) -> ComponentHealth:
        return ComponentHealth.ok()


def test_a_reconfigured_application_attaches_its_sources_to_the_new_intake() -> None:
    """A source the module added feeds the rebuilt router, not the one thrown away; the
    ``source`` setting a flag gives replaces the module's own."""
    app = Application(source="redis://127.0.0.1:1/0?stream=module&group=g")
    added = RecordingSource()
    app.add_source(added)
    old = app.intake
    flagged = app.settings.replace(source="redis://127.0.0.1:1/0?stream=flag&group=g")
    app.reconfigure(flagged, app.http_settings, {"source": "flag"})
    assert app.intake is not old
    assert added.intake is app.intake
    streams = sorted(s["stream"] for s in app.job_sources.stats().values() if "stream" in s)
    assert streams == ["flag"]
    assert len(app.job_sources) == 2

"""The job source protocol, what a source feeds (``Intake``), and the set of an
application's sources, run as one component."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from orchestrator.errors import ConfigError
from orchestrator.health import ComponentHealth
from orchestrator.job import Job, Origin

__all__ = ["Intake", "Source", "SourceSet"]


class Intake(Protocol):
    """What a source feeds: room is reserved before the source reads, so that a job it
    has taken from its broker is never refused."""

    def reserve(self, wanted: int) -> int:
        """Reserve up to ``wanted`` places for jobs about to be read: the number granted
        (0 when the application takes no more now)."""
        ...

    def release(self, places: int) -> None:
        """Give back reserved places that no job filled."""
        ...

    def submit_reserved(
        self, kind: str, payload: Any, origin: Origin
    ) -> tuple[Job, asyncio.Future[Any]]:
        """Fill one reserved place with a job: the job and the future of its outcome.

        Raises:
            UnknownJobKind: no handler for ``kind`` (the place is given back).
        """
        ...


@runtime_checkable
class Source(Protocol):
    """A job source: a component that reads jobs from outside and feeds an ``Intake``.

    ``attach`` is called when the source is added to an application, and again if the
    application rebuilds its parts before its first start (``orchestrator run`` applying
    its flags over a module's application). ``start``
    runs once the workers do; ``stop_reading`` stops reading at once when the application
    drains (the jobs in flight go on and are settled); ``stop`` ends what is left.
    """

    name: str

    def attach(self, intake: Intake) -> None: ...

    async def start(self) -> None: ...

    def stop_reading(self) -> None: ...

    async def stop(self) -> None: ...

    def stats(self) -> Mapping[str, Any]: ...

    def health(self) -> ComponentHealth: ...


class SourceSet:
    """An application's sources as one component (``sources``): started in order after
    the workers, told to stop reading when the application drains, stopped in reverse."""

    def __init__(self) -> None:
        self._sources: dict[str, Source] = {}
        self._named: tuple[str, Source] | None = None  # the ``source`` setting's

    def __len__(self) -> int:
        return len(self._sources)

    def add(self, source: Source, intake: Intake) -> None:
        """Attach ``source`` to ``intake`` and run it with the others.

        Raises:
            ConfigError: when a source of the same name is already there.
        """
        if source.name in self._sources:
            raise ConfigError(f"a source named {source.name!r} is already added")
        source.attach(intake)
        self._sources[source.name] = source

    def attach(self, intake: Intake, url: str | None = None) -> None:
        """Attach every source to ``intake`` (the application built or rebuilt its parts)
        and follow the ``source`` setting: add the source ``url`` names, in place of the one
        an earlier URL named."""
        for source in self._sources.values():
            source.attach(intake)
        named = self._named
        if named is not None and named[0] != url:
            self._sources.pop(named[1].name, None)
            self._named = None
        if url is not None and self._named is None:
            from orchestrator.sources.url import source_from_url  # it imports this module

            source = source_from_url(url)
            self.add(source, intake)
            self._named = (url, source)

    async def start(self) -> None:
        """Start each source in order; on a failure stop those started, and re-raise."""
        started: list[Source] = []
        try:
            for source in self._sources.values():
                await source.start()
                started.append(source)
        except BaseException:
            for source in reversed(started):
                await source.stop()
            raise

    def stop_reading(self) -> None:
        """Stop every source's reading at once."""
        for source in self._sources.values():
            source.stop_reading()

    async def stop(self) -> None:
        """Stop each source, in reverse.

        Raises:
            ExceptionGroup: of every source's error, after each was asked to stop.
        """
        errors: list[Exception] = []
        for source in reversed(self._sources.values()):
            try:
                await source.stop()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise ExceptionGroup("errors while stopping sources", errors)

    def stats(self) -> dict[str, Any]:
        """Each source's stats under its name."""
        return {name: dict(source.stats()) for name, source in self._sources.items()}

    def health(self) -> ComponentHealth:
        """Unhealthy when any source is, with each failing source's reason."""
        failing = []
        for name, source in self._sources.items():
            verdict = source.health()
            if not verdict.healthy:
                failing.append(f"{name}: {verdict.reason or 'unhealthy'}")
        if failing:
            return ComponentHealth.failing("; ".join(failing))
        return ComponentHealth.ok()

"""Job sources: components that take jobs from outside the process (a broker) and feed
them to the application. ``orchestrator.sources.redis`` needs the ``redis`` extra; this
package itself imports no broker client."""

from orchestrator.sources.base import Intake, Source, SourceSet

__all__ = ["Intake", "Source", "SourceSet"]

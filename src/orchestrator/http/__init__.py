"""The HTTP observability API; depends only on the ``Observable`` protocol."""

from orchestrator.http.app import create_app
from orchestrator.http.server import HttpServer
from orchestrator.http.snapshot import Snapshot, SnapshotCache
from orchestrator.http.state import HttpState

__all__ = ["HttpServer", "HttpState", "Snapshot", "SnapshotCache", "create_app"]

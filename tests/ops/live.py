"""What the ops tests' live application is: its token, workers and jobs done."""

from __future__ import annotations

__all__ = ["JOBS", "TOKEN", "WORKERS"]

TOKEN = "ops-test-token"
"""The bearer token the application under test requires on /metrics."""
WORKERS = 3
"""Workers of the application under test (``orchestrator_workers_configured``)."""
JOBS = 5
"""Jobs of kind ``echo`` submitted, all succeeded, before the application is handed over."""

"""The OpenAPI 3.1 description of the HTTP API, as data built from the HTTP settings.

``python -m orchestrator.http.openapi`` prints the reference document (``make openapi``
writes it to docs/openapi.yaml); the app serves its own at ``/openapi.json``.
"""

from orchestrator.http.openapi.paths import ADMIN_PATHS, REFERENCE, document, spec, summaries
from orchestrator.http.openapi.schemas import COMPONENTS, SECTIONS

__all__ = ["ADMIN_PATHS", "COMPONENTS", "REFERENCE", "SECTIONS", "document", "spec", "summaries"]

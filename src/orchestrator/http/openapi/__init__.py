"""The OpenAPI 3.1 description of the HTTP API, built from the route table and the settings.

``python -m orchestrator.http.openapi`` prints the reference document (``make openapi``
writes it to docs/openapi.yaml); each app serves its own at ``/openapi.json``.
"""

from orchestrator.http.openapi.document import REFERENCE, Document, spec
from orchestrator.http.openapi.schemas import COMPONENTS, SECTIONS

__all__ = ["COMPONENTS", "REFERENCE", "SECTIONS", "Document", "spec"]

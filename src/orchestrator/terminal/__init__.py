"""The terminal's view of a running instance: ``orchestrator status`` and ``orchestrator wait``.

A client of the HTTP API only: it imports neither the application, its components nor the
HTTP server, and talks to the instance with the standard library's HTTP client.
"""

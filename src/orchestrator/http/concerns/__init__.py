"""The request concerns, one per module, that ``chain.py`` runs around every route's view.

They are plain calls, not aiohttp middlewares (see ``chain.py`` and docs/architecture.md).
"""

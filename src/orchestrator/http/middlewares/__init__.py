"""Request middlewares, one concern per module."""

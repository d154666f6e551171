"""The package version, at the bottom of the import graph."""

__all__ = ["__version__"]

__version__ = "0.1.0"

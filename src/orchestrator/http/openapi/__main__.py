"""``python -m orchestrator.http.openapi``: print the reference document."""

from __future__ import annotations

import sys

import orjson

from orchestrator.http.openapi.document import REFERENCE, spec
from orchestrator.http.routes import ROUTES

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Print the document of the route table with ``REFERENCE`` settings: YAML, or JSON with
    ``--json`` (or without PyYAML).

    Args:
        argv: the arguments (``sys.argv[1:]`` when None).
    """
    args = sys.argv[1:] if argv is None else argv
    data = orjson.dumps(spec(REFERENCE, ROUTES), option=orjson.OPT_INDENT_2)
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML comes with the test extra
        args = [*args, "--json"]
    if "--json" in args:
        sys.stdout.write(data.decode() + "\n")
    else:  # from the JSON text: plain data, so no YAML anchors for shared objects
        sys.stdout.write(yaml.safe_dump(orjson.loads(data), sort_keys=False, width=100))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

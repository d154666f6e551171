"""``python -m orchestrator.http.openapi``: print the reference document."""

from __future__ import annotations

import sys

import orjson

from orchestrator.http.openapi.paths import REFERENCE, spec

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Print ``spec(REFERENCE)``: YAML, or JSON with ``--json`` (or without PyYAML).

    Args:
        argv: the arguments (``sys.argv[1:]`` when None).
    """
    args = sys.argv[1:] if argv is None else argv
    data = orjson.dumps(spec(REFERENCE), option=orjson.OPT_INDENT_2)
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

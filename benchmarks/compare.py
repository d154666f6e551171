"""Base against head in the same job: the quick under-load benchmark, alternately.

    make bench-compare BASE=<git ref>
    python benchmarks/compare.py <git ref> [--rounds N] [--json PATH]

A machine this noisy (one core's job capacity moves ±25 % from run to run) cannot compare
today's figure with one stored last week. This checks the base out in a scratch worktree
and measures both trees in alternate rounds of the same job, so drift hits both alike (the
way pytest-benchmark's ``--benchmark-compare`` and asv's ``continuous`` do it).

Both trees run under this tree's harness (``under_load.py``'s application process, pinned
to CPU 0, its pollers on CPU 1); only the ``orchestrator`` package differs: the base's
``src`` goes first on ``PYTHONPATH``. The base needs no install (the package is pure
Python); a base whose dependencies differ from this environment's fails at import with
Python's own error. A base without ``submit_nowait`` is offered its paced load with a task
per ``submit()``, the only way it had.

Each round, in alternating order, each tree: the capacity (a closed loop of submitters,
with the pollers), then the paced load at 50 % and at 150 % of the base's first capacity
(the same rate for both trees), with ``/health``, ``/ready``, ``/stats`` and ``/metrics``
polled. The figures are head / base per round; the verdict is the median of the rounds:

- capacity: head at least ``MIN_CAPACITY`` of the base's;
- each endpoint's p99 at each level: at most ``MAX_P99`` times the base's, where both p99s
  are counted as at least ``P99_FLOOR`` (a 0.3 → 0.6 ms move is not a regression to fail
  on).

Exit 0 when the head is within the band, 1 on a regression, 2 when the base cannot be
checked out. Traffic goes to 127.0.0.1 only; a run takes about 20 s a round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))  # run as a script from anywhere
from benchmarks.load_client import pin_this_process  # noqa: E402
from benchmarks.overload import median  # noqa: E402
from benchmarks.under_load import Instance  # noqa: E402

MIN_CAPACITY = 0.85
MAX_P99 = 1.5
P99_FLOOR = 0.001
LEVELS = (0.5, 1.5)
ENDPOINTS = ("/health", "/ready", "/stats", "/metrics")
SECONDS = 2.0
ROUNDS = 5


def checkout(ref: str, where: Path) -> Path:
    """Check ``ref`` out, detached, into ``where``; its package's parent directory."""
    done = subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(where), ref],
                          cwd=HERE.parent, capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        print(f"bench-compare: cannot check out {ref!r}: {done.stderr.strip()}", file=sys.stderr)
        raise SystemExit(2)
    return where / "src"


async def one_tree(log: Path, source: Path | None, rate: float | None) -> dict[str, Any]:
    """One tree's round: its capacity, then the paced levels at ``rate`` (its own capacity
    when ``rate`` is None)."""
    instance = Instance(log, {}, source=source)
    try:
        await instance.run({"cmd": "capacity", "seconds": 0.5}, pollers=False)  # warm up
        run = await instance.run({"cmd": "capacity", "seconds": SECONDS}, pollers=True)
        figures: dict[str, Any] = {"capacity": run["done"] / run["seconds"],
                                   "package": instance.package}  # fmt: skip
        for level in LEVELS:
            asked = level * (rate or figures["capacity"])
            paced = await instance.run({"cmd": "paced", "rate": asked, "seconds": SECONDS},
                                       pollers=True)  # fmt: skip
            figures[f"{level:.0%}"] = {path: paced["endpoints"][path]["p99"] for path in ENDPOINTS}
        return figures
    finally:
        instance.stop()


async def rounds(source: Path, count: int, log: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    rate: float | None = None
    for n in range(count):
        sides: dict[str, Any] = {}
        for side in ("base", "head") if n % 2 == 0 else ("head", "base"):
            sides[side] = await one_tree(log, source if side == "base" else None, rate)
            if rate is None and side == "base":
                rate = sides["base"]["capacity"]
        out.append(sides)
        print(f"round {n + 1}: capacity base {sides['base']['capacity']:,.0f}, head "
              f"{sides['head']['capacity']:,.0f} jobs/s", flush=True)  # fmt: skip
    return out


def verdict(runs: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The lines to print, and the regressions among them."""
    lines, regressions = [], []

    def judge(what: str, ratios: list[float], limit: float, at_least: bool) -> None:
        mid = median(ratios)
        ok = mid >= limit if at_least else mid <= limit
        bound = f"{'>=' if at_least else '<='} {limit:g}"
        line = (f"{what}: head/base {mid:.2f} (rounds {min(ratios):.2f} to "
                f"{max(ratios):.2f}; {bound}) {'ok' if ok else 'REGRESSION'}")  # fmt: skip
        lines.append(line)
        if not ok:
            regressions.append(line)

    judge("capacity", [r["head"]["capacity"] / r["base"]["capacity"] for r in runs],
          MIN_CAPACITY, at_least=True)  # fmt: skip
    for level in LEVELS:
        for path in ENDPOINTS:
            key = f"{level:.0%}"
            ratios = [max(r["head"][key][path], P99_FLOOR) / max(r["base"][key][path], P99_FLOOR)
                      for r in runs]  # fmt: skip
            judge(f"{path} p99 at {key}", ratios, MAX_P99, at_least=False)
    return lines, regressions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the git ref to compare this tree with")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="alternate rounds")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    pin_this_process(1)
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp) / "base"
        source = checkout(args.base, where)
        try:
            runs = asyncio.run(rounds(source, args.rounds, Path(tmp) / "app.log"))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(where)],
                           cwd=HERE.parent, check=False)  # fmt: skip
    print(f"base {args.base}: {runs[0]['base']['package']}; head: {runs[0]['head']['package']}")
    lines, regressions = verdict(runs)
    print("\n".join(lines))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"base": args.base, "rounds": runs}, indent=2) + "\n")
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())

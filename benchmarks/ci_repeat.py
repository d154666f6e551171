"""Run ``make bench-ci`` many times with every core kept busy, and tabulate its gates.

    python benchmarks/ci_repeat.py                      # 20 runs, one burner per core
    python benchmarks/ci_repeat.py --runs 5 --burners 0 # 5 runs on the machine as it is
    python benchmarks/ci_repeat.py --command "make bench-ci" --out bench-results/ci-repeat

A burner is ``python -c 'while True: pass'`` at nice 0, in a session of its own (so, where
the kernel groups processes by session for fair scheduling, as Linux's autogroup does,
each burner weighs as much as everything the benchmarks start together), left running
through every run; it never sleeps, so each core has a competitor at all times. Each run's
output goes to ``OUT/run-NN.log``; at the end the script prints, in Markdown, one row per
gate (its limit and its figure in every run), each run's wall time and exit status, the
CPU share each burner got and how busy the machine's cores were (``/proc/stat``). It
exits 1 when any run failed.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

GATE_LINE = re.compile(
    r"^GATE (?P<name>.+?): (?P<figure>[-\d.]+) .*?\(median of \d+ rounds, range "
    r"(?P<lo>[-\d.]+) to (?P<hi>[-\d.]+)\); limit (?P<op>[<>]=) (?P<limit>[\d.e+-]+): "
    r"(?P<verdict>ok|FAILED)$"
)


def cpu_ticks() -> tuple[int, int]:
    """Busy and total clock ticks of every core so far (``/proc/stat``)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def burner_cpu(pid: int) -> float:
    """CPU seconds the process has run (utime + stime, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--burners", type=int, default=os.cpu_count() or 1,
                        help="busy loops kept running (default: one per core)")  # fmt: skip
    parser.add_argument("--command", default="make bench-ci")
    parser.add_argument("--out", type=Path, default=Path("bench-results/ci-repeat"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    burn = [sys.executable, "-c", "while True: pass"]
    burners = [subprocess.Popen(burn, start_new_session=True) for _ in range(args.burners)]
    started, ticks = time.monotonic(), cpu_ticks()
    figures: dict[str, dict[int, str]] = {}
    limits: dict[str, str] = {}
    runs: list[tuple[float, int]] = []
    try:
        for n in range(1, args.runs + 1):
            log = args.out / f"run-{n:02d}.log"
            t0 = time.monotonic()
            with log.open("w") as out:
                status = subprocess.run(shlex.split(args.command), stdout=out,
                                        stderr=subprocess.STDOUT).returncode  # fmt: skip
            wall = time.monotonic() - t0
            runs.append((wall, status))
            failed = []
            for line in log.read_text().splitlines():
                match = GATE_LINE.match(line.strip())
                if match is None:
                    continue
                name = match["name"]
                mark = "" if match["verdict"] == "ok" else " FAILED"
                figures.setdefault(name, {})[n] = f"{float(match['figure']):.3g}{mark}"
                limits[name] = f"{match['op']} {match['limit']}"
                if mark:
                    failed.append(name)
            print(f"run {n:2d}: exit {status}, {wall:.0f} s"
                  + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)  # fmt: skip
        elapsed = time.monotonic() - started
        shares = [burner_cpu(p.pid) / elapsed for p in burners]
        busy, total = (now - then for now, then in zip(cpu_ticks(), ticks, strict=True))
    finally:
        for process in burners:
            process.kill()
            process.wait()
    header = "| gate | limit | " + " | ".join(str(n) for n in range(1, len(runs) + 1)) + " |"
    print("\n" + header)
    print("|" + "---|" * (len(runs) + 2))
    for name, by_run in figures.items():
        cells = " | ".join(by_run.get(n, "-") for n in range(1, len(runs) + 1))
        print(f"| {name} | {limits[name]} | {cells} |")
    print("| wall time, s | | " + " | ".join(f"{w:.0f}" for w, _ in runs) + " |")
    print("| exit status | | " + " | ".join(str(s) for _, s in runs) + " |")
    print(f"\n{len(runs)} runs, {sum(1 for _, s in runs if s == 0)} passed, "
          f"{elapsed / 60:.0f} min; {args.burners} burner(s), CPU share of a core each: "
          f"{', '.join(f'{s:.0%}' for s in shares) or 'none'}; cores busy "
          f"{busy / max(1, total):.0%} of the time")  # fmt: skip
    return 0 if all(s == 0 for _, s in runs) else 1


if __name__ == "__main__":
    sys.exit(main())

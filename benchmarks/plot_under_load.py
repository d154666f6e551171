"""Draw the latency-under-load curve from ``under_load.py --json`` output.

    python benchmarks/plot_under_load.py bench-results/under_load.json \
        docs/performance-under-load.png

``/health`` and ``/stats`` p50, p99 and max against the job load (share of the core's
capacity), on a log scale, with the 5 ms and 10 ms lines marked. Needs matplotlib (the
``bench`` extra: ``pip install -e '.[bench]'``), which is neither a runtime nor a test
dependency.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def plot(results: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    levels = results["levels"]
    x = [100 * level["level"] for level in levels]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    styles = {"/health": "tab:blue", "/stats": "tab:orange"}
    for path, color in styles.items():
        for key, line in (("p50", ":"), ("p99", "-"), ("max", "--")):
            y = [level["with"]["endpoints"][path][key] * 1000 for level in levels]
            ax.plot(x, y, line, color=color, marker="o", markersize=3, label=f"{path} {key}")
    for limit in (5, 10):
        ax.axhline(limit, color="grey", linewidth=0.8)
        ax.text(x[0], limit * 1.05, f"{limit} ms", color="grey", fontsize=8)
    ax.set_yscale("log")
    ticks = [t for t in (0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200) if t <= 2 * ax.get_ylim()[1]]
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("job load, % of one core's job capacity")
    ax.set_ylabel("latency seen by the poller, ms")
    cap = results["capacity"]["without"]
    ax.set_title(f"Probe latency under job load (capacity {cap:,.0f} jobs/s, defaults)")
    ax.set_xticks(x)
    ax.grid(True, which="both", axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out)
    print(f"plot: {out}")


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: plot_under_load.py RESULTS.json OUT.png", file=sys.stderr)
        return 2
    results = json.loads(Path(sys.argv[1]).read_text())
    plot(results, Path(sys.argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Load test: the demo application's HTTP API against a bare aiohttp server, on loopback.

Starts, in the same run, the demo application (``orchestrator run``, HTTP on 127.0.0.1,
token auth on, rate limit high enough never to reject, JSON logs at info into a file) and a
bare aiohttp server answering a constant body (the ceiling). Drives each for a fixed time
at 1, 16 and 64 keep-alive connections with ``wrk`` (or a built-in aiohttp client when
wrk is absent) and prints requests/s, p50, p99, the ratio to the bare server, and the
server's CPU time per request (all its threads, from ``/proc/PID/task/*/schedstat``, less
what its background tasks cost, measured for a second with no request).

Servers are pinned to CPU 0 and the load generator to CPU 1 when ``taskset`` exists.
Traffic goes to 127.0.0.1 only; every run is bounded by ``--duration``.

    python benchmarks/load.py                 # full run (make bench)
    python benchmarks/load.py --check         # exit 1 when a target is missed
    python benchmarks/load.py --quick --gates # make bench-ci: 5 rounds of 1 s, 16 connections

The CI gates (``--gates``, ``benchmarks/gate.py``) are the server's CPU time per request
as a multiple of the bare server's in the same round, median of the rounds, at most
``CPU_LIMITS[target]``; and, as in every mode, no error and no more ``get_stats()`` builds
than the snapshot's TTL allows. Requests/s and p99 at saturation measure how much CPU
the server was given as much as the server; CPU per request does not, so it is the gate.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))  # run as a script from anywhere
from benchmarks.gate import Gate, process_cpu_seconds
from benchmarks.load_client import Result, median_result, pinned, run_python, run_wrk

TOKEN = "load-test-token-0123456789"
HOST = "127.0.0.1"
CPU_LIMITS = {"/health": 2.0, "/stats": 5.0}
"""CI: the most CPU per request each target may take, as a multiple of bare aiohttp's."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def serve_bare(port: int) -> None:
    """Run the ceiling: aiohttp with one constant-body route and no access log."""
    from aiohttp import web

    body = b'{"status":"alive"}'

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/", handler)
    web.run_app(app, host=HOST, port=port, access_log=None, print=None)


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    idle_cpu: float = 0.0
    """CPU seconds per second the server spends with no request (background tasks)."""

    def measure_idle(self, seconds: float = 1.0) -> None:
        cpu = process_cpu_seconds(self.process.pid)
        time.sleep(seconds)  # sleep-ok: the server's CPU time with no request is the figure
        self.idle_cpu = (process_cpu_seconds(self.process.pid) - cpu) / seconds

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wait_ready(url: str, deadline: float) -> None:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"load: {url} did not become ready")
        time.sleep(0.1)  # polling a real process with a deadline


def start_bare() -> Server:
    port = free_port()
    cmd = [*pinned(0), sys.executable, __file__, "--serve-bare", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://{HOST}:{port}"
    wait_ready(url + "/", time.monotonic() + 30)
    return Server("bare", url, proc)


def start_app(log_path: Path, size: int) -> Server:
    port = free_port()
    env = dict(os.environ)
    env.update({
        "ORCHESTRATOR_HTTP_TOKEN": TOKEN,
        "ORCHESTRATOR_HTTP_RATE_LIMIT": "1000000000",
        "ORCHESTRATOR_POOL_MIN_SIZE": str(size),
        "ORCHESTRATOR_POOL_MAX_SIZE": str(max(size, 8)),
    })  # fmt: skip
    cmd = [*pinned(0), sys.executable, "-m", "orchestrator", "run", "--http-host", HOST,
           "--http-port", str(port), "--workers", str(size), "--log-format", "json",
           "--log-level", "info", "--rate", "50"]  # fmt: skip
    log = log_path.open("ab")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://{HOST}:{port}"
    wait_ready(url + "/ready", time.monotonic() + 120)
    return Server(f"app({size})", url, proc)


def stats_builds(server: Server) -> int:
    request = urllib.request.Request(
        server.url + "/stats/http", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        return int(json.load(resp)["snapshot"]["misses_total"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per level")
    parser.add_argument("--quick", action="store_true", help="5 rounds of 1 s, 16 connections")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--gates", action="store_true", help="exit 1 when a CI gate fails")
    parser.add_argument("--python-client", action="store_true", help="ignore wrk")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0
    duration, rounds = (1.0, 5) if args.quick else (args.duration, args.rounds)
    levels = [16] if args.quick else [1, 16, 64]
    use_wrk = shutil.which("wrk") is not None and not args.python_client
    drive = run_wrk if use_wrk else run_python
    auth = {"Authorization": f"Bearer {TOKEN}"}

    def as_client(path: str) -> dict[str, str]:
        """A probe sends no token (it is a public route); /stats is polled with it."""
        return {} if path == "/health" else auth

    runs: dict[tuple[str, int], list[Result]] = {}
    ratios: dict[tuple[str, int], list[float]] = {}
    cpu_ratios: dict[tuple[str, int], list[float]] = {}
    notes: list[str] = []

    def measure(name: str, server: Server, path: str, c: int) -> Result:
        cpu, started = process_cpu_seconds(server.process.pid), time.monotonic()
        result = drive(server.url + path, c, duration, as_client(path))
        cpu = process_cpu_seconds(server.process.pid) - cpu
        cpu -= server.idle_cpu * (time.monotonic() - started)  # the background's share
        result.cpu_us = cpu / max(1, result.requests) * 1e6
        runs.setdefault((name, c), []).append(result)
        return result

    def interleaved(bare: Server, app: Server, c: int, suffix: str) -> None:
        for _ in range(rounds):  # interleaved, so drift hits both sides alike
            base = measure(f"bare /{suffix}", bare, "/", c)
            for path in ("/health", "/stats"):
                result = measure(path + suffix, app, path, c)
                ratios.setdefault((path + suffix, c), []).append(result.rps / base.rps)
                cpu_ratios.setdefault((path + suffix, c), []).append(result.cpu_us / base.cpu_us)

    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "app.log"
        bare, app = start_bare(), start_app(log_path, 10)
        try:
            drive(app.url + "/stats", 16, 1.0, auth)  # warm up
            app.measure_idle()
            for c in levels:
                builds_before = stats_builds(app)
                interleaved(bare, app, c, "")
                builds = stats_builds(app) - builds_before - 1
                allowed = rounds * (duration / 1.0 + 1)
                notes.append(f"/stats at {c} connections: {builds} get_stats() builds over "
                             f"{rounds} x {duration:.0f} s (allowed {allowed:.0f})")  # fmt: skip
                if builds > allowed:
                    notes.append("  ^ MISSED: more builds than duration / stats_ttl + 1")
        finally:
            app.stop()
            bare.stop()
        if not args.quick:  # the CI gates of a 10,000-worker /health and /stats are in-process
            bare, big = start_bare(), start_app(log_path, 10_000)
            try:
                drive(big.url + "/stats", 16, 1.0, auth)
                big.measure_idle()
                interleaved(bare, big, 16, " 10k")
            finally:
                big.stop()
                bare.stop()
        log_lines = sum(1 for _ in log_path.open("rb"))
    results = {key: median_result(rs) for key, rs in runs.items()}
    print(f"\nload generator: {'wrk' if use_wrk else 'aiohttp client'}; {rounds} interleaved "
          f"round(s) of {duration:.0f} s per target and level; loopback; servers on CPU 0; "
          f"medians over rounds")  # fmt: skip
    print(f"{'target':<16}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
          f"{'x bare':>8}{'CPU us/req':>12}")  # fmt: skip
    for (name, c), r in results.items():
        ratio = ratios.get((name, c))
        shown = f"{statistics.median(ratio):.2f}" if ratio else "1.00"
        print(f"{name:<16}{c:>6}{r.rps:>10.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.errors:>8}"
              f"{shown:>8}{r.cpu_us:>12.1f}")  # fmt: skip
    for note in notes:
        print(note)
    print(f"application log lines written: {log_lines}")
    medians = {k: statistics.median(v) for k, v in ratios.items()}
    gates = [Gate(f"{name} CPU per request / bare aiohttp", tuple(cpu_ratios[name, 16]),
                  limit, at_least=False) for name, limit in CPU_LIMITS.items()]  # fmt: skip
    if args.json:
        rows = [{**vars(r), "name": name, "ratio": medians.get((name, c), 1.0)}
                for (name, c), r in results.items()]  # fmt: skip
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {"generator": "wrk" if use_wrk else "aiohttp", "rounds": rounds,
               "duration": duration, "results": rows, "notes": notes,
               "gates": [{"name": g.name, "rounds": g.rounds, "limit": g.limit,
                          "passed": g.passed} for g in gates]}  # fmt: skip
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    failed = (
        ["non-2xx responses or socket errors"] if any(r.errors for r in results.values()) else []
    )
    failed += (
        ["more get_stats() builds than the TTL allows"] if any("MISSED" in n for n in notes) else []
    )
    for gate in gates:
        print(gate.line())
    for line in failed:
        print("FAILED:", line)
    missed = [] if args.quick else check_targets(results, medians)
    for line in missed:
        print("MISSED:", line)
    gated = args.gates and (failed or not all(g.passed for g in gates))
    return 1 if gated or (args.check and (missed or failed)) else 0


def check_targets(
    results: dict[tuple[str, int], Result], ratios: dict[tuple[str, int], float]
) -> list[str]:
    """The targets at 16 connections (a full run)."""
    missed = []
    health, stats, big = results["/health", 16], results["/stats", 16], results["/stats 10k", 16]
    if ratios["/health", 16] < 0.85:
        missed.append(f"/health {ratios['/health', 16]:.2f} x bare (target 0.85)")
    if health.p99_ms >= 5:
        missed.append(f"/health p99 {health.p99_ms:.2f} ms (target < 5)")
    if ratios["/stats", 16] < 0.6:
        missed.append(f"/stats {ratios['/stats', 16]:.2f} x bare (target 0.6)")
    if stats.p99_ms >= 5:
        missed.append(f"/stats p99 {stats.p99_ms:.2f} ms (target < 5)")
    if big.p99_ms >= 10:
        missed.append(f"/stats 10k p99 {big.p99_ms:.2f} ms (target < 10)")
    return missed


if __name__ == "__main__":
    sys.exit(main())

"""Where a ``/health`` request's time goes: the same request through more and more of the API.

    python benchmarks/ablation.py [--rounds N] [--duration S] [--json PATH]

Six servers, each in its own process pinned to CPU 0, driven in turn by ``wrk`` (16
keep-alive connections, pinned to CPU 1) for ``--duration`` seconds, ``--rounds`` times
interleaved. One core serves, so the CPU cost of a request is about 1 / (requests/s):

1. ``bare``: aiohttp's own server, one route answering constant bytes;
2. ``+ guard``: the same route behind the connection guard (our listener protocol);
3. ``+ chain``: the route wrapped by the request chain (request id, access log, rate
   limit exemption, auth decision, counters);
4. ``+ headers``: the constant answer with the headers the view adds (``no-store``);
5. ``full (chain)``: the real application and its ``/health`` view (health of six
   components, JSON), the fast path off;
6. ``full``: the same with the defaults, i.e. the probe fast path on.

Traffic goes to 127.0.0.1 only; each run is bounded by ``--duration``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from aiohttp import web

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))  # run as a script from anywhere
from benchmarks.load import free_port, wait_ready  # noqa: E402
from benchmarks.load_client import pinned, run_wrk  # noqa: E402

BODY = b'{"healthy":true}'
VARIANTS = ("bare", "+ guard", "+ chain", "+ headers", "full (chain)", "full")


async def _constant(request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/json")


async def _constant_with_headers(request: web.Request) -> web.Response:
    from orchestrator.http.responses import NO_STORE, json_bytes

    return json_bytes(BODY, 200, NO_STORE)


async def serve(variant: str, port: int) -> None:
    """Serve ``variant`` on 127.0.0.1:``port`` until killed."""
    from orchestrator import Application, Job
    from orchestrator.config import HttpSettings
    from orchestrator.http.chain import Chain
    from orchestrator.http.guard import ConnectionGuard, protocol_factory
    from orchestrator.http.routes import ROUTES
    from orchestrator.http.state import HttpState
    from orchestrator.log import configure_logging

    sink = open(os.devnull, "w")  # noqa: ASYNC230, SIM115  (open while the server runs)
    configure_logging("json", "info", stream=sink)
    if variant.startswith("full"):
        app = Application(enable_http=True, http_host="127.0.0.1", http_port=port,
                          rate_limit=None, fast_probes=variant == "full")  # fmt: skip

        @app.handler("noop")
        async def noop(job: Job) -> None:  # a registry without handlers is unhealthy
            return None

        async with app:
            await asyncio.Event().wait()
    web_app = web.Application()
    if variant in ("bare", "+ guard"):
        web_app.router.add_get("/health", _constant)
    else:
        view = _constant if variant == "+ chain" else _constant_with_headers
        record = next(r for r in ROUTES if r.path == "/health")
        table = (dataclasses.replace(record, view=view),)
        chain = Chain(HttpSettings(rate_limit=None), HttpState(), table)
        web_app.router.add_get("/health", chain.wrap(table[0]))
    runner = web.AppRunner(web_app, access_log=None, handle_signals=False)
    await runner.setup()
    if variant == "bare":
        await web.TCPSite(runner, "127.0.0.1", port).start()
    else:
        assert runner.server is not None
        factory = protocol_factory(runner.server, ConnectionGuard(), None, access_log=None,
                                   keepalive_timeout=75.0)  # fmt: skip
        await asyncio.get_running_loop().create_server(factory, "127.0.0.1", port)
    await asyncio.Event().wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    parser.add_argument("--serve", nargs=2, metavar=("VARIANT", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve[0], int(args.serve[1])))
        return 0
    if shutil.which("wrk") is None:
        print("ablation: needs wrk", file=sys.stderr)
        return 2
    servers = {}
    try:
        for variant in VARIANTS:
            port = free_port()
            cmd = [*pinned(0), sys.executable, __file__, "--serve", variant, str(port)]
            servers[variant] = (subprocess.Popen(cmd), f"http://127.0.0.1:{port}/health")
        for _, url in servers.values():
            wait_ready(url, time.monotonic() + 60)
        rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for _ in range(args.rounds):  # interleaved: drift hits every variant alike
            for variant, (_, url) in servers.items():
                result = run_wrk(url, 16, args.duration, {})
                if result.errors:
                    raise SystemExit(f"ablation: {result.errors} errors from {variant}")
                rates[variant].append(result.rps)
    finally:
        for process, _ in servers.values():
            process.kill()
            process.wait()
    rows, previous = [], None
    print(f"\n/health at 16 connections, wrk; {args.rounds} interleaved rounds of "
          f"{args.duration:g} s; one core serving; medians")  # fmt: skip
    print(f"{'variant':<14}{'req/s':>9}{'us/request':>12}{'added':>8}{'x bare':>8}")
    bare = statistics.median(rates["bare"])
    for variant in VARIANTS:
        rps = statistics.median(rates[variant])
        us = 1e6 / rps
        added = us - previous if previous is not None else 0.0
        if variant == "full":  # compared with the bare server, not with the chain
            added = us - 1e6 / bare
        print(f"{variant:<14}{rps:>9,.0f}{us:>12.1f}{added:>+8.1f}{rps / bare:>8.2f}")
        rows.append({"variant": variant, "rps": rps, "us_per_request": us, "runs": rates[variant]})
        previous = us
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Retake the README's picture of the status page (docs/status-page.png).

    .venv/bin/python -m tests.e2e.readme_screenshot [--warmup SECONDS] [--out PATH]

It starts ``orchestrator run`` (the demo ``make run`` starts, at its default rate, on a free
loopback port), opens the status page in headless Chromium at 1280x800 (the picture's
size) and leaves it polling for ``--warmup`` seconds (120 by default), so that uptime,
counts and sparklines are those of an instance that has been running a while. It saves the
viewport at the first refresh after that whose Workers table has every column filled: a
job in flight with its running time, and a last error.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
import tempfile
from pathlib import Path

from tests.e2e.browser import DevTools, find_chromium
from tests.test_cli import COMMAND, clean_env

FILLED = (
    "(() => { const cells = (label) => [...document.querySelectorAll("
    "`#workers-table tbody [data-label='${label}']`)].map(c => c.textContent);"
    " return cells('Running for').some(t => t !== '\\u2013')"
    " && cells('Last error').some(t => t !== '\\u2013'); })()"
)
"""True when a worker shows its job's running time and one shows its last error."""

URL = re.compile(r"HTTP API on (http://\S+?): ")


async def retake(out: Path, warmup: float, chromium: str) -> None:
    """Run the demo, let the page poll it for ``warmup`` seconds, save the PNG at ``out``.

    Raises:
        TimeoutError: the demo printed no URL within 30 s, or no refresh within 5 minutes
            showed a job in flight and a last error together.
    """
    proc = await asyncio.create_subprocess_exec(
        *COMMAND, "run", env=clean_env(), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,  # its log lines; the URL is on stdout
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            while not (found := URL.search((await proc.stdout.readline()).decode())):
                assert proc.returncode is None, "orchestrator run exited"
        with tempfile.TemporaryDirectory() as profile:
            browser = await DevTools.launch(chromium, Path(profile))
            try:
                await browser.open(found.group(1) + "/")
                await asyncio.sleep(warmup)  # sleep-ok: the picture shows minutes of running
                await browser.wait_for(FILLED, timeout=300)
                png = await browser.screenshot()
                assert await browser.problems() == []
            finally:
                await browser.close()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        await proc.communicate()
    await asyncio.to_thread(out.write_bytes, png)


def main() -> int:
    """Parse the arguments and retake the picture; 1 without a Chromium binary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=float, default=120.0, help="seconds of polling first")
    parser.add_argument("--out", type=Path, default=Path("docs/status-page.png"))
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        print("readme_screenshot: no chromium binary found (apt-get install chromium)")
        return 1
    asyncio.run(retake(args.out, args.warmup, chromium))
    print(f"readme_screenshot: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

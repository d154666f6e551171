"""Headless Chromium for the end-to-end tests: one-shot runs and a small DevTools client."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import shutil
import signal
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp

__all__ = ["FLAGS", "DevTools", "Node", "find_chromium", "parse_html", "run_chromium"]

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--hide-scrollbars",
)
"""Every run: headless, no sandbox (containers), no network besides the page's own."""


def find_chromium() -> str | None:
    """The Chromium binary: ``$CHROMIUM`` when set, else the first known name on PATH."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return shutil.which(explicit)
    for name in NAMES:
        found = shutil.which(name)
        if found is not None:
            return found
    return None


async def _start(binary: str, profile: Path, args: Sequence[str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        binary,
        *FLAGS,
        f"--user-data-dir={profile}",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group: a timeout kills every helper too
    )


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


async def run_chromium(
    binary: str, profile: Path, *args: str, timeout: float = 90.0
) -> tuple[str, str]:
    """Run Chromium to completion (``--dump-dom``, ``--screenshot``); its stdout and stderr.

    Raises:
        TimeoutError: it did not finish within ``timeout`` seconds (it is killed).
        AssertionError: it exited with a non-zero status.
    """
    proc = await _start(binary, profile, args)
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    finally:
        await _kill(proc)
    stderr = err.decode(errors="replace")
    assert proc.returncode == 0, f"chromium exited with {proc.returncode}: {stderr[-2000:]}"
    return out.decode(), stderr


_WATCH = """
window.pageProblems = [];
document.addEventListener("securitypolicyviolation", (e) =>
  pageProblems.push("csp: " + e.violatedDirective + " " + e.blockedURI));
window.addEventListener("error", (e) => pageProblems.push(
  "error: " + (e.message || (e.target && (e.target.src || e.target.href)))), true);
window.addEventListener("unhandledrejection", (e) => pageProblems.push("rejection: " + e.reason));
"""
"""Injected before any page script (DevTools bypasses the CSP): records what goes wrong."""


class DevTools:
    """One page of a headless Chromium, driven over the DevTools protocol.

    Commands go over the page's WebSocket one at a time: ``call`` sends one and reads
    until its answer arrives, dropping the events in between, so no reader task exists.
    """

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        session: aiohttp.ClientSession,
        ws: aiohttp.ClientWebSocketResponse,
    ) -> None:
        self._proc = proc
        self._session = session
        self._ws = ws
        self._ids = itertools.count(1)

    @classmethod
    async def launch(
        cls, binary: str, profile: Path, *, width: int = 1280, height: int = 800
    ) -> DevTools:
        """Start Chromium with remote debugging on a free loopback port; attach to its page.

        Raises:
            TimeoutError: Chromium did not open its debugging port within 30 seconds.
        """
        args = ("--remote-debugging-port=0", f"--window-size={width},{height}", "about:blank")
        proc = await _start(binary, profile, args)
        session = aiohttp.ClientSession()
        try:
            port_file = profile / "DevToolsActivePort"
            async with asyncio.timeout(30):
                while not port_file.exists() or not port_file.read_text().strip():
                    assert proc.returncode is None, "chromium exited before opening its port"
                    await asyncio.sleep(0.05)  # sleep-ok: polling the browser for its port file
            port = int(port_file.read_text().split()[0])
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            page = next(t for t in targets if t["type"] == "page")
            ws = await session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        except BaseException:
            await session.close()
            await _kill(proc)
            raise
        devtools = cls(proc, session, ws)
        await devtools.viewport(width, height)
        await devtools.call("Page.enable")
        await devtools.call("Page.addScriptToEvaluateOnNewDocument", source=_WATCH)
        return devtools

    async def viewport(self, width: int, height: int, *, mobile: bool = False) -> None:
        """Make the page's viewport exactly ``width`` by ``height`` CSS pixels."""
        await self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                        deviceScaleFactor=1, mobile=mobile)  # fmt: skip

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result.

        Raises:
            AssertionError: the browser answered with an error or closed the connection.
        """
        ident = next(self._ids)
        await self._ws.send_json({"id": ident, "method": method, "params": params})
        async with asyncio.timeout(30):
            while True:
                message = await self._ws.receive()
                assert message.type is aiohttp.WSMsgType.TEXT, f"devtools closed: {message}"
                data = message.json()
                if data.get("id") == ident:
                    break
        assert "error" not in data, f"{method}: {data['error']}"
        result: dict[str, Any] = data.get("result", {})
        return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited).

        Raises:
            AssertionError: the expression threw.
        """
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 15.0) -> Any:
        """Evaluate ``expression`` until it is truthy; return that value.

        Raises:
            TimeoutError: it stayed falsy for ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while True:
                value = await self.evaluate(expression)
                if value:
                    return value
                await asyncio.sleep(0.05)  # sleep-ok: polling the real browser with a deadline

    async def problems(self) -> list[str]:
        """CSP violations, uncaught errors and unhandled rejections the page has seen."""
        found: list[str] = await self.evaluate("window.pageProblems || []")
        return found

    async def open(self, url: str) -> None:
        """Navigate to ``url`` and wait until its document has loaded."""
        await self.call("Page.navigate", url=url)
        await self.wait_for(f"location.href === {url!r} && document.readyState === 'complete'")

    async def press(self, key: str, code: int) -> None:
        """A real key press (down and up) on the focused element, e.g. ``Enter``, 13."""
        text = "\r" if key == "Enter" else ""
        common = {"key": key, "code": key, "windowsVirtualKeyCode": code}
        await self.call("Input.dispatchKeyEvent", type="keyDown", text=text, **common)
        await self.call("Input.dispatchKeyEvent", type="keyUp", **common)

    async def type_text(self, text: str) -> None:
        """Type ``text`` into the focused element."""
        await self.call("Input.insertText", text=text)

    async def screenshot(self) -> bytes:
        """The viewport as PNG."""
        result = await self.call("Page.captureScreenshot", format="png")
        return base64.b64decode(result["data"])

    async def close(self) -> None:
        """Close the browser (killed after 10 seconds) and the connection."""
        try:
            if not self._ws.closed:
                await self._ws.send_json({"id": next(self._ids), "method": "Browser.close"})
            async with asyncio.timeout(10):
                await self._proc.wait()
        except (TimeoutError, aiohttp.ClientError, ConnectionError):
            pass
        finally:
            await self._ws.close()
            await self._session.close()
            await _kill(self._proc)


class Node:
    """An element of a parsed document: tag, attributes, children and text."""

    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag = tag
        self.attrs = attrs
        self.children: list[Node | str] = []

    @property
    def text(self) -> str:
        """The text of the element and its descendants, pieces joined by single spaces."""
        parts: list[str] = []
        stack: list[Node | str] = [self]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                parts.append(item)
            else:
                stack.extend(reversed(item.children))
        return " ".join(" ".join(parts).split())

    def iter(self) -> list[Node]:
        """This element and every descendant element, in document order."""
        out: list[Node] = []
        stack: list[Node] = [self]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed([c for c in node.children if isinstance(c, Node)]))
        return out

    def find(self, **attrs: str) -> Node:
        """The first element whose attributes include ``attrs`` (``data_x`` means ``data-x``).

        Raises:
            AssertionError: there is none.
        """
        found = self.find_all(**attrs)
        assert found, f"no element with {attrs}"
        return found[0]

    def find_all(self, **attrs: str) -> list[Node]:
        """Every element whose attributes include ``attrs``."""
        wanted = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [n for n in self.iter() if all(n.attrs.get(k) == v for k, v in wanted.items())]


_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                   "source", "track", "wbr"})  # fmt: skip


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self._stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self._stack[-1].children.append(node)
        if tag not in _VOID:
            self._stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._stack) - 1, 0, -1):
            if self._stack[i].tag == tag:
                del self._stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self._stack[-1].children.append(data)


def parse_html(html: str) -> Node:
    """A document tree of ``html`` (as Chromium's ``--dump-dom`` serialises it)."""
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root

"""The command's event loop: it ends even when a task refuses cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import time

from orchestrator.run import run_in_new_loop


def test_a_task_refusing_cancellation_does_not_hold_the_exit() -> None:
    """After the main coroutine, leftover tasks are cancelled and waited for `grace` only."""
    release = asyncio.Event()
    stubborn_task: list[asyncio.Task[None]] = []

    async def stubborn() -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await release.wait()

    async def main() -> str:
        stubborn_task.append(asyncio.ensure_future(stubborn()))
        await asyncio.sleep(0)
        return "done"

    started = time.monotonic()
    result, left = run_in_new_loop(main(), grace=0.1)
    assert (result, left) == ("done", 1)
    assert time.monotonic() - started < 1.0
    loop = stubborn_task[0].get_loop()  # left open: end the task, then close it here
    release.set()
    loop.run_until_complete(stubborn_task[0])
    loop.close()
    asyncio.set_event_loop(None)


def test_a_clean_main_closes_its_loop() -> None:
    """With nothing left over, the loop is closed and nothing is reported."""
    seen: list[asyncio.AbstractEventLoop] = []

    async def main() -> int:
        seen.append(asyncio.get_running_loop())
        sleeper = asyncio.ensure_future(asyncio.sleep(60))  # sleep-ok: left for shutdown
        assert not sleeper.done()
        return 7

    assert run_in_new_loop(main(), grace=1.0) == (7, 0)
    assert seen[0].is_closed()

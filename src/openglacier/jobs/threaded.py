"""Background loops on their own thread and event loop.

An API process's job runners used to share the event loop with request
handling. Under 64 clients polling GetJobOutput, that loop was always busy
(SQLite reads run inline there), every one of a job's loop turns waited behind
64 connections, and the runner completed about one job a second
(docs/performance.md, "Job bursts"). On a loop of its own the runner only
competes for the GIL, which Python hands over every 5 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any

LoopFactory = Callable[[], Coroutine[Any, Any, None]]


async def in_own_thread(factory: LoopFactory, name: str) -> None:
    """Run `factory()` on a new thread's event loop for as long as this
    coroutine runs. Cancelling this cancels it there and waits until it ended;
    if it ends by itself, with an error or not, so does this."""
    outer = asyncio.get_running_loop()
    ended: asyncio.Future[None] = outer.create_future()
    started = threading.Event()
    inner: dict[str, Any] = {}

    def report(error: BaseException | None) -> None:
        if ended.done():
            return
        if error is None:
            ended.set_result(None)
        else:
            ended.set_exception(error)

    async def main() -> None:
        inner["loop"], inner["task"] = asyncio.get_running_loop(), asyncio.current_task()
        started.set()
        await factory()

    def target() -> None:
        error: BaseException | None = None
        try:
            asyncio.run(main())
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # reported to the awaiting side, not lost
            error = exc
        finally:
            started.set()
            with contextlib.suppress(RuntimeError):  # the outer loop has closed
                outer.call_soon_threadsafe(report, error)

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    try:
        await asyncio.shield(ended)
    except asyncio.CancelledError:
        started.wait()
        if "task" in inner:
            with contextlib.suppress(RuntimeError):  # it has just ended by itself
                inner["loop"].call_soon_threadsafe(inner["task"].cancel)
        with contextlib.suppress(BaseException):
            await ended
        raise

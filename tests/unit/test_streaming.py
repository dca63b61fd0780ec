"""WindowedResponse: a download's windows, a disconnect in the middle of a read.

A cursor is used by one thread at a time: when the client goes away while the
next window is being read on a worker thread, the response waits for that read
to end before it closes the cursor (closing a generator another thread is
running fails, and the blob reader would stay open). And a finished download
holds none of the windows it sent.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import tracemalloc
from collections.abc import Iterator
from typing import Any

from openglacier.api.streaming import WindowedResponse
from openglacier.domain.jobs.reads import READ_WINDOW, WindowCursor, WindowedRead
from openglacier.treehash import MIB

SECOND = b"b" * 10
LENGTH = READ_WINDOW + len(SECOND)


class Gate:
    """Pieces of a download whose second window's read blocks until `release`."""

    def __init__(self) -> None:
        self.reading = threading.Event()
        self.release = threading.Event()
        self.closed = False

    def pieces(self) -> Iterator[bytes]:
        try:
            yield b"a" * READ_WINDOW
            self.reading.set()
            assert self.release.wait(30)
            yield SECOND
        finally:
            self.closed = True


def _response(gate: Gate) -> WindowedRead:
    cursor = WindowCursor((0, LENGTH - 1), lambda _: gate.pieces(), lambda error: error)
    return WindowedRead(0, LENGTH - 1, lambda: cursor)


def test_disconnect_during_a_read_closes_the_cursor_after_it() -> None:
    gate = Gate()
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        # The client goes away while the second window is being read; the read
        # ends a moment after the disconnect was handled.
        await asyncio.to_thread(gate.reading.wait, 30)
        threading.Timer(0.1, gate.release.set).start()
        return {"type": "http.disconnect"}

    async def download() -> None:
        headers = {"Content-Length": str(LENGTH)}
        response = await WindowedResponse.start(_response(gate), 200, headers)
        await response({"type": "http"}, receive, send)  # type: ignore[arg-type]

    asyncio.run(download())
    assert gate.release.is_set()  # the response waited for the read...
    assert gate.closed  # ...then closed the cursor, and with it the pieces
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert body == b"a" * READ_WINDOW  # what was sent before the client left


def test_a_whole_download_sends_every_window_and_closes() -> None:
    gate = Gate()
    gate.release.set()
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # never disconnects
        raise AssertionError

    async def download() -> None:
        headers = {"Content-Length": str(LENGTH)}
        response = await WindowedResponse.start(_response(gate), 200, headers)
        await response({"type": "http"}, receive, send)  # type: ignore[arg-type]

    asyncio.run(download())
    assert gate.closed
    assert sent[0]["type"] == "http.response.start"
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"a" * READ_WINDOW + SECOND
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


def test_windows_are_not_kept_after_the_download() -> None:
    """Nothing a finished download leaves behind (its response object, tasks or
    tracebacks in reference cycles, freed only when the cyclic GC runs) holds
    the windows it sent."""
    size = 4 * READ_WINDOW

    def pieces() -> Iterator[bytes]:
        for _ in range(size // MIB):
            yield bytes(MIB)

    async def send(message: dict[str, Any]) -> None:
        pass

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError

    async def download() -> WindowedResponse:
        cursor = WindowCursor((0, size - 1), lambda _: pieces(), lambda error: error)
        body = WindowedRead(0, size - 1, lambda: cursor)
        response = await WindowedResponse.start(body, 200, {"Content-Length": str(size)})
        await response({"type": "http"}, receive, send)  # type: ignore[arg-type]
        return response

    gc.disable()
    tracemalloc.start()
    try:
        response = asyncio.run(download())
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        gc.enable()
    assert response.first == []
    assert held < MIB, held

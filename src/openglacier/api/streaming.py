"""Sending a `WindowedRead`: windows read on a worker thread while the loop sends.

The event loop sends window N while a worker thread reads window N+1 (file
reads, the store's per-chunk checks and SHA-256 release the GIL), so reading
and sending overlap; reads are sequential, through one cursor per download, so
each blob is opened once (domain/jobs/reads.py). Starlette's StreamingResponse
would read one chunk, then send it, then read the next.

The first window (`FIRST_WINDOW`, 1 MiB; later ones grow to `READ_WINDOW`) is
read before the status line goes out, so a damaged chunk or leaf at the start
of a response is an ordinary error response. A damaged
one later on can only abort the connection: the client sees fewer bytes than
Content-Length, never damaged ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import anyio
import anyio.to_thread
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from openglacier.domain.jobs.reads import WindowCursor, WindowedRead
from openglacier.errors import IntegrityError

log = logging.getLogger("openglacier.api")


class WindowedResponse(Response):
    def __init__(
        self,
        cursor: WindowCursor,
        first: list[bytes],
        status_code: int,
        headers: Mapping[str, str],
    ) -> None:
        self.cursor = cursor  # positioned after the first window
        self.first = first
        self.status_code = status_code
        self.background = None
        self.init_headers(headers)

    @classmethod
    async def start(
        cls, body: WindowedRead, status_code: int, headers: Mapping[str, str]
    ) -> WindowedResponse:
        """Read the first window now, so its errors get a proper response."""
        cursor = body.open()
        cursor.start_small()  # the status line waits for it: see FIRST_WINDOW
        try:
            first = await read(cursor)
        except BaseException:
            cursor.close()
            raise
        return cls(cursor, first, status_code, headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # uvicorn's send() returns quietly once the client has gone (ASGI < 2.4),
        # so listen for the disconnect to stop reading an abandoned download.
        async with anyio.create_task_group() as group:

            async def stream() -> None:
                await self._stream(send)
                group.cancel_scope.cancel()

            group.start_soon(stream)
            await _until_disconnect(receive)
            group.cancel_scope.cancel()

    async def _stream(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        reading: asyncio.Future[list[bytes]] | None = None
        # Windows are dropped as soon as they are sent: whatever outlives the
        # request (a task or traceback in a reference cycle) must not hold them.
        pieces, self.first = self.first, []
        try:
            while pieces:
                reading = asyncio.ensure_future(read(self.cursor))
                await _send_pieces(send, pieces)
                pieces = []
                # Shielded: a disconnect cancels this task, and cancelling the read
                # would abandon its thread, not stop it.
                pieces = await asyncio.shield(reading)
                reading = None
        except IntegrityError as error:
            # Headers are out: all we can do is cut the body short.
            log.error("download aborted: %s", error)
            raise
        finally:
            if reading is not None:
                # The read still in its thread must end before the cursor is closed
                # (a cursor is used by one thread at a time); shielded, since after a
                # disconnect this task's scope is cancelled.
                with anyio.CancelScope(shield=True):
                    await asyncio.wait([reading])
                if not reading.cancelled():
                    reading.exception()  # retrieved: this download is over anyway
            self.cursor.close()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def read(cursor: WindowCursor) -> list[bytes]:
    return await anyio.to_thread.run_sync(cursor.next)


async def _send_pieces(send: Send, pieces: list[bytes]) -> None:
    for piece in pieces:
        await send({"type": "http.response.body", "body": piece, "more_body": True})


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass

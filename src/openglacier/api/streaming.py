"""Sending a `WindowedRead`: verified reads on worker threads, a few windows ahead.

A verified download costs one SHA-256 per byte. Reading and hashing window N+1
(and N+2) on worker threads while the event loop sends window N keeps both
cores busy; hashlib and file reads release the GIL. Starlette's
StreamingResponse would read one chunk, then send it, then read the next.

The first window is read before the status line goes out, so a damaged leaf at
the start of a response is an ordinary error response. A damaged leaf later on
can only abort the connection: the client sees fewer bytes than
Content-Length, never unverified ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterator, Mapping
from functools import partial

import anyio
import anyio.to_thread
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from openglacier.domain.retrieval import Span, WindowedRead
from openglacier.errors import IntegrityError

# Windows read ahead of the one being sent: with READ_WINDOW = 4 MiB, a
# download holds at most about 12 MiB, and two hashing threads can run.
READ_AHEAD = 2
log = logging.getLogger("openglacier.api")


class WindowedResponse(Response):
    def __init__(
        self,
        body: WindowedRead,
        rest: Iterator[Span],
        first: list[bytes],
        status_code: int,
        headers: Mapping[str, str],
    ) -> None:
        self.source = body
        self.rest = rest  # the spans after the first window
        self.first = first
        self.status_code = status_code
        self.background = None
        self.init_headers(headers)

    @classmethod
    async def start(
        cls, body: WindowedRead, status_code: int, headers: Mapping[str, str]
    ) -> WindowedResponse:
        """Read the first window now, so its errors get a proper response."""
        spans = body.spans()
        span = next(spans, None)
        first = await read(body, span) if span is not None else []
        return cls(body, spans, first, status_code, headers)

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
        pending: deque[asyncio.Task[list[bytes]]] = deque()
        spans = self.rest
        try:
            self._read_ahead(pending, spans)
            await _send_pieces(send, self.first)
            while pending:
                pieces = await pending.popleft()
                self._read_ahead(pending, spans)
                await _send_pieces(send, pieces)
        except IntegrityError as error:
            # Headers are out: all we can do is cut the body short.
            log.error("download aborted: %s", error)
            raise
        finally:
            for task in pending:
                task.cancel()
            # Shielded: after a disconnect the scope is cancelled, and the reads
            # still in their threads must be collected, not left unretrieved.
            with anyio.CancelScope(shield=True):
                await asyncio.gather(*pending, return_exceptions=True)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _read_ahead(self, pending: deque[asyncio.Task[list[bytes]]], spans: Iterator[Span]) -> None:
        while len(pending) < READ_AHEAD:
            span = next(spans, None)
            if span is None:
                return
            pending.append(asyncio.ensure_future(read(self.source, span)))


async def read(body: WindowedRead, span: Span) -> list[bytes]:
    return await anyio.to_thread.run_sync(partial(body.read, span))


async def _send_pieces(send: Send, pieces: list[bytes]) -> None:
    for piece in pieces:
        await send({"type": "http.response.body", "body": piece, "more_body": True})


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass

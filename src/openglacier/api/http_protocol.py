"""The HTTP/1.1 layer's own refusals, in Glacier's error shape (spec 1.7, 1.8).

uvicorn answers a request its parser (httptools, from `uvicorn[standard]`)
cannot read -- a raw space or non-ASCII byte in the request line, a control
byte in a header, an unknown method such as `FOO`, bad chunked framing -- with
a plain-text 400 and no `x-amzn-RequestId`. `GlacierHttpProtocol` replaces
only that answer: the same 400, rendered by `api.errors.error_response` as a
`BadRequest` with a request id, and the connection closed (the parser cannot
find the next request in a stream it could not read).

It also bounds the request head. httptools buffers a header however long it
is, and neither it nor uvicorn has a limit, so a client could hold megabytes
per connection. The head may carry at most `MAX_HEAD_BYTES`, counted by
`head_size` as the request target plus, per header, its name, its value and
4 bytes for ": " and CRLF. The count is kept as the parser reports the URL and
each header; a head whose raw bytes pass twice the limit before it is complete
is refused too, so memory stays bounded even while httptools is still buffering
one long header (it hands a header over only once it has all of it).
`GlacierApp` applies the same limit (and llhttp's header-value rule) to the scope
it is given (`check_head`), so an in-process server or another ASGI server
answers alike.

What uvicorn still answers itself, in plain text: a 500 when the ASGI app raises
(GlacierApp never lets an exception out) and a 503 past `limit_concurrency`
(not set). WebSocket upgrades are off (`cli/processes.py`, `ws="none"`), so an
`Upgrade: websocket` request is an ordinary request the app answers.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Iterable
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from openglacier.api.errors import error_response
from openglacier.api.threaded_send import ThreadedSendTransport
from openglacier.errors import BadRequest, GlacierError
from openglacier.ids import new_request_id

# 16 KiB: several times the longest head any Glacier client sends (SigV4
# Authorization, a 1,024-character description, an STS session token), and the
# default of Node.js and h11. AWS front ends also refuse oversized heads with 400.
MAX_HEAD_BYTES = 16 * 1024
HEADER_OVERHEAD = 4  # ": " and CRLF
HEAD_SLICE = 4096
HEAD_TOO_LARGE = (
    f"The request head (target and header fields) exceeds the limit of {MAX_HEAD_BYTES} bytes."
)


# The bytes llhttp refuses in a header value (controls but HTAB, and DEL).
HEADER_VALUE_CONTROL = re.compile(b"[\x00-\x08\x0a-\x1f\x7f]")


def head_size(target: int, headers: Iterable[tuple[bytes, bytes]]) -> int:
    return target + sum(len(name) + len(value) + HEADER_OVERHEAD for name, value in headers)


def not_http(reason: str) -> BadRequest:
    return BadRequest(f"The request is not valid HTTP/1.1: {reason}")


def check_head(target: int, headers: list[tuple[bytes, bytes]]) -> None:
    """This layer's rules for a request head it did not parse (in-process, another
    ASGI server), so every server refuses alike: the size limit, and the control
    bytes llhttp refuses in header values (a NUL would otherwise reach storage
    lookups through the access key, and PostgreSQL text cannot hold it)."""
    if head_size(target, headers) > MAX_HEAD_BYTES:
        raise BadRequest(HEAD_TOO_LARGE)
    if any(HEADER_VALUE_CONTROL.search(value) for _, value in headers):
        raise not_http("Invalid header value char")


class HeadTooLarge(Exception):
    """Raised from a parser callback; httptools re-raises it as the context of a
    HttpParserCallbackError, which uvicorn turns into `send_400_response`."""


class GlacierHttpProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # a connection starts by awaiting a request head
        self._head_counted = 0  # target + headers of that head, as parsed
        self._head_raw = 0  # raw bytes fed while that head was incomplete

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Large bodies leave from a thread of their own (api/threaded_send.py).
        self._sending = ThreadedSendTransport(cast(asyncio.Transport, transport), self)
        super().connection_made(cast(asyncio.Transport, self._sending))

    def connection_lost(self, exc: Exception | None) -> None:
        self._sending.stop()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # While a head is incomplete the parser is fed HEAD_SLICE bytes at a time,
        # so the raw count is exact to one slice; bodies go through whole.
        offset = 0
        while self._in_head and offset < len(data) and self._still_ours():
            piece = data[offset : offset + HEAD_SLICE]
            offset += len(piece)
            self._head_raw += len(piece)
            super().data_received(piece)
            if self._in_head and self._head_raw > 2 * MAX_HEAD_BYTES:
                self._refuse(BadRequest(HEAD_TOO_LARGE))
        if offset < len(data) and self._still_ours():
            super().data_received(data[offset:])

    def _still_ours(self) -> bool:
        """False once refused and closing, or handed to a WebSocket protocol."""
        return not self.transport.is_closing() and self.transport.get_protocol() is self

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_counted = 0

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_raw = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + HEADER_OVERHEAD)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def _count(self, size: int) -> None:
        self._head_counted += size
        if self._head_counted > MAX_HEAD_BYTES:
            raise HeadTooLarge

    def send_400_response(self, msg: str) -> None:
        # uvicorn calls this only from the `except HttpParserError` of
        # data_received, so the parser's error is the exception being handled.
        parser_error = sys.exception()
        if parser_error is not None and isinstance(parser_error.__context__, HeadTooLarge):
            self._refuse(BadRequest(HEAD_TOO_LARGE))
        else:
            self._refuse(not_http(str(parser_error) if parser_error is not None else msg))

    def _refuse(self, error: GlacierError) -> None:
        if self.transport.is_closing():
            return
        response = error_response(error, new_request_id())
        lines = [STATUS_LINE[error.http_status]]
        headers = [*self.server_state.default_headers, *response.raw_headers]
        lines.extend(name + b": " + value + b"\r\n" for name, value in headers)
        lines.append(b"connection: close\r\n\r\n")
        self.transport.write(b"".join(lines) + response.body)
        self.transport.close()

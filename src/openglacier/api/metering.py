"""Per-request metrics: operation, status, duration and body bytes each way.

The meter wraps the ASGI `receive` and `send` of one request, so it counts
what actually crossed the socket (streamed uploads and downloads included)
at the cost of a length and an addition per message. The operation is put in
the scope by the router (`OPERATION_KEY`); requests that never got that far
are `_unrouted`, admin calls `_admin`. The same record feeds the usage
report's counts (metrics/usage.py) once the app has put the account in the
scope.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from time import perf_counter
from typing import Any

from openglacier.metrics import observe_request
from openglacier.metrics.usage import count_request

Message = MutableMapping[str, Any]
OPERATION_KEY = "openglacier.operation"
UNROUTED = "_unrouted"
ADMIN = "_admin"
DISCONNECTED = 499  # the client went before its answer (nginx's code for it)


class RequestMeter:
    __slots__ = ("_receive", "_send", "received", "sent", "start", "status")

    def __init__(
        self,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        self._receive = receive
        self._send = send
        self.start = perf_counter()
        self.received = 0
        self.sent = 0
        self.status = DISCONNECTED

    async def receive(self) -> Message:
        message = await self._receive()
        body = message.get("body")
        if body:
            self.received += len(body)
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body":
            self.sent += len(message.get("body", b""))
        elif message["type"] == "http.response.start":
            self.status = message["status"]
        await self._send(message)

    def record(self, scope: MutableMapping[str, Any]) -> None:
        operation = scope.get(OPERATION_KEY, UNROUTED)
        seconds = perf_counter() - self.start
        observe_request(operation, self.status, seconds, self.received, self.sent)
        count_request(scope, operation, self.status, self.received)  # the usage report

"""Per-request metrics and the access log: operation, status, duration and body
bytes each way.

The meter wraps the ASGI `receive` and `send` of one request, so it counts
what actually crossed the socket (streamed uploads and downloads included)
at the cost of a length and an addition per message. The operation is put in
the scope by the router (`OPERATION_KEY`), the signer's account once the
signature verified (`ACCOUNT_KEY`); requests that never got that far are
`_unrouted`, admin calls `_admin`. The same record feeds the usage
report's counts (metrics/usage.py) once the app has put the account in the
scope.

The same measurements make the access line (logger `openglacier.access`, INFO):
one per request, written when its answer has been sent. The path is the raw
one the client sent (percent-encoded, so no line break can be forged into a
text line); the query string and headers are left out: a query could carry a
presigned signature, and headers carry the Authorization.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from time import perf_counter
from typing import Any

from openglacier.logs import FIELDS
from openglacier.metrics import observe_request
from openglacier.metrics.usage import count_request

Message = MutableMapping[str, Any]
OPERATION_KEY = "openglacier.operation"
ACCOUNT_KEY = "openglacier.account"
UNROUTED = "_unrouted"
ADMIN = "_admin"
NO_ACCOUNT = "-"  # not signed, or the signature did not verify
DISCONNECTED = 499  # the client went before its answer (nginx's code for it)
ACCESS_FORMAT = "%s %s %d %s account=%s in=%d out=%d %.1fms"

access_log = logging.getLogger("openglacier.access")


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

    def record(self, scope: MutableMapping[str, Any], request_id: str, log: bool) -> None:
        """Count the request in the metrics and, if `log`, write its access line."""
        operation = scope.get(OPERATION_KEY, UNROUTED)
        seconds = perf_counter() - self.start
        observe_request(operation, self.status, seconds, self.received, self.sent)
        count_request(scope, operation, self.status, self.received)  # the usage report
        if log and access_log.isEnabledFor(logging.INFO):
            self._log(scope, operation, request_id, seconds * 1000)

    def _log(self, scope: MutableMapping[str, Any], operation: str, rid: str, ms: float) -> None:
        raw = scope.get("raw_path")
        path = raw.decode("latin-1") if raw else scope["path"]
        method, account = scope["method"], scope.get(ACCOUNT_KEY, NO_ACCOUNT)
        fields = {
            "method": method,
            "path": path,
            "operation": operation,
            "account": account,
            "status": self.status,
            "bytes_in": self.received,
            "bytes_out": self.sent,
            "duration_ms": round(ms, 3),
        }
        args = (method, path, self.status, operation, account, self.received, self.sent, ms)
        access_log.info(ACCESS_FORMAT, *args, extra={FIELDS: fields, "request_id": rid})

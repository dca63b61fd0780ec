"""One request to the in-process app with its request target exactly as given.

httpx (under Starlette's TestClient) removes dot segments from every URL it builds,
so `/-/vaults/v/archives/..` could never reach the app through it. HTTP servers do
not (uvicorn hands the target over as received), and an attacker's client need not.
The ASGI scope is built here the way uvicorn builds it: `raw_path` as the bytes on
the wire, `path` percent-decoded, headers as latin-1 bytes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from starlette.types import ASGIApp


@dataclass
class RawAnswer:
    """The parts of an httpx response the assertion helpers read."""

    status_code: int = 0
    headers: dict[str, str] = field(default_factory=dict)  # lowercase names
    content: bytes = b""

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


def send_raw(
    app: ASGIApp,
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]],
    body: bytes = b"",
) -> RawAnswer:
    """`target` is the request target (path and query) as it goes on the wire."""
    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(path),
        "raw_path": path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    answer = RawAnswer()
    sent_body = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal sent_body
        if sent_body:
            return {"type": "http.disconnect"}
        sent_body = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status_code = message["status"]
            answer.headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message["headers"]
            }
        elif message["type"] == "http.response.body":
            answer.content += message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return answer

"""An HTTP proxy in front of a real server that records GetJobOutput requests and
can damage or hold them: a byte flipped in a range's body (as a bad link would),
or range requests held unanswered after some were served (so a test can kill
the client mid-download at a known point).

    with OutputProxy(server.endpoint) as proxy:
        ... proxy.endpoint ...          # forwards everything to the server
        proxy.flip[2 * MIB] = 1         # flip a byte in the next range starting there
        proxy.hold_after = 3            # hold output requests after three were let through
        proxy.release()

SigV4 signs the Host header the client sent; it is forwarded unchanged, so the
server verifies the client's own signature.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

_OUTPUT = re.compile(r"/jobs/[^/]+/output$")
_RANGE = re.compile(r"bytes=(\d+)-(\d+)")


class OutputProxy:
    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.lock = threading.Lock()
        self.ranges: list[tuple[int, int]] = []  # output ranges asked for, in order
        self._admitted = 0
        self.initiated = 0  # InitiateJob requests
        self.flip: dict[int, int] = {}  # range start -> responses still to damage
        self.hold_after: int | None = None
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> OutputProxy:
        self._thread.start()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def release(self) -> None:
        """Answer held requests, and hold nothing from now on."""
        with self.lock:
            self.hold_after = None
        self._released.set()

    def _gate(self, path: str, range_header: str | None) -> tuple[int, int] | None:
        """Record an output range request; hold it if asked to. Its range."""
        match = _RANGE.fullmatch(range_header or "")
        if not _OUTPUT.search(path) or match is None:
            return None
        with self.lock:
            self.ranges.append((int(match.group(1)), int(match.group(2))))
            hold = self.hold_after is not None and self._admitted >= self.hold_after
            self._admitted += not hold
        if hold:
            self._released.wait(60)
        return int(match.group(1)), int(match.group(2))

    def _damage(self, rng: tuple[int, int] | None, body: bytes) -> bytes:
        with self.lock:
            if rng is None or self.flip.get(rng[0], 0) <= 0 or not body:
                return body
            self.flip[rng[0]] -= 1
        damaged = bytearray(body)
        damaged[len(damaged) // 2] ^= 0x01
        return bytes(damaged)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.command == "POST" and self.path.endswith("/jobs"):
                    with proxy.lock:
                        proxy.initiated += 1
                rng = proxy._gate(self.path, self.headers.get("Range"))
                conn = http.client.HTTPConnection(*proxy.target, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=dict(self.headers))
                    resp = conn.getresponse()
                    data = resp.read()
                    headers = resp.getheaders()
                finally:
                    conn.close()
                if 200 <= resp.status < 300:
                    data = proxy._damage(rng, data)
                self.send_response(resp.status)
                for name, value in headers:
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                with contextlib.suppress(OSError):  # a client killed while it was held
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _forward  # noqa: N815 (http.server's names)

        return Handler

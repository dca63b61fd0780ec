"""A real HTTP server on 127.0.0.1 that records what it is sent (webhook tests).

It answers 200 unless told to fail the next N requests, or to hold requests
(never answer until released, for client timeouts). No sleeps: waiting for a
request blocks on a condition variable.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


class HttpSink:
    def __init__(self, port: int = 0) -> None:
        self.requests: list[Received] = []
        self._cond = threading.Condition()
        self._failures: list[int] = []
        self._held = False
        self._release = threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status = sink._record(
                    Received(
                        "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
                    )
                )
                if sink._held:
                    sink._release.wait(30)
                reply = b"ok" if status < 300 else b"sink says no"
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the default backlog of 5 resets concurrent posts
            daemon_threads = True

        self.server = Server(("127.0.0.1", port), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._cond:
            self._failures.extend([status] * count)

    def hold(self) -> None:
        """Accept requests but answer none until `stop`."""
        self._held = True

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"sink got {len(self.requests)} requests, wanted {count}")
            return list(self.requests)

    def _record(self, received: Received) -> int:
        with self._cond:
            self.requests.append(received)
            self._cond.notify_all()
            return self._failures.pop(0) if self._failures else 200

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


@contextmanager
def running_sink(port: int = 0) -> Iterator[HttpSink]:
    sink = HttpSink(port)
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()

"""An HTTP proxy in front of a real server that records every UploadMultipartPart
it forwards (so a test knows which parts the server was sent) and can hold part
requests after the first N, as a slow link would: a client is then stuck
mid-upload with exactly N parts on the server, at a moment the test chooses.

    with PartGate(("127.0.0.1", server.port), forward=3) as gate:
        ... gate.endpoint ...   # point the client here
        gate.wait_held()        # a 4th part was sent and is being held
        gate.ranges             # Content-Range of each part forwarded

Requests and responses are parsed only as far as their header blocks and
Content-Length (botocore sends every Glacier body with a length, and the
server answers these operations with one). A part counts once the server has
answered it with 2xx: an attempt botocore retries after a dropped connection
is not a part the server accepted.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from types import TracebackType
from typing import BinaryIO

CHUNK = 1 << 16


class PartGate:
    def __init__(self, target: tuple[str, int], forward: int | None = None) -> None:
        self.target = target
        self.forward = forward  # None: forward every part
        self.ranges: list[str] = []  # Content-Range of each part the server accepted
        self.failed: list[tuple[str, str]] = []  # (Content-Range, status line) of the others
        self._held = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._admitted = 0
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)  # accept() wakes up to see close()
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True, name="part-gate").start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_held(self, timeout: float = 60) -> bool:
        return self._held.wait(timeout)

    def open_fully(self) -> None:
        """Forward every part from now on (held ones stay held: their client is gone)."""
        with self._lock:
            self.forward = None
            self.ranges.clear()
            self.failed.clear()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()

    def __enter__(self) -> PartGate:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=30)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            sent: queue.SimpleQueue[str] = queue.SimpleQueue()  # ranges ("" for other requests)
            threading.Thread(
                target=self._requests, args=(client, upstream, sent), daemon=True
            ).start()
            threading.Thread(
                target=self._responses, args=(upstream, client, sent), daemon=True
            ).start()

    def _requests(
        self, client: socket.socket, upstream: socket.socket, sent: queue.SimpleQueue[str]
    ) -> None:
        reader = client.makefile("rb")
        try:
            while not self._closed.is_set():
                head = _read_head(reader)
                if head is None:
                    return
                part = self._is_part(head)
                if part and not self._admit():
                    return  # held until the proxy closes: never forwarded
                sent.put(_header(head, b"content-range") if part else "")
                upstream.sendall(head)
                _copy_body(reader, upstream, _content_length(head))
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_WR)

    @staticmethod
    def _is_part(head: bytes) -> bool:
        method, path = head.split(b" ", 2)[:2]
        return method == b"PUT" and b"/multipart-uploads/" in path

    def _admit(self) -> bool:
        with self._lock:
            if self.forward is None or self._admitted < self.forward:
                self._admitted += 1
                return True
        self._held.set()
        self._closed.wait()
        return False

    def _responses(
        self, upstream: socket.socket, client: socket.socket, sent: queue.SimpleQueue[str]
    ) -> None:
        reader = upstream.makefile("rb")
        try:
            while head := _read_head(reader):
                # Counted before the client sees it: once the client is done, so is the count.
                self._answered(sent.get(), head.split(b"\r\n", 1)[0].decode())
                client.sendall(head)
                _copy_body(reader, client, _content_length(head))
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_WR)
        while not sent.empty():  # forwarded, never answered
            self._answered(sent.get(), "no response")

    def _answered(self, part_range: str, status: str) -> None:
        if not part_range:
            return
        with self._lock:
            if status.split(" ")[1:2] in (["200"], ["201"], ["204"]):
                self.ranges.append(part_range)
            else:
                self.failed.append((part_range, status))


def _read_head(reader: BinaryIO) -> bytes | None:
    lines = []
    while True:
        line = reader.readline()
        if not line:
            return None
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def _header(head: bytes, name: bytes) -> str:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip().decode()
    return ""


def _content_length(head: bytes) -> int:
    assert not _header(head, b"transfer-encoding"), "chunked requests are not expected"
    return int(_header(head, b"content-length") or 0)


def _copy_body(reader: BinaryIO, upstream: socket.socket, length: int) -> None:
    while length:
        data = reader.read(min(CHUNK, length))
        if not data:
            raise OSError("client closed mid-body")
        upstream.sendall(data)
        length -= len(data)

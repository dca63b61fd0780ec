"""Large response bodies sent from a thread of their own, outside the GIL.

uvloop's `transport.write` makes the `send` system call at once, with the GIL
held; on loopback that call also runs the receiver's TCP work and takes about
0.4 ms per MiB. A download's event loop spent most of its GIL time there, and
the thread reading and checking the next window waited for it
(docs/performance.md, "Sends outside the GIL").

`ThreadedSendTransport` wraps a connection's transport. Small writes, and any
write while uvloop still buffers something, go to uvloop as before. A write of
at least `THREADED_MIN` bytes on a connection with nothing buffered is queued
for a sender thread, which writes it to the socket with `os.write` and waits
for room with `poll`, both without the GIL. While the queue holds anything,
every later write joins it, so bytes leave in the order they were written.
Flow control is the transport's usual contract: past `HIGH_WATER` queued bytes
the protocol is told to pause writing, and to resume once the sender has
caught up.

The sender writes through a duplicate of the socket's descriptor, so a
descriptor number uvloop closes and the kernel hands to a new connection is
never written to. The duplicate would keep the connection open after uvloop
closes it, so it is closed with the transport, and shut down first when the
connection is aborted or lost (which also wakes a sender waiting in `poll`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import threading
from collections import deque
from typing import Any

# About 0.1 ms of sending on loopback (0.4 ms per MiB): smaller writes are not
# worth a thread's wake-up, and the status line and small answers stay on uvloop.
THREADED_MIN = 256 * 1024
HIGH_WATER = 8 * 1024 * 1024  # two download windows in flight
LOW_WATER = 2 * 1024 * 1024
LINGER = 1.0  # seconds a sender waits for more before its thread ends
POLL_MS = 1000  # a sender waiting for room re-checks whether it was stopped


class ThreadedSendTransport:
    """A transport whose large writes leave from a sender thread (see above).

    Everything below `_lock` is shared between the event loop and the sender;
    the protocol is only ever called on the loop.
    """

    def __init__(
        self, transport: asyncio.Transport, protocol: Any, *, linger: float = LINGER
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self._linger = linger
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: deque[memoryview] = deque()
        self._pending = 0  # bytes queued or being written by the sender
        self._paused = False  # the protocol was told to pause writing
        self._closing = False  # close() was called while bytes were pending
        self._stopped = False  # closed or lost: the sender drops its queue and ends
        self._sock: socket.socket | None = None  # the duplicate, made on first use
        self._sender: threading.Thread | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    # --- the transport's writing side -----------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        with self._lock:
            if self._stopped or self._closing:
                return  # as uvloop ignores writes to a closing transport
            if self._pending or self._takes(len(data)):
                # uvloop copies what it buffers; a queued bytearray must not change either.
                self._enqueue(memoryview(data if isinstance(data, bytes) else bytes(data)))
                return
        self._transport.write(data)

    def _takes(self, size: int) -> bool:
        return (
            size >= THREADED_MIN
            and not self._transport.is_closing()
            and self._transport.get_write_buffer_size() == 0
            and self._start_sender()
        )

    def _enqueue(self, view: memoryview) -> None:
        self._queue.append(view)
        self._pending += len(view)
        self._wake.notify()
        if self._pending > HIGH_WATER:
            self._paused = True
            self._protocol.pause_writing()  # idempotent in uvicorn's FlowControl

    def get_write_buffer_size(self) -> int:
        with self._lock:
            pending = self._pending
        return pending + self._transport.get_write_buffer_size()

    def is_closing(self) -> bool:
        return self._closing or self._stopped or self._transport.is_closing()

    def close(self) -> None:
        with self._lock:
            if self._pending and not self._stopped:
                self._closing = True  # closed by `_drained`, after the last byte
                return
        self._close_now()

    def abort(self) -> None:
        self.stop()
        self._transport.abort()

    # --- the connection's end ---------------------------------------------------
    def stop(self) -> None:
        """The connection is lost or aborted: drop what is queued, wake the sender."""
        with self._lock:
            self._end()
            sock = self._sock
        if sock is not None:
            # Also ends a sender's poll. OSError: already shut down, or reset.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _close_now(self) -> None:
        with self._lock:
            self._end()
        self._transport.close()

    def _end(self) -> None:
        """With the lock held: nothing more is sent; the duplicate is closed now,
        or by the sender on its way out (it may be inside `os.write` with it)."""
        self._stopped = True
        self._queue.clear()
        self._pending = 0
        self._wake.notify()
        if self._sender is None and self._sock is not None:
            self._sock.close()
            self._sock = None

    # --- the sender thread --------------------------------------------------------
    def _start_sender(self) -> bool:
        """With the lock held; False if the socket cannot be duplicated."""
        if self._sender is not None:
            return True
        if self._transport.get_extra_info("ssl_object") is not None:
            return False  # the socket carries TLS records: only the transport may write
        if self._sock is None:
            raw = self._transport.get_extra_info("socket")
            try:
                self._sock = socket.fromfd(raw.fileno(), raw.family, raw.type)
            except (AttributeError, OSError):
                return False  # no socket to duplicate: uvloop sends, as before
        self._sender = threading.Thread(
            target=self._send_loop, args=(self._sock.fileno(),), name="og-send", daemon=True
        )
        self._sender.start()
        return True

    def _send_loop(self, fd: int) -> None:
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        try:
            while (view := self._next()) is not None:
                if not self._write_all(fd, poller, view):
                    self._call_soon(self.abort)  # as uvloop does when a send fails
                    return
                self._sent(len(view))
        finally:
            self._leave()

    def _next(self) -> memoryview | None:
        """The next write, or None when stopped or idle for `linger` seconds."""
        with self._lock:
            if not self._queue and not self._stopped:
                self._wake.wait_for(lambda: self._queue or self._stopped, self._linger)
            return None if self._stopped or not self._queue else self._queue[0]

    def _write_all(self, fd: int, poller: select.poll, view: memoryview) -> bool:
        """False if the connection failed under the send (EPIPE, a reset)."""
        while view and not self._stopped:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                poller.poll(POLL_MS)
            except OSError:
                return self._stopped  # a failure after stop() is the shutdown's
        return True

    def _sent(self, size: int) -> None:
        with self._lock:
            if self._stopped:
                return
            self._queue.popleft()
            self._pending -= size
            wake = (self._paused and self._pending <= LOW_WATER) or (
                self._closing and not self._pending
            )
        if wake:
            self._call_soon(self._drained)

    def _leave(self) -> None:
        with self._lock:
            self._sender = None
            if self._stopped and self._sock is not None:
                self._sock.close()
                self._sock = None
            elif self._queue:  # queued after the sender had decided to end
                self._start_sender()

    def _call_soon(self, callback: Any) -> None:
        # RuntimeError: the loop is closed; the server is gone, the connection with it.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback)

    def _drained(self) -> None:
        with self._lock:
            resume = self._paused and self._pending <= LOW_WATER
            close = self._closing and not self._pending
            if resume:
                self._paused = False
        if resume and not self._stopped:
            self._protocol.resume_writing()
        if close:
            self._close_now()

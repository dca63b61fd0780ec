"""A TCP proxy in front of a real server that can be told to stall: while
stalled it accepts connections and reads what it is sent, and never answers
(connections already open stop answering too), as a hung store does.

    with StallingProxy(("127.0.0.1", port)) as proxy:
        ... proxy.port ...        # forwards to the target
        proxy.stall()             # from now on: accepted, read, never answered
        proxy.resume()            # forwarding again, on new connections
        proxy.cut_after(n)        # each connection passes n more bytes of answers,
                                  # then is closed (a response cut short mid-body)
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from types import TracebackType


class StallingProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)  # accept() wakes up to see close()
        self.port = int(self._listener.getsockname()[1])
        self._stalled = threading.Event()
        self._cut: tuple[int, int] | None = None  # (generation, bytes each connection passes)
        self._generation = 0
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, daemon=True, name="stall-proxy")
        self._thread.start()

    def stall(self) -> None:
        self._stalled.set()

    def resume(self) -> None:
        """Forward again; connections opened while stalled or cut are closed (the
        client sees them reset and connects anew)."""
        self._stalled.clear()
        self._cut = None
        self._close_all()

    def cut_after(self, limit: int) -> None:
        """From now on every connection (open or new) passes `limit` more bytes
        from the target, then both its sides are closed: the client sees an
        answer end early, as when the network drops a connection mid-body."""
        self._generation += 1
        self._cut = (self._generation, limit)

    def _allowed(self, seen: list[int], size: int) -> int:
        """How many of `size` bytes from the target may pass; `seen` is the
        connection's [generation, bytes passed under it]."""
        cut = self._cut
        if cut is None:
            return size
        if seen[0] != cut[0]:
            seen[:] = [cut[0], 0]
        allowed = max(0, min(size, cut[1] - seen[1]))
        seen[1] += allowed
        return allowed

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            client.settimeout(None)
            self._track(client)
            if self._stalled.is_set():
                threading.Thread(target=self._swallow, args=(client,), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            self._track(upstream)
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        """Both directions until either side closes; once stalled, nothing more is
        passed on either way (what the client sends is read and dropped)."""
        with selectors.DefaultSelector() as sel, contextlib.suppress(OSError, ValueError):
            # (OSError, ValueError: resume() or close() closed the sockets under us.)
            sel.register(client, selectors.EVENT_READ, upstream)
            sel.register(upstream, selectors.EVENT_READ, client)
            seen = [0, 0]
            while not self._closed.is_set():
                for key, _ in sel.select(timeout=0.2):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = source.recv(1 << 16)
                    except OSError:
                        data = b""
                    if not data:
                        self._drop(client, upstream)
                        return
                    if self._stalled.is_set():
                        continue
                    if source is upstream:
                        allowed = self._allowed(seen, len(data))
                        if allowed < len(data):
                            with contextlib.suppress(OSError):
                                client.sendall(data[:allowed])
                            self._drop(client, upstream)
                            return
                    with contextlib.suppress(OSError):
                        key.data.sendall(data)

    def _swallow(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while client.recv(1 << 16):
                pass
        self._drop(client)

    def _drop(self, *sockets: socket.socket) -> None:
        for sock in sockets:
            with self._lock:
                self._sockets.discard(sock)
            sock.close()

    def _close_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        self._close_all()
        self._thread.join(5)

    def __enter__(self) -> StallingProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

"""ThreadedSendTransport (api/threaded_send.py) on real loopback sockets and uvloop.

What it must keep from the transport it wraps: bytes leave in the order they were
written, whichever thread sends them; a protocol is paused while too much is
queued and resumed once it drained; close() sends everything queued first; and a
lost or aborted connection drops the queue and leaves no thread and no
descriptor behind.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, cast

import pytest
import uvloop
from hypothesis import given, settings
from hypothesis import strategies as st

from openglacier.api.threaded_send import HIGH_WATER, THREADED_MIN, ThreadedSendTransport

KIB = 1024
MIB = 1024 * KIB
Sock = socket.socket


class Recorder(asyncio.Protocol):
    """The server side: wraps its transport, and records flow-control calls."""

    def __init__(self, linger: float) -> None:
        self.linger = linger
        self.calls: list[str] = []
        self.ready: asyncio.Future[ThreadedSendTransport] = (
            asyncio.get_running_loop().create_future()
        )
        self.lost = asyncio.get_running_loop().create_future()
        self.resumed = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        inner = cast(asyncio.Transport, transport)
        self.transport = ThreadedSendTransport(inner, self, linger=self.linger)
        self.ready.set_result(self.transport)

    def pause_writing(self) -> None:
        self.calls.append("pause")
        self.resumed.clear()

    def resume_writing(self) -> None:
        self.calls.append("resume")
        self.resumed.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport.stop()
        if not self.lost.done():
            self.lost.set_result(exc)


Scenario = Callable[[Recorder, ThreadedSendTransport, socket.socket], Awaitable[None]]


def run(scenario: Scenario, linger: float = 0.0) -> None:
    """Runs `scenario` on uvloop with a connected pair: the wrapped server side and
    a blocking client socket."""

    async def main() -> None:
        holder: dict[str, Recorder] = {}

        def factory() -> Recorder:
            holder["p"] = Recorder(linger)
            return holder["p"]

        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port), timeout=30)
        try:
            while "p" not in holder:
                await asyncio.sleep(0)  # yields to the loop until it accepted
            protocol = holder["p"]
            await scenario(protocol, await protocol.ready, client)
        finally:
            client.close()
            server.close()
            await server.wait_closed()

    uvloop.run(main())


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(1 * MIB):
        chunks.append(chunk)
    return b"".join(chunks)


def recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size and (chunk := sock.recv(size - len(data))):
        data += chunk
    return data


def payload(sizes: list[int]) -> list[bytes]:
    return [os.urandom(size) for size in sizes]


def senders() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "og-send"]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def idle(_: Recorder, transport: ThreadedSendTransport, __: socket.socket) -> None:
    transport.close()


@pytest.fixture(autouse=True)
def no_sender_left() -> Iterator[None]:
    run(idle)  # uvloop's first loop in a process opens a pipe it keeps
    before = open_fds()
    yield
    for thread in senders():
        thread.join(10)
    assert senders() == []
    assert open_fds() == before  # the duplicated descriptor was closed


SIZES = st.lists(
    st.one_of(st.integers(1, 4 * KIB), st.integers(THREADED_MIN, 3 * MIB)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None)
@given(sizes=SIZES, linger=st.sampled_from([0.0, 5.0]))
def test_bytes_leave_in_the_order_they_were_written(sizes: list[int], linger: float) -> None:
    pieces = payload(sizes)
    received: list[bytes] = []

    async def scenario(
        _: Recorder, transport: ThreadedSendTransport, client: socket.socket
    ) -> None:
        reader = threading.Thread(target=lambda: received.append(read_all(client)))
        reader.start()
        for piece in pieces:
            transport.write(piece)
            await asyncio.sleep(0)  # lets the sender catch up sometimes, not always
        transport.close()
        await asyncio.to_thread(reader.join, 30)

    run(scenario, linger)
    assert received == [b"".join(pieces)]


def test_a_large_write_is_sent_by_the_sender_thread() -> None:
    async def scenario(
        _: Recorder, transport: ThreadedSendTransport, client: socket.socket
    ) -> None:
        transport.write(b"x" * 100)
        assert senders() == []  # small writes go to uvloop
        transport.write(b"y" * THREADED_MIN)
        assert len(senders()) == 1
        assert await asyncio.to_thread(recv_exact, client, 100) == b"x" * 100
        body = await asyncio.to_thread(recv_exact, client, THREADED_MIN)
        assert body == b"y" * THREADED_MIN
        transport.close()

    run(scenario, linger=5.0)


def test_a_full_queue_pauses_the_protocol_until_it_drained() -> None:
    pieces = payload([4 * MIB] * 4)

    async def scenario(
        protocol: Recorder, transport: ThreadedSendTransport, client: socket.socket
    ) -> None:
        for piece in pieces:  # the client reads nothing yet
            transport.write(piece)
        assert protocol.calls == ["pause", "pause"]  # past HIGH_WATER, on each write
        assert transport.get_write_buffer_size() > HIGH_WATER
        reader = asyncio.create_task(asyncio.to_thread(read_all, client))
        await asyncio.wait_for(protocol.resumed.wait(), 30)
        assert protocol.calls[-1] == "resume"
        transport.close()
        assert await asyncio.wait_for(reader, 30) == b"".join(pieces)

    run(scenario)


def test_close_sends_everything_queued_before_the_connection_ends() -> None:
    pieces = payload([3 * MIB, 10, 2 * MIB])

    async def scenario(
        protocol: Recorder, transport: ThreadedSendTransport, client: socket.socket
    ) -> None:
        for piece in pieces:
            transport.write(piece)
        transport.close()
        assert transport.is_closing()
        transport.write(b"after close")  # ignored, as uvloop ignores it
        assert await asyncio.to_thread(read_all, client) == b"".join(pieces)
        await asyncio.wait_for(protocol.lost, 30)

    run(scenario)


def test_abort_drops_the_queue_and_ends_the_connection() -> None:
    async def scenario(
        protocol: Recorder, transport: ThreadedSendTransport, client: socket.socket
    ) -> None:
        transport.write(os.urandom(6 * MIB))  # more than loopback's buffers take at once
        transport.abort()
        received = await asyncio.to_thread(read_received, client)
        assert len(received) < 6 * MIB
        await asyncio.wait_for(protocol.lost, 30)

    run(scenario, linger=5.0)


def read_received(sock: socket.socket) -> bytes:
    """What arrives before the connection ends, by EOF or by a reset."""
    chunks = []
    try:
        while chunk := sock.recv(1 * MIB):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def test_a_peer_that_resets_mid_send_ends_the_connection() -> None:
    async def scenario(
        protocol: Recorder, transport: ThreadedSendTransport, client: socket.socket
    ) -> None:
        # Reading paused, so only the failed send can notice (uvloop would see the
        # reset on its read side otherwise).
        transport.pause_reading()
        transport.write(os.urandom(8 * MIB))
        await asyncio.to_thread(client.recv, 64 * KIB)
        # SO_LINGER 0: close() sends a reset, as a client killed mid-download does.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        client.close()
        await asyncio.wait_for(protocol.lost, 10)
        assert transport.is_closing()
        transport.write(b"x" * THREADED_MIN)  # a write after the loss is dropped
        assert transport.get_write_buffer_size() == 0

    run(scenario, linger=5.0)


def test_without_a_socket_to_duplicate_uvloop_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(
        _: Recorder, transport: ThreadedSendTransport, client: socket.socket
    ) -> None:
        inner: Any = transport._transport
        monkeypatch.setattr(transport, "_transport", Extra(inner, socket=None))
        transport.write(b"z" * THREADED_MIN)
        assert senders() == []
        body = await asyncio.to_thread(recv_exact, client, THREADED_MIN)
        assert body == b"z" * THREADED_MIN
        transport.close()

    run(scenario)


def test_a_tls_connection_is_never_written_around(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bytes written to the socket itself would bypass the TLS layer."""

    async def scenario(_: Recorder, transport: ThreadedSendTransport, client: Sock) -> None:
        inner: Any = transport._transport
        monkeypatch.setattr(transport, "_transport", Extra(inner, ssl_object=object()))
        transport.write(b"t" * THREADED_MIN)
        assert senders() == []
        assert await asyncio.to_thread(recv_exact, client, THREADED_MIN) == b"t" * THREADED_MIN
        transport.close()

    run(scenario)


class Extra:
    """A transport with some of its extra info replaced."""

    def __init__(self, inner: Any, **info: Any) -> None:
        self.inner = inner
        self.info = info

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name in self.info:
            return self.info[name]
        return self.inner.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_queued_bytearray_is_sent_as_it_was_when_written() -> None:
    async def scenario(
        _: Recorder, transport: ThreadedSendTransport, client: socket.socket
    ) -> None:
        transport.write(os.urandom(4 * MIB))  # the sender is busy: what follows is queued
        original = bytearray(os.urandom(THREADED_MIN))
        transport.write(original)
        expected = bytes(original)
        original[:] = bytes(len(original))  # the caller reuses its buffer
        transport.close()
        received = await asyncio.to_thread(read_all, client)
        assert received[4 * MIB :] == expected

    run(scenario)

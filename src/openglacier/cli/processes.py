"""`serve --processes N`: N API processes on one port, each with its own socket.

uvicorn's own supervisor hands every process the same listening socket. When
connections arrive in a burst, whichever process wakes first accepts them
all: measured with 16 keep-alive clients, about one start in three left one
process with every connection and the other idle (docs/performance.md). Here
each process listens on a socket of its own with SO_REUSEPORT, so the kernel
spreads connections across them by address hash, the way nginx's `reuseport`
does.

The supervisor holds a bound socket that never listens: it keeps the port
(and resolves port 0 once for all processes) without ever being handed a
connection. `serve` binds it first of all (keeper_socket), so a taken port
fails before anything is created; each process reports once it serves, and
the banner is printed when all do. A process that dies is started again; one that dies within
`MIN_UPTIME` of its start (a configuration or start-up error) stops them all.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import click
import uvicorn

from openglacier import logs
from openglacier.cli.startup import AnnouncingServer, port_problem
from openglacier.config import Settings
from openglacier.domain.usage_report import Prices
from openglacier.metrics.exposition import process_exited
from openglacier.server import build_runtime

log = logging.getLogger("openglacier.processes")

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
MIN_UPTIME = 5.0  # seconds: a process that dies sooner is failing, not crashing
STOP_GRACE = 20.0  # seconds a process gets to finish its requests on shutdown


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def reuse_port_socket(host: str, port: int, *, listen: bool) -> socket.socket:
    """A TCP socket on (host, port) that shares the port with its siblings."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        if listen:
            sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def uvicorn_config(settings: Settings, app: Any, **extra: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        # httptools with parser errors and a head limit in Glacier's error shape.
        http="openglacier.api.http_protocol:GlacierHttpProtocol",
        # Glacier has no WebSockets: an Upgrade request is an HTTP request for the
        # app to answer, not a handshake the app would leave unanswered (a 500).
        ws="none",
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # The process's logging is openglacier.logs's (configured before this):
        # uvicorn's lines go through its formatter, and the access log is ours
        # (api/metering.py), so uvicorn's own is off.
        log_config=None,
        access_log=False,
        lifespan="on",
        server_header=False,
        **extra,
    )


def process_app(settings: Settings, prices: Prices) -> Any:
    """The app each API process builds for itself (runtimes hold connection pools
    and threads, which must not cross a process start). Module-level, so a
    spawned process can find it."""
    logs.configure(settings.log_level, settings.log_format)
    return build_runtime(settings, prices=prices).app


def run_api_process(settings: Settings, prices: Prices, supervisor: int, ready: Connection) -> None:
    """One API process (the spawned child): its own socket, then uvicorn; tells the
    supervisor its pid once it serves."""
    _exit_with(supervisor)
    logs.configure(settings.log_level, settings.log_format)  # a spawned process starts bare
    sock = reuse_port_socket(settings.host, settings.port, listen=True)
    config = uvicorn_config(settings, partial(process_app, settings, prices), factory=True)
    AnnouncingServer(config, partial(ready.send, os.getpid())).run(sockets=[sock])


def keeper_socket(host: str, port: int) -> socket.socket:
    """The supervisor's socket: bound (SO_REUSEPORT), never listening.

    Raises click's one-line error when the port is taken, before anything else
    happens. SO_REUSEPORT alone would let this bind succeed next to another
    `serve --processes N` of the same user, so a plain bind is tried first: it
    fails on any listener of the port (ours or another program's), and it does
    not listen, so it never takes a connection meant for a running server.
    """
    try:
        if port != 0:  # port 0 is a fresh port: nothing can hold it
            reuse_addr_probe(host, port)
        return reuse_port_socket(host, port, listen=False)
    except OSError as exc:
        raise click.ClickException(port_problem(host, port, exc)) from None


def reuse_addr_probe(host: str, port: int) -> None:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)


def _exit_with(supervisor: int) -> None:
    """Linux: be sent SIGTERM when the supervisor dies, even by SIGKILL.

    Otherwise orphaned API processes would go on serving their share of the
    port's connections (SO_REUSEPORT), next to whatever is started after.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor:  # it died before the request took effect
        sys.exit(1)


@dataclass
class _Slot:
    process: BaseProcess
    started: float


class Supervisor:
    """Runs `settings.processes` API processes on the port `keeper` holds (see
    keeper_socket); `on_ready` is called once all of them serve."""

    def __init__(
        self,
        settings: Settings,
        keeper: socket.socket,
        on_ready: Callable[[], None],
        prices: Prices,
    ) -> None:
        self.prices = prices  # the console's price table, for every process
        # Port 0 became one real port when the keeper was bound, the same for all.
        self.settings = replace(settings, port=int(keeper.getsockname()[1]))
        self.keeper = keeper
        self.on_ready: Callable[[], None] | None = on_ready
        self.context = multiprocessing.get_context("spawn")
        self.ready, self.ready_writer = self.context.Pipe(duplex=False)
        self.serving: set[int] = set()
        self.stopping = False

    def run(self) -> int:
        """Serve until SIGINT or SIGTERM; the exit status."""
        try:
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, self._on_signal)
            slots = [self._start() for _ in range(self.settings.processes)]
            status = self._watch(slots)
            self._stop(slots)
            return status
        finally:
            self.keeper.close()
            self.ready.close()
            self.ready_writer.close()

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def _start(self) -> _Slot:
        process = self.context.Process(
            target=run_api_process,
            args=(self.settings, self.prices, os.getpid(), self.ready_writer),
            name="openglacier-api",
        )
        process.start()
        return _Slot(process, time.monotonic())

    def _watch(self, slots: list[_Slot]) -> int:
        while not self.stopping:
            # A short timeout so a signal is noticed promptly.
            wait([self.ready, *(slot.process.sentinel for slot in slots)], timeout=0.5)
            self._note_ready()
            for index, slot in enumerate(slots):
                if self.stopping or slot.process.is_alive():
                    continue
                pid, code = slot.process.pid, slot.process.exitcode
                if pid is not None:
                    process_exited(pid)  # its live gauges go; its counters stay
                if time.monotonic() - slot.started < MIN_UPTIME:
                    log.error("API process %s exited with %s during start-up", pid, code)
                    return 1
                log.error("API process %s exited with %s; starting another", pid, code)
                slots[index] = self._start()
        return 0

    def _note_ready(self) -> None:
        while self.ready.poll():
            self.serving.add(self.ready.recv())
        if self.on_ready is not None and len(self.serving) >= self.settings.processes:
            self.on_ready()
            self.on_ready = None  # once: a replaced process is not a new start

    def _stop(self, slots: list[_Slot]) -> None:
        for slot in slots:
            if slot.process.is_alive():
                slot.process.terminate()  # SIGTERM: uvicorn finishes in-flight requests
        deadline = time.monotonic() + STOP_GRACE
        for slot in slots:
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()

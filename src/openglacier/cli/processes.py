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
connection. A process that dies is started again; one that dies within
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
from dataclasses import dataclass, replace
from functools import partial
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn

from openglacier.config import Settings
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
        lifespan="on",
        server_header=False,
        access_log=settings.log_level == "debug",
        **extra,
    )


def process_app(settings: Settings) -> Any:
    """The app each API process builds for itself (runtimes hold connection pools
    and threads, which must not cross a process start). Module-level, so a
    spawned process can find it."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    return build_runtime(settings).app


def run_api_process(settings: Settings, supervisor: int) -> None:
    """One API process (the spawned child): its own socket, then uvicorn."""
    _exit_with(supervisor)
    sock = reuse_port_socket(settings.host, settings.port, listen=True)
    config = uvicorn_config(settings, partial(process_app, settings), factory=True)
    uvicorn.Server(config).run(sockets=[sock])


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
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.context = multiprocessing.get_context("spawn")
        self.stopping = False

    def run(self) -> int:
        """Serve until SIGINT or SIGTERM; the exit status."""
        try:
            keeper = reuse_port_socket(self.settings.host, self.settings.port, listen=False)
        except OSError as exc:  # taken by another program (without SO_REUSEPORT)
            log.error("cannot listen on %s:%s: %s", self.settings.host, self.settings.port, exc)
            return 1
        try:
            # Port 0 becomes one real port, the same for every process.
            port = int(keeper.getsockname()[1])
            self.settings = replace(self.settings, port=port)
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, self._on_signal)
            slots = [self._start() for _ in range(self.settings.processes)]
            status = self._watch(slots)
            self._stop(slots)
            return status
        finally:
            keeper.close()

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def _start(self) -> _Slot:
        process = self.context.Process(
            target=run_api_process,
            args=(self.settings, os.getpid()),
            name="openglacier-api",
        )
        process.start()
        return _Slot(process, time.monotonic())

    def _watch(self, slots: list[_Slot]) -> int:
        while not self.stopping:
            # A short timeout so a signal is noticed promptly.
            wait([slot.process.sentinel for slot in slots], timeout=0.5)
            for index, slot in enumerate(slots):
                if self.stopping or slot.process.is_alive():
                    continue
                pid, code = slot.process.pid, slot.process.exitcode
                if time.monotonic() - slot.started < MIN_UPTIME:
                    log.error("API process %s exited with %s during start-up", pid, code)
                    return 1
                log.error("API process %s exited with %s; starting another", pid, code)
                slots[index] = self._start()
        return 0

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

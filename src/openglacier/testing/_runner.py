"""Starting and stopping an OpenGlacier app in a thread of this process.

Split from server.py so that module imports nothing heavy: this one is imported
only when a server starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

import httpx
import uvicorn

from openglacier.cli.processes import uvicorn_config
from openglacier.cli.startup import listen_socket
from openglacier.config import ConfigError, Settings, load_settings
from openglacier.server import build_runtime


def start_in_thread(
    overrides: dict[str, Any], timeout: float
) -> tuple[int, Callable[[], None], httpx.Client]:
    """(port, stop, admin client) of a server serving in a daemon thread."""
    unknown = sorted(set(overrides) - {f.name for f in fields(Settings)})
    if unknown:  # load_settings ignores unknown names: a typo would go unnoticed
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}: see docs/settings.md")
    settings = load_settings(overrides)
    sock = listen_socket(settings.host, settings.port)  # port 0: the kernel picks a free one
    settings = replace(settings, port=int(sock.getsockname()[1]))
    try:
        # The test process is not ours: leave its allocator and logging set-up alone
        # (uvicorn_config passes no log_config, which would reconfigure the root).
        runtime = build_runtime(settings, tune_allocator=False)
    except BaseException:
        sock.close()
        raise
    server = _SignallingServer(uvicorn_config(settings, runtime.app))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="openglacier-test-server", daemon=True
    )
    thread.start()

    def stop() -> None:
        server.exit_now()
        thread.join(timeout)
        runtime.close()
        sock.close()

    server.ready.wait(timeout)
    if not server.started or server.should_exit or not thread.is_alive():
        stop()
        raise RuntimeError(f"OpenGlacier test server did not start within {timeout}s")
    admin = httpx.Client(
        base_url=f"http://127.0.0.1:{settings.port}",
        headers={"Authorization": f"Bearer {settings.admin_token}"},
        timeout=60,
    )
    return settings.port, stop, admin


class _SignallingServer(uvicorn.Server):
    """uvicorn's server, setting `ready` once its start-up (lifespan included) ended,
    whether it worked (`started`) or not (`should_exit`)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: Any = None) -> None:
        try:
            self._wake, self._loop = asyncio.Event(), asyncio.get_running_loop()
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()

    async def main_loop(self) -> None:
        """uvicorn's loop (a tick every 0.1 s keeps the Date header current), but a
        stop wakes it at once: a teardown per test is ~50 ms shorter."""
        assert self._wake is not None
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864_000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    def exit_now(self) -> None:
        """From another thread: stop serving, without waiting for the next tick."""
        self.should_exit = True
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                self._loop.call_soon_threadsafe(self._wake.set)

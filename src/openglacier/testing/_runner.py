"""Starting and stopping an OpenGlacier app in a thread of this process.

Split from server.py so that module imports nothing heavy: this one is imported
only when a server starts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import uvicorn

from openglacier.cli.processes import uvicorn_config
from openglacier.cli.startup import listen_socket
from openglacier.config import load_settings
from openglacier.server import build_runtime


def start_in_thread(
    overrides: dict[str, Any], timeout: float
) -> tuple[int, Callable[[], None], httpx.Client]:
    """(port, stop, admin client) of a server serving in a daemon thread."""
    settings = load_settings(overrides)
    sock = listen_socket(settings.host, settings.port)  # port 0: the kernel picks a free one
    settings = replace(settings, port=int(sock.getsockname()[1]))
    try:
        # The test process is not ours: leave its allocator and logging set-up alone
        # (uvicorn's default log_config would reconfigure the root's handlers).
        runtime = build_runtime(settings, tune_allocator=False)
    except BaseException:
        sock.close()
        raise
    server = _SignallingServer(uvicorn_config(settings, runtime.app, log_config=None))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="openglacier-test-server", daemon=True
    )
    thread.start()

    def stop() -> None:
        server.should_exit = True
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

    async def startup(self, sockets: Any = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()

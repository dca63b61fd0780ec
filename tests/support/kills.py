"""SIGKILL a server while its clients are mid-request (the crash tests)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from support.server import LiveServer

# One client request and its bookkeeping; True once enough were acknowledged.
Step = Callable[[], bool]


def kill_mid_requests(server: LiveServer, steps: list[Step], *, timeout: float) -> None:
    """Run each step over and over on a thread of its own until one says
    enough, then SIGKILL the server while the other threads are mid-request.
    A step whose request fails ends its thread: the server died under that
    request, which was not acknowledged."""
    enough = threading.Event()

    def client(step: Step) -> None:
        while not enough.is_set():
            try:
                done = step()
            except (ClientError, BotoCoreError):
                return
            if done:
                enough.set()

    threads = [threading.Thread(target=client, args=(step,)) for step in steps]
    for thread in threads:
        thread.start()
    assert enough.wait(timeout), server.log()
    server.kill()
    for thread in threads:
        thread.join(60)

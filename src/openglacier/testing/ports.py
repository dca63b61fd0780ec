"""Free loopback ports for servers started as other processes (tests, `make cluster`).

The usual trick, `bind(("127.0.0.1", 0))` and close, takes a port from the
kernel's ephemeral range (`net.ipv4.ip_local_port_range`), which is also where
every outgoing connection's local port comes from. Between choosing the port
and the child process binding it, any connection on the machine (a PostgreSQL
client, a SeaweedFS volume server dialling its master) may take it, and the
child fails with "Address already in use": seen in CI, where an API node of the
test cluster lost its port to one. Ports below the ephemeral range are never
given to outgoing connections, so only another listener can take one, and the
bind check below skips those that are listening already.

A server started in this process should bind port 0 itself instead (as
`GlacierTestServer` does): no window at all.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

__all__ = ["free_port"]

_LOWEST = 10000  # under this: well-known services (PostgreSQL, Redis, ...)
_DEFAULT_EPHEMERAL_START = 32768  # Linux's default range starts here
_given: set[int] = set()  # never the same port twice in one process
_lock = threading.Lock()


def _ephemeral_start() -> int:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return _DEFAULT_EPHEMERAL_START


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port no listener holds and no outgoing connection will take."""
    highest = _ephemeral_start() - 1
    with _lock:
        if highest - _LOWEST >= 1000:
            for _ in range(1000):
                port = random.randint(_LOWEST, highest)
                if port not in _given and _bindable(port):
                    _given.add(port)
                    return port
        # A machine whose ephemeral range leaves no room below it: the old way.
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        _given.add(port)
        return port

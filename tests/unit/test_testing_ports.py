"""Ports for child servers come from below the ephemeral range (testing/ports.py):
an outgoing connection can never take one between choosing and binding it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from openglacier.testing import ports
from openglacier.testing.ports import free_port


def ephemeral_start() -> int:
    return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])


def test_ports_are_below_the_ephemeral_range_distinct_and_bindable() -> None:
    given = [free_port() for _ in range(50)]
    assert len(set(given)) == len(given)
    assert all(10000 <= port < ephemeral_start() for port in given)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", given[-1]))


def test_a_port_with_a_listener_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    near = range(ephemeral_start() - 200, ephemeral_start())
    taken, free = [p for p in near if p not in ports._given and _listenable(p)][:2]
    with socket.create_server(("127.0.0.1", taken)):
        draws = iter([taken, taken, free])
        monkeypatch.setattr(ports.random, "randint", lambda low, high: next(draws))
        assert ports.free_port() == free


def _listenable(port: int) -> bool:
    try:
        socket.create_server(("127.0.0.1", port)).close()
    except OSError:
        return False
    return True

"""pytest fixtures for testing Glacier code against a real OpenGlacier.

Registered as the `openglacier` pytest11 entry point, so any test run in an
environment where openglacier is installed loads this module. It therefore
imports nothing but pytest at import time: the server, boto3 and uvicorn are
imported when a fixture is first used (docs/testing-your-code.md).

    glacier_server            a fresh server per test (manual clock, aws timing)
    glacier_client            a boto3 Glacier client for glacier_server
    glacier_server_session    one server for the whole run
    glacier_client_session    a boto3 Glacier client for glacier_server_session
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from openglacier.testing.server import GlacierTestServer


def _serve() -> Iterator[GlacierTestServer]:
    from openglacier.testing.server import GlacierTestServer  # noqa: PLC0415 - light, but only when used

    with GlacierTestServer() as server:
        yield server


@pytest.fixture
def glacier_server() -> Iterator[GlacierTestServer]:
    """A real OpenGlacier on a free 127.0.0.1 port with a fresh, empty data dir
    (removed after the test) and a manual clock: see GlacierTestServer's helpers."""
    yield from _serve()


@pytest.fixture(scope="session")
def glacier_server_session() -> Iterator[GlacierTestServer]:
    """One server for the whole test run: vaults and the clock carry over
    between tests, so give each test its own vault names."""
    yield from _serve()


@pytest.fixture
def glacier_client(glacier_server: GlacierTestServer) -> Any:
    """A boto3 Glacier client for `glacier_server` (its credentials and region)."""
    return glacier_server.client()


@pytest.fixture(scope="session")
def glacier_client_session(glacier_server_session: GlacierTestServer) -> Any:
    """A boto3 Glacier client for `glacier_server_session`."""
    return glacier_server_session.client()

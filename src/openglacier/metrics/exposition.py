"""Serving the metrics: one process's, or every process's of `serve --processes N`.

Multiprocess mode is prometheus-client's: the supervisor makes a private
directory per deployment and names it in PROMETHEUS_MULTIPROC_DIR before it
starts any API process, so each child's metric values live in files there
(`values.py` decides at import). A scrape of any process, or of the
supervisor's metrics port, merges all of them. The directory goes when the
supervisor stops; a replaced process's live gauges are dropped
(`process_exited`), its counters kept, so totals never go backwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.exposition import start_http_server

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST


def registry() -> CollectorRegistry:
    """This process's metrics, or, in multiprocess mode, every process's."""
    if os.environ.get(MULTIPROC_ENV):
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return merged
    return REGISTRY


def render() -> bytes:
    return generate_latest(registry())


@contextmanager
def multiprocess_dir() -> Iterator[str]:
    """The supervisor's: a fresh directory for its processes' metric files, named
    in the environment the processes it starts inherit; removed at the end."""
    path = tempfile.mkdtemp(prefix="openglacier-metrics-")
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(path, ignore_errors=True)


def process_exited(pid: int) -> None:
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class MetricsServer:
    """GET /metrics on its own port (`--metrics-port`), on a daemon thread."""

    def __init__(self, host: str, port: int) -> None:
        self._server: WSGIServer
        self._thread: threading.Thread
        self._server, self._thread = start_http_server(port, host, registry=registry())

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

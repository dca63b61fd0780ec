"""A request body that stops arriving gets spec 1.8's 408 RequestTimeoutException
and stores nothing; one that keeps arriving slowly is never cut off, however long
it takes in all (the timeout is idle time: domain/ingest.py `_ReadTimeout`)."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from openglacier.treehash import MIB
from support.server import ACCESS_KEY, SECRET_KEY, LiveServer
from support.signing import Signed, Signer, upload_headers

TIMEOUT = 0.4  # OPENGLACIER_BODY_TIMEOUT_SECONDS of the server under test
VAULT = "slow"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> LiveServer:
    live = LiveServer(
        tmp_path_factory.mktemp("og"),
        extra_env={"OPENGLACIER_BODY_TIMEOUT_SECONDS": str(TIMEOUT)},
    ).start()
    live.client().create_vault(vaultName=VAULT)
    yield live
    live.stop()


def signed_upload(server: LiveServer, body: bytes) -> Signed:
    signer = Signer(server.endpoint, ACCESS_KEY, SECRET_KEY)
    return signer.sign(
        "POST", f"/-/vaults/{VAULT}/archives", body=body, headers=upload_headers(body)
    )


def head_bytes(server: LiveServer, request: Signed) -> bytes:
    target = request.url.removeprefix(server.endpoint)
    # The signed headers carry Content-Length; Host (signed too) is the client's part.
    lines = [f"POST {target} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
    lines += [f"{name}: {value}" for name, value in request.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status code, headers and body of a complete, Content-Length-framed answer."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode().split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    while len(rest) < int(headers["content-length"]):
        rest += sock.recv(65536)
    return int(head.split()[1]), headers, rest


def stored_files(server: LiveServer) -> list[Path]:
    blobs = server.data_dir / "blobs"
    return [p for p in blobs.rglob("*") if p.is_file()] if blobs.exists() else []


def test_a_stalled_body_gets_408_and_stores_nothing(server: LiveServer) -> None:
    before = stored_files(server)
    body = os.urandom(2 * MIB)
    request = signed_upload(server, body)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head_bytes(server, request) + body[: 300 * 1024])
        started = time.monotonic()
        status, _, payload = answer(sock)  # the client sends nothing more
        waited = time.monotonic() - started
    assert status == 408
    error = json.loads(payload)
    assert error["code"] == "RequestTimeoutException"
    assert "not read from or written to within the timeout period" in error["message"]
    # Cut off between the timeout and 1.5 times it after the last byte (plus slack
    # for a loaded machine), not at once.
    assert TIMEOUT <= waited < 1.5 * TIMEOUT + 5
    assert stored_files(server) == before  # no blob and no temp file left


def test_a_slow_steady_body_is_never_cut_off(server: LiveServer) -> None:
    body = os.urandom(MIB)
    request = signed_upload(server, body)
    piece = len(body) // 8
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head_bytes(server, request))
        started = time.monotonic()
        for offset in range(0, len(body), piece):
            time.sleep(TIMEOUT / 3)  # pacing the client is what this test is about
            sock.sendall(body[offset : offset + piece])
        status, headers, _ = answer(sock)
        took = time.monotonic() - started
    assert took > 2 * TIMEOUT  # longer in all than the timeout: only idle time counts
    assert status == 201
    # The archive exists: retrieving its id's deletion succeeds (an unknown id is 404).
    server.client().delete_archive(vaultName=VAULT, archiveId=headers["x-amz-archive-id"])

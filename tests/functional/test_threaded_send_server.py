"""Job output sent by the server's sender threads (api/threaded_send.py), over a
real socket: pipelined responses on one connection arrive whole and in order;
damage found in a later window cuts the body short on the wire without a
damaged byte; and a client that resets a download leaves the server with no
descriptor more than before and serving the next request."""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from openglacier.domain.jobs.reads import FIRST_WINDOW, READ_WINDOW
from openglacier.storage.blobs.format import CODEC_CHECKED, HEADER_LEN
from openglacier.treehash import MIB
from support.codecs import flip_bit
from support.server import ACCESS_KEY, SECRET_KEY, LiveServer
from support.signing import Signer

VAULT = "sent"
SIZE = FIRST_WINDOW + 2 * READ_WINDOW + 3 * MIB // 2  # four windows, a short last chunk


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("sent") / "data").start()
    live.client().create_vault(vaultName=VAULT)
    yield live
    live.stop()


def retrieved(server: LiveServer, body: bytes) -> tuple[str, Path]:
    """(job id, blob file) of a completed whole-archive retrieval of `body`."""
    glacier = server.client()
    before = set(blob_files(server))
    archive_id = glacier.upload_archive(vaultName=VAULT, body=body)["archiveId"]
    (blob,) = set(blob_files(server)) - before
    job = glacier.initiate_job(
        vaultName=VAULT, jobParameters={"Type": "archive-retrieval", "ArchiveId": archive_id}
    )
    assert server.admin("POST", "/jobs/run").status_code == 200
    return str(job["jobId"]), blob


def blob_files(server: LiveServer) -> list[Path]:
    return [p for p in (server.data_dir / "blobs").rglob("*") if p.is_file()]


def request_bytes(server: LiveServer, path: str, headers: dict[str, str] | None = None) -> bytes:
    signed = Signer(server.endpoint, ACCESS_KEY, SECRET_KEY).sign("GET", path, headers=headers)
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
    lines += [f"{name}: {value}" for name, value in signed.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Reader:
    """Content-Length-framed responses read off one socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode().split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers["content-length"])
        while len(self.buffer) < length and self._more():
            pass
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(head.split()[1]), headers, body

    def _more(self) -> bool:
        chunk = self.sock.recv(1 * MIB)
        self.buffer += chunk
        return bool(chunk)


def output_path(job_id: str) -> str:
    return f"/-/vaults/{VAULT}/jobs/{job_id}/output"


def test_pipelined_responses_arrive_whole_and_in_order(server: LiveServer) -> None:
    body = os.urandom(SIZE)
    job_id, _ = retrieved(server, body)
    first, last = READ_WINDOW - 5, READ_WINDOW + 3 * MIB
    requests = [
        request_bytes(server, output_path(job_id)),
        request_bytes(server, output_path(job_id), {"Range": f"bytes={first}-{last}"}),
        request_bytes(server, f"/-/vaults/{VAULT}/jobs/{job_id}"),  # small, after two large
        request_bytes(server, output_path(job_id)),
    ]
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(b"".join(requests))
        reader = Reader(sock)
        answers = [reader.response() for _ in requests]
    assert [status for status, _, _ in answers] == [200, 206, 200, 200]
    assert answers[0][2] == body
    assert answers[1][2] == body[first : last + 1]
    assert b'"StatusCode":"Succeeded"' in answers[2][2].replace(b" ", b"")
    assert answers[3][2] == body


def test_damage_in_a_later_window_cuts_the_body_short_on_the_wire(server: LiveServer) -> None:
    body = os.urandom(SIZE)
    job_id, blob = retrieved(server, body)
    assert blob.read_bytes()[5] == CODEC_CHECKED  # payload verbatim after the header
    damaged_at = FIRST_WINDOW + READ_WINDOW + MIB + 123  # in the third window
    flip_bit(blob, HEADER_LEN + damaged_at)
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(request_bytes(server, output_path(job_id)))
        status, headers, received = Reader(sock).response()
        assert sock.recv(1) == b""  # and the connection is closed
    assert (status, headers["content-length"]) == (200, str(SIZE))
    # Only the archive's own bytes, ending before the damaged chunk.
    assert FIRST_WINDOW <= len(received) <= damaged_at - damaged_at % MIB
    assert received == body[: len(received)]


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_a_reset_download_leaves_no_descriptor_and_the_server_serving(
    server: LiveServer,
) -> None:
    body = os.urandom(SIZE)
    job_id, _ = retrieved(server, body)
    assert server.process is not None
    pid = server.process.pid
    whole = request_bytes(server, output_path(job_id))
    fetch_whole(server, whole)  # warm: pools and files the server keeps open
    before = descriptors(pid)
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            sock.sendall(whole)
            sock.recv(64 * 1024)  # the download started; the rest stays queued
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # closed with a reset, as a client killed mid-download
    assert fetch_whole(server, whole) == body
    deadline = time.monotonic() + 20
    while descriptors(pid) > before and time.monotonic() < deadline:
        time.sleep(0.05)  # the server closes the reset connections on its own time
    assert descriptors(pid) <= before


def fetch_whole(server: LiveServer, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(request)
        status, _, received = Reader(sock).response()
    assert status == 200
    return received

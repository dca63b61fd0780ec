"""A minimal HTTP/1.1 client for benchmarks: it must cost far less than the servers.

Uploads go out with `socket.sendfile` (zero copy, bodies never enter Python), and
downloads are read into one reused buffer and thrown away. Requests are signed
with botocore's SigV4 using a precomputed `x-amz-content-sha256`, so the client
never hashes the bytes it sends. Small requests run on asyncio streams over
keep-alive connections.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from dataclasses import dataclass, field

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
RECV_BUFFER = 1 << 20


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    access_key: str = "bench"
    secret_key: str = "bench-secret"
    region: str = "us-east-1"
    sign: bool = True
    service: str = "glacier"  # "s3": the same client, signing for an S3 endpoint

    def headers(
        self,
        method: str,
        target: str,
        *,
        payload_sha256: str = EMPTY_SHA256,
        extra: dict[str, str] | None = None,
    ) -> dict[str, str]:
        """Signed Glacier (or S3) headers for one request (the body is never read)."""
        version = {"x-amz-glacier-version": "2012-06-01"} if self.service == "glacier" else {}
        headers = {**version, "x-amz-content-sha256": payload_sha256, **(extra or {})}
        if not self.sign:
            return {"Host": f"{self.host}:{self.port}", **headers}
        request = AWSRequest(
            method=method, url=f"http://{self.host}:{self.port}{target}", headers=headers
        )
        SigV4Auth(
            Credentials(self.access_key, self.secret_key), self.service, self.region
        ).add_auth(request)
        prepared = dict(request.headers)
        prepared["Host"] = f"{self.host}:{self.port}"
        return prepared


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes = b""  # kept only when asked for
    size: int = 0
    seconds: float = 0.0


def _head(method: str, target: str, headers: dict[str, str], length: int | None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _read_head(sock: socket.socket, pending: bytearray) -> tuple[int, dict[str, str]]:
    while b"\r\n\r\n" not in pending:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        pending += chunk
    head, _, rest = bytes(pending).partition(b"\r\n\r\n")
    pending[:] = rest
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers


def _drain(
    sock: socket.socket, pending: bytearray, length: int, keep: bool, buffer: memoryview
) -> bytes:
    """Read exactly `length` body bytes; return them only if `keep`."""
    kept = bytearray(pending[:length]) if keep else bytearray()
    remaining = length - min(len(pending), length)
    while remaining:
        got = sock.recv_into(buffer, min(len(buffer), remaining))
        if not got:
            raise ConnectionError("body cut short")
        if keep:
            kept += buffer[:got]
        remaining -= got
    return bytes(kept)


def _drain_to_close(
    sock: socket.socket, pending: bytearray, keep: bool, buffer: memoryview
) -> tuple[bytes, int]:
    kept = bytearray(pending) if keep else bytearray()
    total = len(pending)
    while got := sock.recv_into(buffer):
        total += got
        if keep:
            kept += buffer[:got]
    return bytes(kept), total


def request(
    endpoint: Endpoint,
    method: str,
    target: str,
    *,
    payload_sha256: str = EMPTY_SHA256,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    body_file: str | None = None,
    file_range: tuple[int, int] | None = None,  # (offset, count) of body_file
    keep_body: bool = True,
    timeout: float = 600.0,
) -> Response:
    """One request on a fresh connection; the body comes from memory or a file."""
    signed = endpoint.headers(method, target, payload_sha256=payload_sha256, extra=headers)
    if body_file is not None:
        offset, count = file_range or (0, os.path.getsize(body_file))
    else:
        offset, count = 0, len(body)
    buffer = memoryview(bytearray(RECV_BUFFER))
    started = time.perf_counter()
    with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(_head(method, target, signed, count))
        if body_file is not None:
            with open(body_file, "rb") as f:
                sock.sendfile(f, offset, count)
        elif body:
            sock.sendall(body)
        pending = bytearray()
        status, response_headers = _read_head(sock, pending)
        if "content-length" in response_headers:
            length = int(response_headers["content-length"])
            data = _drain(sock, pending, length, keep_body, buffer)
        else:  # no length: the body ends when the server closes (moto_server)
            data, length = _drain_to_close(sock, pending, keep_body, buffer)
    return Response(status, response_headers, data, length, time.perf_counter() - started)


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


class Conn:
    """One keep-alive connection on asyncio streams; reopened when the server closes it
    (moto_server's development server answers without Content-Length and closes)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    @classmethod
    async def open(cls, endpoint: Endpoint) -> Conn:
        conn = cls(endpoint)
        await conn._connect()
        return conn

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.reader, self.writer = await asyncio.open_connection(
            self.endpoint.host, self.endpoint.port
        )
        return self.reader, self.writer

    async def call(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.reader is None or self.writer is None:
            reader, writer = await self._connect()
        else:
            reader, writer = self.reader, self.writer
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await _chunked(reader)
        else:
            body = await reader.read()  # until the server closes
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return int(status_line.split()[1]), headers, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return bytes(body)
        body += await reader.readexactly(size + 2)
        del body[-2:]


def raw_request(
    endpoint: Endpoint, method: str, target: str, body: bytes = b"", sha256: str = EMPTY_SHA256
) -> bytes:
    """A whole signed request as bytes, reusable for a benchmark's duration."""
    signed = endpoint.headers(method, target, payload_sha256=sha256)
    return _head(method, target, signed, len(body)) + body

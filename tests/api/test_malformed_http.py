"""Malformed HTTP over a real socket (raw bytes to a live `openglacier serve`): what
the HTTP parser refuses, and oversized request heads, are answered in Glacier's
JSON error shape with x-amzn-RequestId (api/http_protocol.py), never plain text."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from openglacier.api.http_protocol import HEAD_TOO_LARGE, MAX_HEAD_BYTES
from support.asserts import assert_error
from support.inprocess import Api
from support.server import ACCESS_KEY, SECRET_KEY, LiveServer
from support.signing import Signer

REQUEST_ID = re.compile(r"\A[A-Za-z0-9_-]{47}\Z")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("live") / "data").start()
    yield live
    live.stop()


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def exchange(server: LiveServer, request: bytes) -> Answer:
    """Send raw bytes; read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return Answer(int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body)


def assert_glacier_error(answer: Answer, status: int, code: str) -> dict[str, str]:
    assert answer.status == status, answer
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-amzn-errortype"] == code
    assert REQUEST_ID.match(answer.headers["x-amzn-requestid"])
    assert int(answer.headers["content-length"]) == len(answer.body)
    body: dict[str, str] = json.loads(answer.body)
    assert body["code"] == code
    assert body["type"] == "Client"
    return body


PARSER_REFUSES = {
    "space in the path": b"GET /-/va ults HTTP/1.1\r\nHost: x\r\n\r\n",
    "non-ASCII in the path": b"GET /-/vaults/\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
    "non-ASCII in the query": b"GET /-/vaults?marker=\xff HTTP/1.1\r\nHost: x\r\n\r\n",
    "control byte in a header": b"GET /-/vaults HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
    "NUL in a header": b"GET /-/vaults HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "space in a header name": b"GET /-/vaults HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n",
    "unknown method": b"FOO /-/vaults HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad version": b"GET /-/vaults HTTP/9.x\r\nHost: x\r\n\r\n",
    "HTTP/2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "TLS handshake": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "bad chunk size": (
        b"POST /-/vaults/v/tags?operation=add HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"
    ),
}


@pytest.mark.parametrize("request_bytes", PARSER_REFUSES.values(), ids=list(PARSER_REFUSES))
def test_parser_errors_are_glacier_errors(server: LiveServer, request_bytes: bytes) -> None:
    answer = exchange(server, request_bytes)
    body = assert_glacier_error(answer, 400, "BadRequest")
    assert body["message"].startswith("The request is not valid HTTP/1.1: ")
    assert answer.headers["connection"] == "close"


def test_a_header_over_the_limit(server: LiveServer) -> None:
    padding = b"a" * (MAX_HEAD_BYTES + 1)
    answer = exchange(
        server, b"GET /-/vaults HTTP/1.1\r\nHost: x\r\nX-Pad: " + padding + b"\r\n\r\n"
    )
    assert assert_glacier_error(answer, 400, "BadRequest")["message"] == HEAD_TOO_LARGE


def test_many_headers_over_the_limit(server: LiveServer) -> None:
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(200))
    answer = exchange(server, b"GET /-/vaults HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert assert_glacier_error(answer, 400, "BadRequest")["message"] == HEAD_TOO_LARGE


def test_a_target_over_the_limit(server: LiveServer) -> None:
    target = b"/-/vaults?marker=" + b"m" * MAX_HEAD_BYTES
    answer = exchange(server, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert assert_glacier_error(answer, 400, "BadRequest")["message"] == HEAD_TOO_LARGE


def test_an_unfinished_header_is_refused_before_it_ends(server: LiveServer) -> None:
    """httptools buffers a header until its end: the raw-byte bound stops it sooner."""
    unfinished = b"GET /-/vaults HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (2 * MAX_HEAD_BYTES)
    answer = exchange(server, unfinished)
    assert assert_glacier_error(answer, 400, "BadRequest")["message"] == HEAD_TOO_LARGE


def test_a_head_under_the_limit_reaches_the_app(server: LiveServer) -> None:
    padding = b"a" * (MAX_HEAD_BYTES - 200)
    request = b"GET /-/vaults HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: " + padding
    answer = exchange(server, request + b"\r\n\r\n")
    assert_glacier_error(answer, 400, "MissingAuthenticationTokenException")


def test_signed_request_with_a_large_header_is_served(server: LiveServer) -> None:
    signer = Signer(server.endpoint, ACCESS_KEY, SECRET_KEY)
    signed = signer.sign("GET", "/-/vaults", headers={"x-pad": "p" * (MAX_HEAD_BYTES // 2)})
    with httpx.Client(timeout=10) as client:
        assert client.send(signed.httpx()).status_code == 200
        signed = signer.sign("GET", "/-/vaults", headers={"x-pad": "p" * MAX_HEAD_BYTES})
        resp = client.send(signed.httpx())
    assert resp.status_code == 400
    assert resp.json()["code"] == "BadRequest"


@pytest.mark.parametrize("method", ["PATCH", "OPTIONS", "PROPFIND"])
def test_methods_the_parser_knows_reach_the_app(server: LiveServer, method: str) -> None:
    request = f"{method} /-/vaults HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    assert_glacier_error(exchange(server, request), 400, "MissingAuthenticationTokenException")


@pytest.mark.parametrize("method", ["FOO", "PATCH"])
def test_signed_unknown_method_in_process(api: Api, method: str) -> None:
    """In process there is no parser: an unknown method is the app's 405 (spec 1.2 [R])."""
    assert api("PUT", "/-/vaults/v").status_code == 201
    assert_error(api(method, "/-/vaults/v"), 405, "InvalidParameterValueException")


def test_a_websocket_upgrade_is_an_ordinary_request(server: LiveServer) -> None:
    """Before ws="none", uvicorn handed it to a WebSocket handshake the app never
    answered: a plain-text 500."""
    request = (
        b"GET /-/vaults HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\n"
        b"Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    assert_glacier_error(exchange(server, request), 400, "MissingAuthenticationTokenException")

from __future__ import annotations

import httpx2 as httpx


def assert_error(resp: httpx.Response, status: int, code: str, message: str | None = None) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["x-amzn-errortype"] == code
    body = resp.json()
    assert body["code"] == code
    assert body["type"] in ("Client", "Server")
    if message is not None:
        assert body["message"] == message

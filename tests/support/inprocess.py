"""Signed calls through Starlette's in-process test client."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
from starlette.testclient import TestClient

from support.signing import Signer

ACCESS_KEY = "OGAKAPITESTAPITESTAA"
SECRET_KEY = "api-test-secret-0123456789abcdefghijklm"
ACCOUNT_ID = "111122223333"
ADMIN_TOKEN = "api-admin-token"


class Api:
    """Signed calls through the in-process client."""

    def __init__(self, client: TestClient, signer: Signer) -> None:
        self.client = client
        self.signer = signer

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        signed = self.signer.sign(method, path, **kwargs)
        return self.client.request(
            signed.method, signed.url, headers=signed.headers, content=signed.body
        )

    def admin(self, method: str, path: str, json: Any = None) -> httpx.Response:
        return self.client.request(
            method, "/_admin" + path, json=json, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )

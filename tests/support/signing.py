"""Hand-signed Glacier requests, for what boto3 will not send (bad hashes, missing
headers, other accounts). Signing uses botocore's own SigV4Auth, so the server is
checked against the real client's signer, not against our own code."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from openglacier.treehash import tree_hash


@dataclass(frozen=True)
class Signed:
    """A signed request, sendable by any HTTP client that keeps the headers as given."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    def httpx(self) -> httpx.Request:
        return httpx.Request(self.method, self.url, headers=self.headers, content=self.body)


@dataclass(frozen=True)
class Signer:
    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def sign(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        version: str | None = "2012-06-01",
        content_sha256: str | bool | None = None,
        secret: str | None = None,
    ) -> Signed:
        """Build a signed request. `content_sha256=False` omits the header; a string
        sends that value; None sends the true hash for non-empty bodies."""
        all_headers = dict(headers or {})
        if version is not None:
            all_headers["x-amz-glacier-version"] = version
        if content_sha256 is None and body:
            all_headers["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
        elif isinstance(content_sha256, str):
            all_headers["x-amz-content-sha256"] = content_sha256
        url = self.endpoint.rstrip("/") + path
        aws = AWSRequest(method=method, url=url, data=body, headers=all_headers)
        creds = Credentials(self.access_key, secret or self.secret_key)
        SigV4Auth(creds, "glacier", self.region).add_auth(aws)
        prepared = aws.prepare()
        split = urlsplit(url)
        target = split.path + (f"?{split.query}" if split.query else "")
        return Signed(method, self.endpoint.rstrip("/") + target, dict(prepared.headers), body)


def upload_headers(body: bytes, description: str | None = None) -> dict[str, str]:
    headers = {"x-amz-sha256-tree-hash": tree_hash(body)}
    if description is not None:
        headers["x-amz-archive-description"] = description
    return headers

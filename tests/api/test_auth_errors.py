"""Authentication errors as a client sees them (spec 1.6 item 7): a blank Authorization
header is no credentials at all, and a request signed for another region is told which
region this server serves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from api.conftest import make_settings
from openglacier.clock import ManualClock
from openglacier.server import build_runtime
from support.asserts import assert_error
from support.inprocess import ACCESS_KEY, ACCOUNT_ID, SECRET_KEY, Api
from support.signing import Signer, upload_headers


@pytest.mark.parametrize("blank", ["", " ", "\t  "])
def test_blank_authorization_is_missing_credentials(api: Api, blank: str) -> None:
    signed = api.signer.sign("PUT", "/-/vaults/v1")
    headers = {**signed.headers, "Authorization": blank}
    resp = api.client.request("PUT", signed.url, headers=headers)
    assert_error(resp, 400, "MissingAuthenticationTokenException", "Missing Authentication Token")
    assert api("GET", "/-/vaults/v1").status_code == 404  # nothing was created


@pytest.fixture
def eu_api(tmp_path: Path) -> Iterator[Api]:
    settings = make_settings(tmp_path, region="eu-central-1", clock="manual")
    runtime = build_runtime(settings, clock=ManualClock())
    try:
        with TestClient(runtime.app, base_url="http://testserver") as client:
            yield Api(client, Signer("http://testserver", ACCESS_KEY, SECRET_KEY, "eu-west-1"))
    finally:
        runtime.close()


def test_region_mismatch_names_both_regions(eu_api: Api) -> None:
    resp = eu_api("PUT", "/-/vaults/v1")
    assert_error(
        resp,
        403,
        "InvalidSignatureException",
        "Credential should be scoped to a valid region, not 'eu-west-1'. "
        "This server serves 'eu-central-1'.",
    )


def test_an_unsigned_amz_header_cannot_be_added(api: Api) -> None:
    """The description is read from x-amz-archive-description: added to a request
    signed without one, it would change what is stored while the signature held."""
    assert api("PUT", "/-/vaults/v1").status_code == 201
    signed = api.signer.sign(
        "POST", "/-/vaults/v1/archives", body=b"data", headers=upload_headers(b"data")
    )
    headers = {**signed.headers, "x-amz-archive-description": "not what was signed"}
    resp = api.client.request("POST", signed.url, headers=headers, content=b"data")
    assert_error(
        resp,
        403,
        "InvalidSignatureException",
        "The header 'x-amz-archive-description' is not signed: every x-amz-* header in the "
        "request must be listed in SignedHeaders.",
    )
    assert api.admin("GET", f"/vaults/{ACCOUNT_ID}/v1/archives").json()["archives"] == []

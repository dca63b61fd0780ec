"""Protocol envelope: auth errors, version header, account segment, error bodies (spec 1)."""

from __future__ import annotations

import json
import re

import httpx2 as httpx
from starlette.testclient import TestClient

from openglacier.api.handlers import HANDLERS
from openglacier.api.routes import ROUTES
from support.asserts import assert_error
from support.inprocess import ACCOUNT_ID, Api
from support.signing import Signer

REQUEST_ID = re.compile(r"\A[A-Za-z0-9_-]{47}\Z")


def test_success_carries_request_id_and_numeric_location(api: Api) -> None:
    resp = api("PUT", "/-/vaults/v1")
    assert resp.status_code == 201
    assert resp.headers["location"] == f"/{ACCOUNT_ID}/vaults/v1"
    assert REQUEST_ID.match(resp.headers["x-amzn-requestid"])
    assert resp.headers["content-length"] == "0"
    assert resp.content == b""


def test_error_envelope_is_exact(api: Api) -> None:
    resp = api("GET", "/-/vaults/nope")
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["x-amzn-errortype"] == "ResourceNotFoundException"
    assert REQUEST_ID.match(resp.headers["x-amzn-requestid"])
    assert json.loads(resp.content) == {
        "code": "ResourceNotFoundException",
        "message": f"Vault not found for ARN: arn:aws:glacier:us-east-1:{ACCOUNT_ID}:vaults/nope",
        "type": "Client",
    }


def test_missing_version_header(api: Api) -> None:
    resp = api("PUT", "/-/vaults/v1", version=None)
    assert_error(
        resp, 400, "MissingParameterValueException", "Required parameter missing: API version"
    )
    assert api("GET", "/-/vaults/v1").status_code == 404  # nothing was created


def test_wrong_version_header(api: Api) -> None:
    resp = api("PUT", "/-/vaults/v1", version="2011-01-01")
    assert_error(resp, 400, "InvalidParameterValueException")


def test_missing_authorization(client: TestClient) -> None:
    resp = client.put("/-/vaults/v1", headers={"x-amz-glacier-version": "2012-06-01"})
    assert_error(resp, 400, "MissingAuthenticationTokenException")


def test_bad_signature(api: Api) -> None:
    resp = api("PUT", "/-/vaults/v1", secret="not-the-secret")
    assert_error(resp, 403, "InvalidSignatureException")
    assert resp.json()["message"].startswith("The request signature we calculated does not match")
    assert api("GET", "/-/vaults/v1").status_code == 404


def test_unknown_access_key(client: TestClient) -> None:
    stranger = Signer("http://testserver", "OGAKUNKNOWNUNKNOWN00", "whatever")
    signed = stranger.sign("GET", "/-/vaults")
    resp = client.request("GET", signed.url, headers=signed.headers)
    assert_error(resp, 400, "UnrecognizedClientException")


def test_another_account_is_denied(api: Api) -> None:
    resp = api("PUT", "/999999999999/vaults/v1")
    assert_error(resp, 403, "AccessDeniedException")
    assert api("GET", "/-/vaults/v1").status_code == 404


def test_own_numeric_account_works(api: Api) -> None:
    assert api("PUT", f"/{ACCOUNT_ID}/vaults/v1").status_code == 201
    assert api("GET", "/-/vaults/v1").status_code == 200


def test_content_hash_mismatch_on_json_body(api: Api) -> None:
    body = b'{"Tags": {"a": "b"}}'
    api("PUT", "/-/vaults/v1")
    resp = api("POST", "/-/vaults/v1/tags?operation=add", body=body, content_sha256="0" * 64)
    assert_error(resp, 403, "InvalidSignatureException")
    assert "does not match the computed payload hash" in resp.json()["message"]
    assert api("GET", "/-/vaults/v1/tags").json() == {"Tags": {}}


def test_unknown_path_and_wrong_method_are_json(api: Api) -> None:
    assert_error(api("GET", "/-/nothing"), 404, "ResourceNotFoundException")
    assert_error(api("PATCH", "/-/vaults/v1"), 405, "InvalidParameterValueException")


def test_tags_without_operation(api: Api) -> None:
    api("PUT", "/-/vaults/v1")
    resp = api("POST", "/-/vaults/v1/tags", body=b'{"Tags": {"a": "b"}}')
    assert_error(resp, 400, "InvalidParameterValueException")


def test_every_operation_has_a_handler() -> None:
    assert {route.operation for route in ROUTES} == set(HANDLERS)
    assert len(HANDLERS) == 33


def test_malformed_json_is_serialization_exception(api: Api) -> None:
    api("PUT", "/-/vaults/v1")
    resp = api("POST", "/-/vaults/v1/tags?operation=add", body=b"{not json")
    assert_error(resp, 400, "SerializationException")


def test_admin_requires_its_own_token(api: Api, client: TestClient, signer: Signer) -> None:
    assert client.get("/_admin/health").status_code == 200
    assert_error(client.post("/_admin/maintenance"), 401, "MissingAuthenticationTokenException")
    bad = client.post("/_admin/maintenance", headers={"Authorization": "Bearer nope"})
    assert_error(bad, 401, "UnrecognizedClientException")
    # A Glacier signature is not an admin credential.
    signed = signer.sign("POST", "/_admin/maintenance")
    assert client.post(signed.url, headers=signed.headers).status_code == 401
    assert api.admin("POST", "/maintenance").status_code == 200


def test_request_is_verified_with_double_encoded_path(api: Api) -> None:
    # botocore percent-encodes labels; an illegal name with "/" must still authenticate
    # and answer the spec's raw-name 404.
    resp = api("GET", "/-/vaults/a%2Fb")
    assert_error(resp, 404, "ResourceNotFoundException", "Vault not found for ARN: a/b")


def test_error_response_to_httpx_shape(api: Api) -> None:
    resp = api("DELETE", "/-/vaults/missing")
    assert isinstance(resp, httpx.Response)
    assert resp.json()["type"] == "Client"

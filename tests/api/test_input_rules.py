"""Client input never causes a 500 (spec 1.7, 1.8): nested JSON, lone surrogates and
NUL, wrong JSON types, contradictory Content-Range totals and oversized request heads,
each refused with the spec's Glacier error and nothing changed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL
from starlette.testclient import TestClient

from api.conftest import make_settings
from openglacier.api.http_protocol import MAX_HEAD_BYTES
from openglacier.api.protocol import MAX_JSON_DEPTH
from openglacier.api.routes import ROUTES, Body
from openglacier.clock import ManualClock
from openglacier.server import build_runtime
from openglacier.treehash import tree_hash
from support.asserts import assert_error
from support.inprocess import Api
from support.jobs import upload
from support.services import fresh_pg_database
from support.signing import Signer

MIB = 1 << 20
JSON_ROUTES = [r for r in ROUTES if r.body is Body.JSON]
DEEP_BODIES = {
    "arrays": b"[" * 1000 + b"]" * 1000,
    "objects": b'{"a":' * 1000 + b"1" + b"}" * 1000,
    "member": b'{"Tags": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "just-too-deep": b'{"x":' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}",
}


def path_of(route_path: str, query: tuple[str, str] | None) -> str:
    path = route_path.replace("{accountId}", "-").replace("{vaultName}", "v")
    return path + (f"?{query[0]}={query[1]}" if query else "")


def js(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.fixture
def vault(api: Api) -> str:
    assert api("PUT", "/-/vaults/v").status_code == 201
    return "v"


def observable(api: Api) -> dict[str, Any]:
    """What a refused request must leave as it was."""
    return {
        "tags": api("GET", "/-/vaults/v/tags").json(),
        "notifications": api("GET", "/-/vaults/v/notification-configuration").status_code,
        "policy": api("GET", "/-/vaults/v/access-policy").status_code,
        "lock": api("GET", "/-/vaults/v/lock-policy").status_code,
        "jobs": api("GET", "/-/vaults/v/jobs").json()["JobList"],
        "retrieval": api("GET", "/-/policies/data-retrieval").json(),
    }


@pytest.mark.parametrize("kind", list(DEEP_BODIES))
@pytest.mark.parametrize("route", JSON_ROUTES, ids=lambda r: r.operation)
def test_deeply_nested_json_is_a_serialization_error(
    api: Api, vault: str, route: Any, kind: str
) -> None:
    before = observable(api)
    resp = api(route.method, path_of(route.path, route.query), body=DEEP_BODIES[kind])
    assert_error(resp, 400, "SerializationException")
    assert "nested more than 32 levels" in resp.json()["message"]
    assert observable(api) == before


def test_nesting_up_to_the_limit_is_parsed(api: Api, vault: str) -> None:
    """An unknown member is ignored (spec 1.7) even when nested to the limit."""
    depth = MAX_JSON_DEPTH - 2  # the body object and the member take two levels
    body = b'{"Tags": {"k": "v"}, "x": ' + b"[" * depth + b"]" * depth + b"}"
    assert api("POST", "/-/vaults/v/tags?operation=add", body=body).status_code == 204


def test_deep_json_under_a_vault_policy_reaches_the_handler(api: Api, vault: str) -> None:
    """The policy check reads the body leniently (request_facts) with the same reader."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Principal": "*",
                "Effect": "Deny",
                "Action": "glacier:AddTagsToVault",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:RequestTag/owner": "mallory"}},
            }
        ],
    }
    body = js({"Policy": json.dumps(policy)})
    assert api("PUT", "/-/vaults/v/access-policy", body=body).status_code == 204
    resp = api("POST", "/-/vaults/v/tags?operation=add", body=DEEP_BODIES["arrays"])
    assert_error(resp, 400, "SerializationException")


SURROGATE_BODIES = [
    ("POST", "/-/vaults/v/tags?operation=remove", b'{"TagKeys": ["\\ud800"]}', "TagKeys[0]"),
    ("POST", "/-/vaults/v/tags?operation=add", b'{"Tags": {"k": "\\udfff"}}', "Tags.k"),
    ("POST", "/-/vaults/v/tags?operation=add", b'{"Tags": {"\\ud800": "v"}}', "Tags.\ud800"),
    (
        "POST",
        "/-/vaults/v/jobs",
        b'{"Type": "archive-retrieval", "ArchiveId": "\\ud800"}',
        "ArchiveId",
    ),
    (
        "POST",
        "/-/vaults/v/jobs",
        b'{"jobParameters": {"Type": "select", "ArchiveId": "a", "SelectParameters": '
        b'{"Expression": "select \\ud800"}}}',
        "jobParameters.SelectParameters.Expression",
    ),
    (
        "PUT",
        "/-/vaults/v/notification-configuration",
        b'{"SNSTopic": "arn:aws:sns:us-east-1:1:t\\ud800", "Events": ["\\ud800"]}',
        None,
    ),
    (
        "PUT",
        "/-/policies/data-retrieval",
        b'{"Policy": {"Rules": [{"Strategy": "\\ud800"}]}}',
        "Policy.Rules[0].Strategy",
    ),
    ("POST", "/-/vaults/v/jobs", b'{"Type": "inventory-retrieval", "Marker": "a\\u0000"}', None),
    ("POST", "/-/vaults/v/tags?operation=remove", b'{"TagKeys": ["a\\u0000b"]}', "TagKeys[0]"),
]


@pytest.mark.parametrize("case", SURROGATE_BODIES)
def test_lone_surrogates_and_nul_in_json_strings(
    api: Api, vault: str, case: tuple[str, str, bytes, str | None]
) -> None:
    """One rule for every string of a body: escaped lone surrogates and NUL are
    well-formed JSON with an unacceptable value, so InvalidParameterValueException."""
    method, path, body, member = case
    before = observable(api)
    resp = api(method, path, body=body)
    assert_error(resp, 400, "InvalidParameterValueException")
    if member is not None:
        assert f"member {member}" in resp.json()["message"]
    assert observable(api) == before


@pytest.mark.parametrize(
    "body",
    [
        b'{"TagKeys": ["\xed\xa0\x80"]}',  # an encoded surrogate: not UTF-8
        b'{"TagKeys": ["\xff"]}',
        b'{"TagKeys": [NaN]}',
        b'{"TagKeys": [Infinity]}',
        b'\xff\xfe{\x00"\x00}\x00',  # UTF-16: JSON between systems is UTF-8
    ],
)
def test_bodies_that_are_not_utf8_json_text(api: Api, vault: str, body: bytes) -> None:
    resp = api("POST", "/-/vaults/v/tags?operation=remove", body=body)
    assert_error(resp, 400, "SerializationException")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/-/vaults/v/archives/a%00b"),
        ("GET", "/-/vaults/v/jobs/a%00b"),
        ("GET", "/-/vaults/v/multipart-uploads/a%00b"),
        ("POST", "/-/vaults/v/lock-policy/a%00b"),
        ("GET", "/-/vaults/v/jobs?marker=a%00b"),
        ("GET", "/-/vaults?marker=a%00b"),
        ("GET", "/-/vaults/v/multipart-uploads?marker=%00"),
    ],
)
def test_nul_in_path_labels_and_query_values(api: Api, vault: str, method: str, path: str) -> None:
    """NUL reaches no lookup: PostgreSQL text cannot hold it (the same rule as bodies)."""
    resp = api(method, path)
    assert_error(resp, 400, "InvalidParameterValueException")
    assert "NUL" in resp.json()["message"]


@pytest.mark.parametrize(
    "path",
    ["/-/vaults/v/archives/%ED%A0%80", "/-/vaults/v/jobs?marker=%ED%A0%80", "/-/vaults/%ED%A0%80"],
)
def test_encoded_surrogates_in_paths_and_queries_are_client_errors(
    api: Api, vault: str, path: str
) -> None:
    resp = api("DELETE" if "archives" in path else "GET", path)
    assert 400 <= resp.status_code < 500
    assert resp.headers["content-type"] == "application/json"
    assert resp.json()["type"] == "Client"


WRONG_TYPES = [
    (b'{"Type": "inventory-retrieval", "InventoryRetrievalParameters": {"Limit": 5}}', "Limit"),
    (b'{"Type": "inventory-retrieval", "InventoryRetrievalParameters": "x"}', "Retrieval"),
    (b'{"Type": 1}', "Type"),
    (b'{"Type": "archive-retrieval", "ArchiveId": ["a"]}', "ArchiveId"),
    (b'{"Type": "archive-retrieval", "ArchiveId": "a", "Tier": true}', "Tier"),
    (b'{"jobParameters": {"Type": "select", "SelectParameters": {"Expression": 1}}}', "Express"),
    (
        b'{"Type": "select", "OutputLocation": {"S3": {"AccessControlList": [{"Grantee": '
        b'{"Type": 7}}]}}}',
        "OutputLocation.S3.AccessControlList[0].Grantee.Type",
    ),
    (b'{"Type": "select", "OutputLocation": {"S3": {"Tagging": {"k": 1}}}}', "Tagging.k"),
]


@pytest.mark.parametrize(("body", "member"), WRONG_TYPES)
def test_wrong_json_types_in_initiate_job(api: Api, vault: str, body: bytes, member: str) -> None:
    resp = api("POST", "/-/vaults/v/jobs", body=body)
    assert_error(resp, 400, "SerializationException")
    assert member in resp.json()["message"]
    assert api("GET", "/-/vaults/v/jobs").json()["JobList"] == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/-/policies/data-retrieval", b'{"Policy": {"Rules": [{"Strategy": 1}]}}'),
        ("/-/policies/data-retrieval", b'{"Policy": {"Rules": [{"BytesPerHour": 1.5}]}}'),
        ("/-/policies/data-retrieval", b'{"Policy": {"Rules": [{"BytesPerHour": "10"}]}}'),
        ("/-/vaults/v/notification-configuration", b'{"SNSTopic": ["t"]}'),
        ("/-/vaults/v/notification-configuration", b'{"Events": [1]}'),
        ("/-/vaults/v/access-policy", b'{"Policy": {"Version": "2012-10-17"}}'),
    ],
)
def test_wrong_json_types_elsewhere(api: Api, vault: str, path: str, body: bytes) -> None:
    before = observable(api)
    assert_error(api("PUT", path, body=body), 400, "SerializationException")
    assert observable(api) == before


def test_limit_as_a_string_passes_the_type_check(api: Api, vault: str) -> None:
    body = js({"Type": "inventory-retrieval", "InventoryRetrievalParameters": {"Limit": "5"}})
    resp = api("POST", "/-/vaults/v/jobs", body=body)
    # No inventory has run yet: the type passed, the job is refused for its own reason.
    assert_error(resp, 404, "ResourceNotFoundException")


def start_upload(api: Api) -> str:
    resp = api("POST", "/-/vaults/v/multipart-uploads", headers={"x-amz-part-size": str(MIB)})
    assert resp.status_code == 201, resp.text
    return resp.headers["x-amz-multipart-upload-id"]


@pytest.mark.parametrize("total", ["3", "1048575", "0"])
def test_content_range_total_contradicting_the_range(api: Api, vault: str, total: str) -> None:
    """RFC 9110 section 14.4: the last byte must lie before the complete length."""
    upload_id = start_upload(api)
    part = b"a" * MIB
    content_range = f"bytes 0-{MIB - 1}/{total}"
    resp = api(
        "PUT",
        f"/-/vaults/v/multipart-uploads/{upload_id}",
        body=part,
        headers={"content-range": content_range, "x-amz-sha256-tree-hash": tree_hash(part)},
    )
    assert_error(
        resp, 400, "InvalidParameterValueException", f"Invalid Content-Range: {content_range}"
    )
    assert api("GET", f"/-/vaults/v/multipart-uploads/{upload_id}").json()["Parts"] == []


@pytest.mark.parametrize("total", ["*", str(MIB), str(5 * MIB)])
def test_content_range_total_consistent_or_unknown(api: Api, vault: str, total: str) -> None:
    upload_id = start_upload(api)
    part = b"a" * MIB
    resp = api(
        "PUT",
        f"/-/vaults/v/multipart-uploads/{upload_id}",
        body=part,
        headers={
            "content-range": f"bytes 0-{MIB - 1}/{total}",
            "x-amz-sha256-tree-hash": tree_hash(part),
        },
    )
    assert resp.status_code == 204, resp.text


def test_oversized_request_head_is_refused(api: Api, vault: str) -> None:
    resp = api(
        "POST",
        "/-/vaults/v/tags?operation=add",
        body=js({"Tags": {"a": "b"}}),
        headers={"x-padding": "a" * 200_000},
    )
    assert_error(
        resp,
        400,
        "BadRequest",
        f"The request head (target and header fields) exceeds the limit of {MAX_HEAD_BYTES} bytes.",
    )
    assert api("GET", "/-/vaults/v/tags").json() == {"Tags": {}}


def test_request_head_just_under_the_limit_is_served(api: Api, vault: str) -> None:
    resp = api("GET", "/-/vaults/v", headers={"x-padding": "a" * (MAX_HEAD_BYTES // 2)})
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    "body", [DEEP_BODIES["arrays"], b'{"Tags": {"a": 1}}', b'{"Tags": {"\\ud800": "v"}}']
)
def test_an_unknown_vault_is_reported_before_the_body(api: Api, body: bytes) -> None:
    """Spec 1.8 [R] order: vault existence (404) before body syntax and values (400)."""
    resp = api("POST", "/-/vaults/nope/tags?operation=add", body=body)
    assert_error(resp, 404, "ResourceNotFoundException")


@pytest.fixture
def pg_api(tmp_path: Path, clock: ManualClock, pg_admin: URL, signer: Signer) -> Iterator[Api]:
    with fresh_pg_database(pg_admin) as url:
        settings = make_settings(tmp_path, timing="instant", clock="manual", metadata_url=url)
        runtime = build_runtime(settings, clock=clock)
        try:
            with TestClient(runtime.app, base_url="http://testserver") as client:
                yield Api(client, signer)
        finally:
            runtime.close()


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("DELETE", "/-/vaults/v/archives/a%00b", b""),
        ("GET", "/-/vaults/v/jobs/a%00b", b""),
        ("GET", "/-/vaults/v/jobs?marker=a%00b", b""),
        ("POST", "/-/vaults/v/jobs", b'{"Type": "archive-retrieval", "ArchiveId": "a\\u0000"}'),
        ("POST", "/-/vaults/v/tags?operation=remove", b'{"TagKeys": ["a\\u0000"]}'),
        ("POST", "/-/vaults/v/tags?operation=remove", b'{"TagKeys": ["\\ud800"]}'),
    ],
)
def test_text_postgresql_cannot_hold_is_refused(
    pg_api: Api, method: str, path: str, body: bytes
) -> None:
    """NUL and lone surrogates reached PostgreSQL and came back as 500s."""
    assert pg_api("PUT", "/-/vaults/v").status_code == 201
    upload(pg_api, "v", b"data")  # a vault policy would read InitiateJob's ArchiveId too
    assert_error(pg_api(method, path, body=body), 400, "InvalidParameterValueException")


@pytest.mark.parametrize("marker", [str(2**64), str(2**63), str(10_000 * MIB)])
def test_list_parts_marker_past_the_last_possible_part(api: Api, vault: str, marker: str) -> None:
    """A part starts before 10,000 part sizes; a larger number reached the store as an
    integer out of its range (a 500 on PostgreSQL)."""
    upload_id = start_upload(api)
    resp = api("GET", f"/-/vaults/v/multipart-uploads/{upload_id}?marker={marker}")
    assert_error(resp, 400, "InvalidParameterValueException", f"Invalid marker: {marker}")


NOT_HTTP = "The request is not valid HTTP/1.1: Invalid header value char"


@pytest.mark.parametrize("value", [b"a\x00b", b"a\x01b", b"\x1f", b"a\x7f"])
def test_control_bytes_in_header_values(api: Api, vault: str, value: bytes) -> None:
    """What llhttp refuses on a socket (test_malformed_http.py) is refused in process too."""
    signed = api.signer.sign(
        "POST", "/-/vaults/v/tags?operation=add", body=js({"Tags": {"a": "b"}})
    )
    headers = [(k, v.encode()) for k, v in signed.headers.items()] + [(b"x-extra", value)]
    resp = api.client.request("POST", signed.url, headers=headers, content=signed.body)
    assert_error(resp, 400, "BadRequest", NOT_HTTP)
    assert api("GET", "/-/vaults/v/tags").json() == {"Tags": {}}


def test_tab_and_latin1_in_header_values_are_served(api: Api, vault: str) -> None:
    signed = api.signer.sign("GET", "/-/vaults/v")
    headers = [(k, v.encode()) for k, v in signed.headers.items()] + [(b"x-extra", b"a\tb\xff")]
    assert api.client.request("GET", signed.url, headers=headers).status_code == 200


@pytest.mark.postgres
def test_nul_in_the_access_key_on_postgresql(pg_api: Api) -> None:
    """The access key is looked up in the metadata store: NUL came back as a 500."""
    signed = pg_api.signer.sign("GET", "/-/vaults")
    authorization = signed.headers["Authorization"].replace("Credential=", "Credential=a\x00b")
    headers = {**signed.headers, "Authorization": authorization}
    resp = pg_api.client.request("GET", signed.url, headers=headers)
    assert_error(resp, 400, "BadRequest", NOT_HTTP)

"""Hand-signed upload requests: every validation of spec 2.18-2.25 with its exact error,
and proof that a rejected request changed nothing."""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta

import pytest

from openglacier.clock import ManualClock
from openglacier.treehash import MIB, tree_hash
from support.asserts import assert_error
from support.inprocess import ACCOUNT_ID, Api
from support.signing import upload_headers

V = "/-/vaults/v"


@pytest.fixture(autouse=True)
def vault(api: Api) -> None:
    assert api("PUT", V).status_code == 201


def archive_count(api: Api) -> int:
    resp = api.admin("GET", f"/vaults/{ACCOUNT_ID}/v/archives")
    assert resp.status_code == 200
    return len(resp.json()["archives"])


def test_upload_archive_round_trip_headers(api: Api) -> None:
    body = os.urandom(MIB + 5)
    resp = api("POST", V + "/archives", body=body, headers=upload_headers(body, "d e s c"))
    assert resp.status_code == 201
    archive_id = resp.headers["x-amz-archive-id"]
    assert resp.headers["location"] == f"/{ACCOUNT_ID}/vaults/v/archives/{archive_id}"
    assert resp.headers["x-amz-sha256-tree-hash"] == tree_hash(body)
    listed = api.admin("GET", f"/vaults/{ACCOUNT_ID}/v/archives").json()["archives"]
    assert listed[0]["ArchiveId"] == archive_id
    assert listed[0]["ArchiveDescription"] == "d e s c"
    assert listed[0]["Size"] == len(body)


def test_wrong_tree_hash(api: Api) -> None:
    body = b"payload"
    resp = api("POST", V + "/archives", body=body, headers={"x-amz-sha256-tree-hash": "a" * 64})
    assert_error(
        resp,
        400,
        "InvalidParameterValueException",
        f"Checksum mismatch: expected {'a' * 64}, computed {tree_hash(body)}",
    )
    assert archive_count(api) == 0


def test_missing_tree_hash(api: Api) -> None:
    resp = api("POST", V + "/archives", body=b"payload")
    assert_error(resp, 400, "MissingParameterValueException")
    assert archive_count(api) == 0


def test_wrong_content_hash(api: Api) -> None:
    body = b"payload"
    resp = api(
        "POST", V + "/archives", body=body, headers=upload_headers(body), content_sha256="b" * 64
    )
    assert_error(resp, 403, "InvalidSignatureException")
    assert resp.json()["message"] == (
        "The value passed in as x-amz-content-sha256 does not match the computed payload "
        f"hash. Computed digest: {hashlib.sha256(body).hexdigest()} expected hash: {'b' * 64}"
    )
    assert archive_count(api) == 0


def test_missing_content_hash(api: Api) -> None:
    body = b"payload"
    resp = api(
        "POST", V + "/archives", body=body, headers=upload_headers(body), content_sha256=False
    )
    assert_error(resp, 400, "MissingParameterValueException")


def test_empty_archive_is_invalid_content_length(api: Api) -> None:
    resp = api(
        "POST",
        V + "/archives",
        body=b"",
        headers=upload_headers(b""),
        content_sha256=hashlib.sha256(b"").hexdigest(),
    )
    assert_error(resp, 400, "InvalidParameterValueException", "Invalid Content-Length: 0")


def test_description_rules(api: Api) -> None:
    body = b"x"
    resp = api("POST", V + "/archives", body=body, headers=upload_headers(body, "a" * 1025))
    assert_error(resp, 400, "InvalidParameterValueException")
    assert archive_count(api) == 0


def test_upload_to_missing_vault(api: Api) -> None:
    body = b"x"
    resp = api("POST", "/-/vaults/none/archives", body=body, headers=upload_headers(body))
    assert_error(resp, 404, "ResourceNotFoundException")


def test_delete_archive_of_another_vault(api: Api) -> None:
    api("PUT", "/-/vaults/other")
    body = b"x"
    archive_id = api("POST", V + "/archives", body=body, headers=upload_headers(body)).headers[
        "x-amz-archive-id"
    ]
    resp = api("DELETE", f"/-/vaults/other/archives/{archive_id}")
    assert_error(
        resp,
        400,
        "InvalidParameterValueException",
        f"Invalid vault name: arn:aws:glacier:us-east-1:{ACCOUNT_ID}:vaults/other",
    )
    assert archive_count(api) == 1
    assert api("DELETE", "/-/vaults/v/archives/never-issued").status_code == 204


# --- multipart ---------------------------------------------------------------------


def initiate(api: Api, part_size: int = MIB) -> str:
    resp = api("POST", V + "/multipart-uploads", headers={"x-amz-part-size": str(part_size)})
    assert resp.status_code == 201, resp.text
    upload_id = resp.headers["x-amz-multipart-upload-id"]
    assert resp.headers["location"] == f"/{ACCOUNT_ID}/vaults/v/multipart-uploads/{upload_id}"
    return upload_id


def put_part(api: Api, upload_id: str, first: int, body: bytes, **kw: object):  # type: ignore[no-untyped-def]
    headers = {
        "Content-Range": f"bytes {first}-{first + len(body) - 1}/*",
        "x-amz-sha256-tree-hash": tree_hash(body),
    }
    headers.update(kw.pop("headers", {}) or {})  # type: ignore[call-overload]
    return api("PUT", f"{V}/multipart-uploads/{upload_id}", body=body, headers=headers, **kw)


@pytest.mark.parametrize("size", ["0", "3145728", "524288", "8589934592", "abc", "-1048576"])
def test_bad_part_size(api: Api, size: str) -> None:
    resp = api("POST", V + "/multipart-uploads", headers={"x-amz-part-size": size})
    assert_error(
        resp,
        400,
        "InvalidParameterValueException",
        f"Invalid part size: {size}. Part size must not be null, must be a power of "
        "two and be between 1048576 and 4294967296 bytes.",
    )


def test_missing_part_size_reads_as_zero(api: Api) -> None:
    resp = api("POST", V + "/multipart-uploads")
    assert_error(resp, 400, "InvalidParameterValueException")
    assert resp.json()["message"].startswith("Invalid part size: 0.")


def test_largest_part_size_accepted(api: Api) -> None:
    initiate(api, 4 * 1024 * MIB)


def test_misaligned_range(api: Api) -> None:
    upload_id = initiate(api, 2 * MIB)
    body = b"x" * (2 * MIB)
    resp = put_part(api, upload_id, MIB, body)
    assert_error(
        resp,
        400,
        "InvalidParameterValueException",
        f"Content-Range: bytes {MIB}-{3 * MIB - 1}/* is not aligned with part size {2 * MIB}",
    )


def test_part_longer_than_part_size(api: Api) -> None:
    upload_id = initiate(api, MIB)
    resp = put_part(api, upload_id, 0, b"x" * (MIB + 1))
    assert_error(resp, 400, "InvalidParameterValueException")


@pytest.mark.parametrize("value", ["bytes 5-1/*", "bytes=0-1/*", "0-1", "bytes a-b/*"])
def test_unparsable_range(api: Api, value: str) -> None:
    upload_id = initiate(api)
    resp = put_part(api, upload_id, 0, b"ab", headers={"Content-Range": value})
    assert_error(resp, 400, "InvalidParameterValueException", f"Invalid Content-Range: {value}")


def test_range_incompatible_with_length(api: Api) -> None:
    upload_id = initiate(api)
    resp = put_part(api, upload_id, 0, b"abc", headers={"Content-Range": "bytes 0-9/*"})
    assert_error(
        resp,
        400,
        "InvalidParameterValueException",
        "Content-Range: bytes 0-9/* is incompatible with Content-Length: 3",
    )


def test_too_many_parts(api: Api) -> None:
    upload_id = initiate(api)
    resp = put_part(api, upload_id, 10_000 * MIB, b"x")
    assert_error(
        resp,
        400,
        "InvalidParameterValueException",
        "This is part number 10001 for the current multipart upload. It exceeds the "
        "limit of 10000 parts.",
    )
    assert put_part(api, upload_id, 9_999 * MIB, b"x").status_code == 204


def test_part_tree_hash_mismatch(api: Api) -> None:
    upload_id = initiate(api)
    resp = put_part(api, upload_id, 0, b"abc", headers={"x-amz-sha256-tree-hash": "c" * 64})
    assert_error(resp, 400, "InvalidParameterValueException")
    assert api("GET", f"{V}/multipart-uploads/{upload_id}").json()["Parts"] == []


def test_part_replacement_latest_wins(api: Api) -> None:
    upload_id = initiate(api)
    put_part(api, upload_id, 0, b"first")
    assert put_part(api, upload_id, 0, b"second!").status_code == 204
    parts = api("GET", f"{V}/multipart-uploads/{upload_id}").json()["Parts"]
    assert parts == [{"RangeInBytes": "0-6", "SHA256TreeHash": tree_hash(b"second!")}]
    resp = api(
        "POST",
        f"{V}/multipart-uploads/{upload_id}",
        headers={"x-amz-archive-size": "7", "x-amz-sha256-tree-hash": tree_hash(b"second!")},
    )
    assert resp.status_code == 201


def test_complete_detects_gap_short_part_size_and_hash(api: Api) -> None:
    upload_id = initiate(api)
    a, c = b"a" * MIB, b"c" * 10
    put_part(api, upload_id, 0, a)
    put_part(api, upload_id, 2 * MIB, c)
    path = f"{V}/multipart-uploads/{upload_id}"
    whole = tree_hash(a + b"b" * MIB + c)
    resp = api(
        "POST",
        path,
        headers={"x-amz-archive-size": str(2 * MIB + 10), "x-amz-sha256-tree-hash": whole},
    )
    assert_error(
        resp,
        400,
        "InvalidParameterValueException",
        f"Missing content range: bytes {MIB}-{2 * MIB - 1}",
    )
    put_part(api, upload_id, MIB, b"b" * MIB)
    resp = api(
        "POST",
        path,
        headers={"x-amz-archive-size": str(2 * MIB + 11), "x-amz-sha256-tree-hash": whole},
    )
    assert_error(resp, 400, "InvalidParameterValueException")
    resp = api(
        "POST",
        path,
        headers={"x-amz-archive-size": str(2 * MIB + 10), "x-amz-sha256-tree-hash": "d" * 64},
    )
    assert_error(
        resp, 400, "InvalidParameterValueException", f"Invalid x-amz-sha256-tree-hash: {'d' * 64}"
    )
    # Every failure left the upload in progress; the right values now succeed.
    resp = api(
        "POST",
        path,
        headers={"x-amz-archive-size": str(2 * MIB + 10), "x-amz-sha256-tree-hash": whole},
    )
    assert resp.status_code == 201
    assert resp.headers["x-amz-sha256-tree-hash"] == whole


def test_complete_rejects_short_non_last_part(api: Api) -> None:
    upload_id = initiate(api)
    put_part(api, upload_id, 0, b"short")
    put_part(api, upload_id, MIB, b"tail")
    resp = api(
        "POST",
        f"{V}/multipart-uploads/{upload_id}",
        headers={"x-amz-archive-size": str(MIB + 4), "x-amz-sha256-tree-hash": "e" * 64},
    )
    assert_error(resp, 400, "InvalidParameterValueException")


def test_complete_missing_headers(api: Api) -> None:
    upload_id = initiate(api)
    path = f"{V}/multipart-uploads/{upload_id}"
    assert_error(
        api("POST", path, headers={"x-amz-sha256-tree-hash": "e" * 64}),
        400,
        "MissingParameterValueException",
    )
    assert_error(
        api("POST", path, headers={"x-amz-archive-size": "1"}),
        400,
        "MissingParameterValueException",
    )
    assert_error(
        api("POST", path, headers={"x-amz-archive-size": "x", "x-amz-sha256-tree-hash": "e" * 64}),
        400,
        "InvalidParameterValueException",
    )


def test_abort_semantics(api: Api) -> None:
    upload_id = initiate(api)
    put_part(api, upload_id, 0, b"abc")
    path = f"{V}/multipart-uploads/{upload_id}"
    assert api("DELETE", path).status_code == 204
    assert api("DELETE", path).status_code == 204
    assert_error(
        put_part(api, upload_id, 0, b"abc"),
        404,
        "ResourceNotFoundException",
        f"The upload ID was not found: {upload_id}",
    )
    done = initiate(api)
    put_part(api, done, 0, b"abc")
    done_path = f"{V}/multipart-uploads/{done}"
    api(
        "POST",
        done_path,
        headers={"x-amz-archive-size": "3", "x-amz-sha256-tree-hash": tree_hash(b"abc")},
    )
    assert_error(api("DELETE", done_path), 404, "ResourceNotFoundException")
    assert_error(api("DELETE", f"{V}/multipart-uploads/unknown"), 404, "ResourceNotFoundException")


def test_idle_uploads_expire(api: Api, clock: ManualClock) -> None:
    stale = initiate(api)
    clock.advance(timedelta(hours=23))
    fresh = initiate(api)
    put_part(api, fresh, 0, b"keep me")
    clock.advance(timedelta(hours=2))
    report = api.admin("POST", "/maintenance").json()
    assert report["uploads_expired"] == 1
    assert_error(api("GET", f"{V}/multipart-uploads/{stale}"), 404, "ResourceNotFoundException")
    assert api("GET", f"{V}/multipart-uploads/{fresh}").status_code == 200


def test_list_parts_bad_marker_and_limit(api: Api) -> None:
    upload_id = initiate(api)
    path = f"{V}/multipart-uploads/{upload_id}"
    assert_error(api("GET", path + "?marker=12"), 400, "InvalidParameterValueException")
    assert_error(api("GET", path + "?limit=0"), 400, "InvalidParameterValueException")
    assert_error(api("GET", path + "?limit=x"), 400, "InvalidParameterValueException")
    assert api("GET", path + "?limit=5000").status_code == 200  # clamped, not refused

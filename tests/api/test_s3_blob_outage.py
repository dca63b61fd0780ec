"""The API over an s3+http blob store whose gateway stops answering: a clean
Glacier 5xx (ServiceUnavailableException, JSON body, request id), nothing
recorded, and service as before once the gateway answers again (design 5)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from api.conftest import make_settings
from openglacier.clock import ManualClock
from openglacier.server import Runtime, build_runtime
from openglacier.storage.blobs.s3 import S3BlobStore
from openglacier.storage.blobs.s3_client import S3Credentials, S3Location, make_client
from openglacier.treehash import MIB
from support.asserts import assert_error
from support.inprocess import ACCOUNT_ID, Api
from support.jobs import output, run_jobs, start_job, upload
from support.seaweed import ACCESS_KEY, REGION, SECRET_KEY, Seaweed
from support.server import free_port
from support.signing import Signer, upload_headers

BUCKET = "blob-contract"


@pytest.fixture
def s3_runtime(tmp_path: Path, seaweed_store: Seaweed) -> Iterator[Runtime]:
    prefix = f"api-outage/{uuid.uuid4().hex}"
    settings = make_settings(
        tmp_path,
        clock="manual",
        blob_url=seaweed_store.blob_url(BUCKET, prefix),
        blob_access_key_id=ACCESS_KEY,
        blob_secret_access_key=SECRET_KEY,
        blob_region=REGION,
    )
    runtime = build_runtime(settings, clock=ManualClock())
    try:
        yield runtime
    finally:
        runtime.close()
        seaweed_store.empty(BUCKET, prefix)


@pytest.fixture
def s3_api(s3_runtime: Runtime, signer: Signer) -> Iterator[Api]:
    with TestClient(s3_runtime.app, base_url="http://testserver") as client:
        yield Api(client, signer)


def test_a_dead_gateway_is_a_clean_5xx_and_service_resumes(
    s3_runtime: Runtime, s3_api: Api
) -> None:
    api = s3_api
    assert api("PUT", "/-/vaults/v").status_code == 201
    body = uuid.uuid4().bytes * (MIB // 8)  # 2 MiB
    job = start_job(api, "v", {"Type": "archive-retrieval", "ArchiveId": upload(api, "v", body)})
    assert run_jobs(api) == 1
    blobs = s3_runtime.services.deps.blobs
    assert isinstance(blobs, S3BlobStore)
    dead = S3Location.parse(f"s3+http://127.0.0.1:{free_port()}/{BUCKET}")
    real, blobs.client = (
        blobs.client,
        make_client(dead, S3Credentials(ACCESS_KEY, SECRET_KEY, REGION), 4),
    )
    try:
        resp = api("POST", "/-/vaults/v/archives", body=b"x", headers=upload_headers(b"x", None))
        assert_error(resp, 500, "ServiceUnavailableException")
        assert resp.headers["x-amzn-requestid"]
        assert "Traceback" not in resp.text
        # The store's endpoint and driver text stay in the log, not in the answer.
        assert dead.endpoint.split("//")[1] not in resp.text
        assert "Could not connect" not in resp.text
        assert_error(output(api, "v", job), 500, "ServiceUnavailableException")
    finally:
        blobs.client.close()
        blobs.client = real
    listed = api.admin("GET", f"/vaults/{ACCOUNT_ID}/v/archives").json()["archives"]
    assert len(listed) == 1  # the failed upload recorded nothing
    assert output(api, "v", job).content == body
    upload(api, "v", b"after the outage")

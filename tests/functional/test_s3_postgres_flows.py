"""The end-to-end client flows once more on the scale-out data plane (issue 13):
`openglacier serve --metadata-url postgresql://... --blob-url s3+http://...`,
archive bytes on the session's SeaweedFS, metadata in a fresh PostgreSQL database.

The flows are not copied: the tests below are imported from the modules that
define them (boto3, AWS CLI, retrieval, inventory and select) and collected
again here, where this module's `server` fixture overrides conftest.py's, so
every fixture they use (glacier, vault, cli_env, retrieved, inventoried, aws,
retrieval) talks to the PostgreSQL + S3 server. The last test then checks where
the bytes went: every blob the metadata names is an object in the bucket (and
nothing else is), a deleted archive's objects go, and the data directory holds
no blob at all.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

# The reused flows: collected again in this module, against its `server`.
from test_awscli import test_cli_vault_archive_multipart
from test_boto3 import (
    test_multipart_pagination_and_abort,
    test_multipart_upload_end_to_end,
    test_upload_archive_counts_and_delete,
)
from test_jobs_awscli import (
    aws,
    retrieval,
    test_cli_csv_inventory,
    test_cli_get_job_output,
    test_cli_ranged_get_job_output,
)
from test_jobs_boto3 import (
    inventoried,
    retrieved,
    test_inventory_retrieval_csv,
    test_inventory_retrieval_json,
    test_multipart_upload_retrieval,
    test_ranged_job_output,
    test_ranged_output_edge_cases,
    test_single_upload_retrieval,
)
from test_select_seaweed import test_select_job_writes_results_to_s3

from openglacier.ports import BlobRef
from openglacier.storage.metadata.store import open_metadata_store
from openglacier.treehash import MIB
from support.codecs import codec1_object_size, codec1_payload
from support.seaweed import ACCESS_KEY, REGION, SECRET_KEY, Seaweed
from support.server import LiveServer
from support.services import fresh_pg_database
from support.uploads import multipart_upload

__all__ = [  # what pytest collects from the imports above (and keeps ruff from pruning them)
    "aws",
    "inventoried",
    "retrieval",
    "retrieved",
    "test_cli_csv_inventory",
    "test_cli_get_job_output",
    "test_cli_ranged_get_job_output",
    "test_cli_vault_archive_multipart",
    "test_inventory_retrieval_csv",
    "test_inventory_retrieval_json",
    "test_multipart_pagination_and_abort",
    "test_multipart_upload_end_to_end",
    "test_multipart_upload_retrieval",
    "test_ranged_job_output",
    "test_ranged_output_edge_cases",
    "test_select_job_writes_results_to_s3",
    "test_single_upload_retrieval",
    "test_upload_archive_counts_and_delete",
]

pytestmark = [pytest.mark.functional, pytest.mark.postgres]

BUCKET = "pg-flows"  # created by the server at start (it is missing on a fresh SeaweedFS)


@pytest.fixture(scope="module")
def store(seaweed_store: Seaweed) -> Seaweed:
    """The session's SeaweedFS with test_select_seaweed's output bucket, which
    that module may have created already in this session."""
    seaweed_store.ensure_bucket("select-out")
    return seaweed_store


@dataclass(frozen=True)
class Deployment:
    server: LiveServer
    metadata_url: str
    prefix: str  # this module's key prefix in BUCKET


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, pg_admin: URL, store: Seaweed
) -> Iterator[Deployment]:
    """One server for the module: a fresh PostgreSQL database, blobs under a
    fresh prefix of BUCKET, select output to the same SeaweedFS."""
    prefix = f"flows-{uuid.uuid4().hex[:12]}"
    with fresh_pg_database(pg_admin) as url:
        env = {
            "OPENGLACIER_METADATA_URL": url.replace("postgresql+psycopg://", "postgresql://"),
            "OPENGLACIER_BLOB_URL": store.blob_url(BUCKET, prefix),
            "OPENGLACIER_BLOB_ACCESS_KEY_ID": ACCESS_KEY,
            "OPENGLACIER_BLOB_SECRET_ACCESS_KEY": SECRET_KEY,
            "OPENGLACIER_BLOB_REGION": REGION,
            "OPENGLACIER_SELECT_OUTPUT_URL": store.output_url,
            "OPENGLACIER_SELECT_OUTPUT_ACCESS_KEY_ID": ACCESS_KEY,
            "OPENGLACIER_SELECT_OUTPUT_SECRET_ACCESS_KEY": SECRET_KEY,
        }
        live = LiveServer(tmp_path_factory.mktemp("s3-pg") / "data", extra_env=env).start()
        try:
            yield Deployment(live, url, prefix)
        finally:
            live.stop()
            store.empty(BUCKET, prefix + "/")


@pytest.fixture(scope="module")
def server(deployment: Deployment) -> LiveServer:
    """Overrides conftest.py's `server` for every flow collected in this module."""
    return deployment.server


@pytest.fixture(scope="module")
def select_server(deployment: Deployment) -> LiveServer:
    """test_select_seaweed's name for the server."""
    return deployment.server


def bucket_objects(store: Seaweed, prefix: str) -> dict[str, bytes]:
    """Blob key -> object bytes, for every object under `prefix` (paginated)."""
    client = store.client()
    found: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
            found[item["Key"].removeprefix(prefix)] = body
    client.close()
    return found


def referenced(metadata_url: str) -> dict[str, BlobRef]:
    """Every blob the metadata names as data (with its payload size and owner)."""
    metadata = open_metadata_store(metadata_url)
    try:
        refs: dict[str, BlobRef] = {}
        after: str | None = None
        while True:
            with metadata.transaction(readonly=True) as tx:
                page = tx.blob_refs(after, 500)
            if not page:
                return refs
            refs.update((ref.key, ref) for ref in page)
            after = page[-1].key
    finally:
        metadata.close()


def collect_garbage(server: LiveServer) -> None:
    # Maintenance drains the durable deletion queue (DeleteArchive queued the blobs).
    resp = server.admin("POST", "/maintenance")
    assert resp.status_code == 200, resp.text


def test_the_bytes_live_in_the_bucket_not_the_data_dir(
    deployment: Deployment, store: Seaweed
) -> None:
    """Runs after the flows (defined last): what they left, plus two archives of its own."""
    server, prefix = deployment.server, deployment.prefix + "/"
    glacier = server.client()
    glacier.create_vault(vaultName="where-bytes-live")
    before = set(bucket_objects(store, prefix))
    body = os.urandom(MIB + 5)
    single = glacier.upload_archive(vaultName="where-bytes-live", body=body)["archiveId"]
    added = {k: v for k, v in bucket_objects(store, prefix).items() if k not in before}
    assert [codec1_payload(blob) for blob in added.values()] == [body]  # verbatim, then index
    data = os.urandom(3 * MIB + 7)
    multi = multipart_upload(glacier, "where-bytes-live", data)["archiveId"]

    collect_garbage(server)
    objects = bucket_objects(store, prefix)
    refs = referenced(deployment.metadata_url)
    assert set(added) <= set(refs)
    missing = [ref for key, ref in refs.items() if key not in objects]
    assert missing == []  # every blob the metadata names is an object
    assert set(objects) <= set(refs)  # and no stray object is left
    for key, ref in refs.items():
        assert len(objects[key]) == codec1_object_size(ref.size), ref
    assert server.admin("POST", "/audit").json()["problems"] == []

    for archive_id in (single, multi):
        glacier.delete_archive(vaultName="where-bytes-live", archiveId=archive_id)
    collect_garbage(server)
    left = bucket_objects(store, prefix)
    assert set(left) == set(referenced(deployment.metadata_url))
    assert not set(added) & set(left)  # the deleted archive's object is gone
    assert len(left) < len(objects)

    blobs_dir = server.data_dir / "blobs"
    assert not blobs_dir.exists() or [p for p in blobs_dir.rglob("*") if p.is_file()] == []
    assert not _files_named_like_blobs(server.data_dir, set(objects))


def _files_named_like_blobs(data_dir: Path, keys: set[str]) -> list[Path]:
    """Any file in the data dir whose name is a blob key's last part: a blob
    written locally under another directory than blobs/ would show here."""
    names = {key.rsplit("/", 1)[-1] for key in keys}
    return [p for p in data_dir.rglob("*") if p.is_file() and p.name in names]

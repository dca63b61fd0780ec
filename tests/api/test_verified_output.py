"""A retrieval job reads and verifies its whole range when it completes;
GetJobOutput then hashes only what no per-chunk check covers.

Damage made to an archive's blob before its retrieval job completes fails the
job with the damaged-data message (domain/damage.py), and the operator's ERROR
line names the archive, its vault and the blob, even when the blob is present
and of the right size (only reading it finds the damage). Only the retrieved
range is read: damage outside it does not fail a ranged retrieval.

On the way out, blobs whose store checks every chunk (codecs 1+, the default)
are not SHA-256'd again; codec-0 blobs (written before codecs existed, made
here with a legacy store under the same key) are, leaf by leaf, also when an
archive's segments mix both. tests/api/test_checked_output.py covers damage
made after completion to checked blobs.
"""

from __future__ import annotations

import hashlib
import logging
import os
from types import SimpleNamespace
from typing import Any

import pytest

from openglacier.domain.damage import DAMAGED_MESSAGE
from openglacier.domain.jobs import reads
from openglacier.server import Runtime
from openglacier.storage.blobs import put_blob
from openglacier.storage.blobs.codecs import CodecConfig
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from openglacier.storage.blobs.format import HEADER_LEN
from openglacier.treehash import MIB, tree_hash
from support.asserts import assert_error
from support.inprocess import ACCOUNT_ID, Api
from support.jobs import advance, describe, output, run_jobs, start_job, upload

V = "v"
ARN = f"arn:aws:glacier:us-east-1:{ACCOUNT_ID}:vaults/{V}"
HOUR = 3600


@pytest.fixture
def timing() -> str:
    return "aws"  # nothing completes until the test moves the manual clock


@pytest.fixture(autouse=True)
def vault(api: Api) -> None:
    assert api("PUT", f"/-/vaults/{V}").status_code == 201


def _only_blob(runtime: Runtime) -> str:
    (key,) = runtime.services.deps.blobs.keys()
    return key


def _flip_payload_byte(runtime: Runtime, key: str, offset: int) -> None:
    """Flip one byte of the blob's stored payload: the file keeps its size."""
    objects = runtime.settings.data_dir / "blobs" / "objects"
    path = objects / key[:2] / key[2:4] / key
    with path.open("r+b") as f:
        f.seek(HEADER_LEN + offset)
        byte = f.read(1)
        f.seek(HEADER_LEN + offset)
        f.write(bytes([byte[0] ^ 0x01]))


def _complete(api: Api, params: dict[str, str]) -> tuple[str, dict[str, object]]:
    job_id = start_job(api, V, {"Type": "archive-retrieval", **params})
    advance(api, 4 * HOUR)
    assert run_jobs(api) == 1
    return job_id, describe(api, V, job_id)


def test_completion_finds_damage_made_before_it(
    api: Api, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    body = os.urandom(3 * MIB + 5)
    archive_id = upload(api, V, body)
    key = _only_blob(runtime)
    _flip_payload_byte(runtime, key, 2 * MIB + 7)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        job_id, job = _complete(api, {"ArchiveId": archive_id})
    assert (job["StatusCode"], job["StatusMessage"]) == ("Failed", DAMAGED_MESSAGE)
    (line,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    message = line.getMessage()
    for name in (archive_id, ARN, key, job_id):
        assert name in message
    assert line.exc_info is None  # one line, no traceback
    assert_error(output(api, V, job_id), 400, "InvalidParameterValueException")


def test_completion_reads_only_the_retrieved_range(api: Api, runtime: Runtime) -> None:
    body = os.urandom(4 * MIB)
    archive_id = upload(api, V, body)
    _flip_payload_byte(runtime, _only_blob(runtime), 3 * MIB + 5)
    first_mib = {"ArchiveId": archive_id, "RetrievalByteRange": f"0-{2 * MIB - 1}"}
    job_id, job = _complete(api, first_mib)
    assert job["StatusCode"] == "Succeeded"
    assert output(api, V, job_id).content == body[: 2 * MIB]
    _, whole = _complete(api, {"ArchiveId": archive_id})
    assert (whole["StatusCode"], whole["StatusMessage"]) == ("Failed", DAMAGED_MESSAGE)


def test_an_intact_archive_still_completes_and_is_served(api: Api) -> None:
    body = os.urandom(5 * MIB + 3)
    archive_id = upload(api, V, body)
    job_id, job = _complete(api, {"ArchiveId": archive_id})
    assert job["StatusCode"] == "Succeeded"
    assert output(api, V, job_id).content == body
    assert output(api, V, job_id, "bytes=7-4194310").content == body[7:4194311]


# --- what GetJobOutput hashes ---------------------------------------------------------


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of every leaf domain/jobs/reads.py SHA-256s, in order."""
    lengths: list[int] = []

    def sha256(data: bytes) -> Any:
        lengths.append(len(data))
        return hashlib.sha256(data)

    monkeypatch.setattr(reads, "hashlib", SimpleNamespace(sha256=sha256))
    return lengths


def _as_codec0(runtime: Runtime, key: str) -> None:
    """Rewrite a blob as codec 0 under the same key, as if stored before codecs."""
    store = runtime.services.deps.blobs
    assert isinstance(store, FilesystemBlobStore)
    payload = b"".join(store.open(key))
    store.delete(key)
    put_blob(FilesystemBlobStore(store.root, CodecConfig(legacy_raw=True)), key, [payload])
    info = store.stat(key)
    assert info is not None
    assert info.codec == 0


def _multipart(api: Api, body: bytes, part_size: int) -> str:
    target = f"/-/vaults/{V}/multipart-uploads"
    resp = api("POST", target, headers={"x-amz-part-size": str(part_size)})
    assert resp.status_code == 201, resp.text
    target += "/" + resp.headers["x-amz-multipart-upload-id"]
    for first in range(0, len(body), part_size):
        part = body[first : first + part_size]
        headers = {
            "Content-Range": f"bytes {first}-{first + len(part) - 1}/*",
            "x-amz-sha256-tree-hash": tree_hash(part),
        }
        assert api("PUT", target, body=part, headers=headers).status_code == 204
    headers = {"x-amz-archive-size": str(len(body)), "x-amz-sha256-tree-hash": tree_hash(body)}
    resp = api("POST", target, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.headers["x-amz-archive-id"]


def test_checked_blobs_are_hashed_at_completion_not_on_the_way_out(
    api: Api, runtime: Runtime, hashed: list[int]
) -> None:
    body = os.urandom(5 * MIB + 3)
    archive_id = upload(api, V, body)
    info = runtime.services.deps.blobs.stat(_only_blob(runtime))
    assert info is not None
    assert info.codec != 0  # the default store checks every chunk
    hashed.clear()
    job_id, job = _complete(api, {"ArchiveId": archive_id})
    assert job["StatusCode"] == "Succeeded"
    assert hashed == [MIB] * 5 + [3]  # the completion check: every leaf
    hashed.clear()
    assert output(api, V, job_id).content == body
    assert output(api, V, job_id, "bytes=1048570-3145730").content == body[1048570:3145731]
    assert hashed == []


def test_codec0_blobs_are_still_verified_on_the_way_out(
    api: Api, runtime: Runtime, hashed: list[int]
) -> None:
    body = os.urandom(9 * MIB)
    archive_id = upload(api, V, body)
    key = _only_blob(runtime)
    _as_codec0(runtime, key)
    job_id, job = _complete(api, {"ArchiveId": archive_id})
    assert job["StatusCode"] == "Succeeded"
    hashed.clear()
    assert output(api, V, job_id).content == body
    assert hashed == [MIB] * 9
    # Damage after completion: SHA-256 still stops it before it is sent.
    _flip_payload_byte(runtime, key, reads.FIRST_WINDOW - MIB + 5)  # in the first window
    resp = output(api, V, job_id)
    assert_error(resp, 500, "ServiceUnavailableException")
    assert f"leaf {reads.FIRST_WINDOW // MIB - 1} " in resp.json()["message"]
    assert "SHA-256" in resp.json()["message"]


def test_mixed_segments_hash_only_the_codec0_part(
    api: Api, runtime: Runtime, hashed: list[int]
) -> None:
    body = os.urandom(5 * MIB + 3)  # parts of 2, 2 and 1 MiB + 3 bytes
    archive_id = _multipart(api, body, 2 * MIB)
    second_part = body[2 * MIB : 2 * MIB + 64]
    blobs = runtime.services.deps.blobs
    (middle,) = [key for key in list(blobs.keys()) if _starts(runtime, key, second_part)]
    _as_codec0(runtime, middle)
    job_id, job = _complete(api, {"ArchiveId": archive_id})
    assert job["StatusCode"] == "Succeeded"
    hashed.clear()
    assert output(api, V, job_id).content == body
    assert hashed == [MIB, MIB]  # the codec-0 middle part's two leaves only
    hashed.clear()
    assert output(api, V, job_id, f"bytes=0-{2 * MIB - 1}").content == body[: 2 * MIB]
    assert hashed == []


def _starts(runtime: Runtime, key: str, prefix: bytes) -> bool:
    reader = runtime.services.deps.blobs.open(key, 0, len(prefix))
    try:
        return b"".join(reader) == prefix
    finally:
        reader.close()

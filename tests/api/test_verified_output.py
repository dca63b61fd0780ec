"""A retrieval job reads and verifies its whole range when it completes.

Damage made to an archive's blob before its retrieval job completes fails the
job with the damaged-data message (domain/damage.py), and the operator's ERROR
line names the archive, its vault and the blob, even when the blob is present
and of the right size (only reading it finds the damage). Only the retrieved
range is read: damage outside it does not fail a ranged retrieval.
"""

from __future__ import annotations

import logging
import os

import pytest

from openglacier.domain.damage import DAMAGED_MESSAGE
from openglacier.server import Runtime
from openglacier.storage.blobs.format import HEADER_LEN
from openglacier.treehash import MIB
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

"""Damage made after a retrieval job completed, to a blob whose store checks
every chunk: GetJobOutput, which no longer SHA-256s such blobs, still never
sends the damaged bytes.

The store raises before it yields a chunk that fails its CRC32C (codec 1, the
default) or its AES-GCM tag (zstd + encryption). In the first window that is a
500 naming the archive; later the status line is out and the body is cut short
before the damaged chunk. Either way the operator gets one ERROR line naming
the archive, its vault and the blob.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from api.conftest import make_settings
from openglacier.clock import ManualClock
from openglacier.domain.jobs.reads import FIRST_WINDOW, READ_WINDOW
from openglacier.keyring import create_key_file
from openglacier.server import Runtime, build_runtime
from openglacier.treehash import MIB
from support.asserts import assert_error
from support.codecs import file_offset_of, flip_bit
from support.inprocess import ACCOUNT_ID, Api
from support.jobs import advance, output, run_jobs, start_job, upload
from support.signing import Signer

V = "v"
ARN = f"arn:aws:glacier:us-east-1:{ACCOUNT_ID}:vaults/{V}"
CODECS = {"checked": ({}, 1), "zstd-aes": ({"compression": "zstd"}, 4)}


@pytest.fixture(params=list(CODECS))
def codec(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def runtime(tmp_path: Path, clock: ManualClock, codec: str) -> Iterator[Runtime]:
    overrides: dict[str, object] = dict(CODECS[codec][0])
    if codec == "zstd-aes":
        key_file = tmp_path / "blob.key"
        create_key_file(key_file)
        overrides["encryption_key_file"] = str(key_file)
    settings = make_settings(tmp_path, timing="aws", clock="manual", **overrides)
    rt = build_runtime(settings, clock=clock)
    yield rt
    rt.close()


@pytest.fixture(autouse=True)
def vault(api: Api) -> None:
    assert api("PUT", f"/-/vaults/{V}").status_code == 201


def _retrieved(api: Api, runtime: Runtime, codec: str, body: bytes) -> tuple[str, str, str]:
    """(archive id, job id, blob key) of a completed retrieval of `body`."""
    archive_id = upload(api, V, body)
    (key,) = runtime.services.deps.blobs.keys()
    info = runtime.services.deps.blobs.stat(key)
    assert info is not None
    assert info.codec == CODECS[codec][1]
    job_id = start_job(api, V, {"Type": "archive-retrieval", "ArchiveId": archive_id})
    advance(api, 4 * 3600)
    assert run_jobs(api) == 1
    return archive_id, job_id, key


def _damage(runtime: Runtime, key: str, payload_offset: int) -> None:
    objects = runtime.settings.data_dir / "blobs" / "objects"
    path = objects / key[:2] / key[2:4] / key
    flip_bit(path, file_offset_of(path.read_bytes(), key, payload_offset))


def _error_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_damage_in_the_first_window_is_an_error_response(
    api: Api, runtime: Runtime, codec: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = os.urandom(9 * MIB)
    archive_id, job_id, key = _retrieved(api, runtime, codec, body)
    _damage(runtime, key, FIRST_WINDOW - MIB + 5)  # in the first window
    caplog.clear()
    with caplog.at_level(logging.INFO):
        resp = output(api, V, job_id)
    assert_error(resp, 500, "ServiceUnavailableException")
    message = resp.json()["message"]
    assert archive_id in message
    assert "damaged" in message
    assert not resp.content.startswith(body[:64])
    (line,) = _error_lines(caplog)
    for name in (archive_id, ARN, key):
        assert name in line
    # The damage is recorded and the archive quarantined: even a range that
    # avoids the damaged chunk is refused from now on (docs/decisions.md).
    later = output(api, V, job_id, f"bytes={READ_WINDOW}-")
    assert_error(later, 500, "ServiceUnavailableException")
    assert "quarantined" in later.json()["message"]


def test_damage_later_cuts_the_body_short_before_it(
    api: Api, runtime: Runtime, signer: Signer, codec: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = os.urandom(9 * MIB)
    archive_id, job_id, key = _retrieved(api, runtime, codec, body)
    damaged_at = READ_WINDOW + 2 * MIB + 77  # in the second window
    _damage(runtime, key, damaged_at)
    caplog.clear()
    with (
        caplog.at_level(logging.INFO),
        TestClient(runtime.app, base_url="http://testserver", raise_server_exceptions=False) as c,
    ):
        resp = Api(c, signer)("GET", f"/-/vaults/{V}/jobs/{job_id}/output")
    assert resp.status_code == 200
    assert resp.headers["Content-Length"] == str(len(body))
    # Everything sent is the archive's own bytes, and it stops before the
    # damaged chunk: never the damaged bytes as good ones.
    assert len(resp.content) <= damaged_at - damaged_at % MIB
    assert resp.content == body[: len(resp.content)]
    lines = _error_lines(caplog)
    assert any(archive_id in line and ARN in line and key in line for line in lines), lines


def test_a_kept_output_plan_still_catches_damage_made_after_it(
    api: Api, runtime: Runtime, codec: str
) -> None:
    """Ranged reads keep the job's plan in memory (domain/jobs/output_plans.py); the
    damage found after that is still refused before any byte, and recorded."""
    body = os.urandom(9 * MIB)
    archive_id, job_id, key = _retrieved(api, runtime, codec, body)
    first = output(api, V, job_id, "bytes=0-1048575")
    assert first.content == body[:MIB]
    assert runtime.services.jobs.plans.get(job_id) is not None  # kept
    _damage(runtime, key, 5)
    damaged = output(api, V, job_id, "bytes=0-1048575")
    assert_error(damaged, 500, "ServiceUnavailableException")
    assert archive_id in damaged.json()["message"]
    # Recorded: every later range is refused by the per-request damage check,
    # even one that avoids the damaged chunk and comes from the kept plan.
    later = output(api, V, job_id, f"bytes={4 * MIB}-{5 * MIB - 1}")
    assert_error(later, 500, "ServiceUnavailableException")
    assert "quarantined" in later.json()["message"]


def test_a_kept_plan_ends_with_its_job(api: Api, runtime: Runtime, codec: str) -> None:
    body = os.urandom(2 * MIB)
    _, job_id, _ = _retrieved(api, runtime, codec, body)
    assert output(api, V, job_id, "bytes=0-9").content == body[:10]
    assert runtime.services.jobs.plans.get(job_id) is not None
    advance(api, 25 * 3600)  # past the job's retention (24 h on the aws profile)
    assert_error(output(api, V, job_id, "bytes=0-9"), 404, "ResourceNotFoundException")

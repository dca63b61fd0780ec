"""A blob file deleted under a stored archive is damage to that archive (issue 12).

Never a generic "please retry" 500 with a traceback: the retrieval job fails
with a message saying the data is damaged, GetJobOutput of a job that had
succeeded answers a Glacier error naming the problem, the audit lists the
archive, and each of them logs one ERROR line naming the archive, its vault
and the blob.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.conftest import make_settings
from openglacier.clock import ManualClock
from openglacier.domain.damage import DAMAGED_MESSAGE
from openglacier.server import Runtime, build_runtime
from openglacier.treehash import MIB
from support.asserts import assert_error
from support.inprocess import ACCOUNT_ID, Api
from support.jobs import (
    advance,
    describe,
    force_inventory,
    output,
    run_jobs,
    start_job,
    upload,
)

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


def _delete_blob_file(runtime: Runtime, key: str) -> None:
    objects = Path(runtime.settings.data_dir) / "blobs" / "objects"
    (objects / key[:2] / key[2:4] / key).unlink()


def _damage_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def _assert_names(record: logging.LogRecord, *names: str) -> None:
    message = record.getMessage()
    for name in names:
        assert name in message
    assert record.exc_info is None  # one line, no traceback


def test_retrieval_of_an_archive_whose_blob_is_gone_fails_as_damaged(
    api: Api, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    archive_id = upload(api, V, os.urandom(MIB + 3))
    key = _only_blob(runtime)
    job_id = start_job(api, V, {"Type": "archive-retrieval", "ArchiveId": archive_id})
    _delete_blob_file(runtime, key)
    advance(api, 4 * HOUR)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert run_jobs(api) == 1
    job = describe(api, V, job_id)
    assert (job["StatusCode"], job["StatusMessage"]) == ("Failed", DAMAGED_MESSAGE)
    (line,) = _damage_lines(caplog)
    _assert_names(line, archive_id, ARN, key, "missing")
    assert_error(output(api, V, job_id), 400, "InvalidParameterValueException")


def test_output_of_a_succeeded_job_whose_blob_is_gone_names_the_damage(
    api: Api, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    body = os.urandom(2 * MIB)
    archive_id = upload(api, V, body)
    key = _only_blob(runtime)
    job_id = start_job(api, V, {"Type": "archive-retrieval", "ArchiveId": archive_id})
    advance(api, 4 * HOUR)
    assert run_jobs(api) == 1
    assert output(api, V, job_id).content == body
    _delete_blob_file(runtime, key)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        resp = output(api, V, job_id)
    assert_error(resp, 500, "ServiceUnavailableException")
    message = resp.json()["message"]
    assert archive_id in message
    assert "damaged" in message
    assert "missing" in message
    assert "retry" not in message
    (line,) = _damage_lines(caplog)
    _assert_names(line, archive_id, ARN, key, "missing")


def test_audit_reports_the_archive_whose_blob_is_gone(
    api: Api, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    kept = upload(api, V, b"kept")
    kept_key = _only_blob(runtime)
    lost = upload(api, V, b"lost")
    (lost_key,) = set(runtime.services.deps.blobs.keys()) - {kept_key}
    _delete_blob_file(runtime, lost_key)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        audit = api.admin("POST", "/audit").json()
    assert audit["checked"] == 2
    (problem,) = audit["problems"]
    assert problem["ArchiveId"] == lost
    assert problem["VaultARN"] == ARN
    assert lost_key in problem["problem"]
    assert "missing" in problem["problem"]
    (line,) = _damage_lines(caplog)
    _assert_names(line, lost, ARN, lost_key)
    assert kept not in line.getMessage()


def test_inventory_output_whose_blob_is_gone_is_a_named_error(
    api: Api, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    upload(api, V, b"listed")  # an inventory needs a write first
    archive_key = _only_blob(runtime)
    force_inventory(api, ACCOUNT_ID, V)
    job_id = start_job(api, V, {"Type": "inventory-retrieval"})
    advance(api, 5 * HOUR)
    assert run_jobs(api) == 1
    (key,) = set(runtime.services.deps.blobs.keys()) - {archive_key}
    _delete_blob_file(runtime, key)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        resp = output(api, V, job_id)
    assert_error(resp, 500, "ServiceUnavailableException")
    assert "damaged" in resp.json()["message"]
    (line,) = _damage_lines(caplog)
    _assert_names(line, key, "missing")


@pytest.fixture
def runtime(tmp_path: Path, clock: ManualClock, timing: str) -> Iterator[Runtime]:
    """With a directory for select output, so select jobs can run."""
    settings = make_settings(
        tmp_path, timing=timing, clock="manual", select_output_url=f"file://{tmp_path / 'out'}"
    )
    rt = build_runtime(settings, clock=clock)
    yield rt
    rt.close()


def test_select_over_an_archive_whose_blob_is_gone_fails_as_damaged(
    api: Api, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    archive_id = upload(api, V, b"id,kind\n1,a\n2,b\n")
    key = _only_blob(runtime)
    params = {
        "Type": "select",
        "ArchiveId": archive_id,
        "SelectParameters": {"ExpressionType": "SQL", "Expression": "SELECT * FROM archive"},
        "OutputLocation": {"S3": {"BucketName": "results", "Prefix": "p"}},
    }
    job_id = start_job(api, V, params)
    _delete_blob_file(runtime, key)
    advance(api, 5 * HOUR)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert run_jobs(api) == 1
    job = describe(api, V, job_id)
    assert (job["StatusCode"], job["StatusMessage"]) == ("Failed", DAMAGED_MESSAGE)
    (line,) = _damage_lines(caplog)
    _assert_names(line, archive_id, ARN, key, "missing")

"""Damage found anywhere is recorded durably, and a quarantined archive is
never served as good (domain/damage.py), in-process over real SQLite and
real blob files.

Whoever finds the damage (a download, a job, the scrubber through
`POST /_admin/scrub`, the audit through `POST /_admin/audit`) records it,
listed by `GET /_admin/damage`. Then the archive's retrieval and select jobs
fail with the damage message, and GetJobOutput of its finished jobs answers
the damage error without reading; other archives are served as ever. A blob
put back and scrubbed closes its record and the archive is served again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from api.conftest import make_settings
from openglacier.clock import ManualClock
from openglacier.domain.damage import DAMAGED_MESSAGE, NO_REPLICA_NOTE
from openglacier.server import Runtime, build_runtime
from openglacier.treehash import MIB
from support.asserts import assert_error
from support.blobfiles import blob_file, file_offset, flip_bit, zero_range
from support.inprocess import ACCOUNT_ID, Api
from support.jobs import describe, output, run_jobs, start_job, upload

V = "v"
ARN = f"arn:aws:glacier:us-east-1:{ACCOUNT_ID}:vaults/{V}"


@pytest.fixture
def runtime(tmp_path: Path, clock: ManualClock) -> Iterator[Runtime]:
    """Instant jobs; a directory for select output, so select jobs run."""
    settings = make_settings(
        tmp_path, timing="instant", clock="manual", select_output_url=f"file://{tmp_path / 'out'}"
    )
    rt = build_runtime(settings, clock=clock)
    yield rt
    rt.close()


@pytest.fixture(autouse=True)
def vault(api: Api) -> None:
    assert api("PUT", f"/-/vaults/{V}").status_code == 201


def blob_path(runtime: Runtime, key: str) -> Path:
    return blob_file(Path(runtime.settings.data_dir) / "blobs", key)


def upload_one(api: Api, runtime: Runtime, body: bytes) -> tuple[str, str]:
    """(archive id, its one blob's key)."""
    before = set(runtime.services.deps.blobs.keys())
    archive_id = upload(api, V, body)
    (key,) = set(runtime.services.deps.blobs.keys()) - before
    return archive_id, key


def retrieve(api: Api, archive_id: str) -> str:
    job_id = start_job(api, V, {"Type": "archive-retrieval", "ArchiveId": archive_id})
    run_jobs(api)
    return job_id


def select(api: Api, archive_id: str) -> str:
    params = {
        "Type": "select",
        "ArchiveId": archive_id,
        "SelectParameters": {"ExpressionType": "SQL", "Expression": "SELECT * FROM archive"},
        "OutputLocation": {"S3": {"BucketName": "results", "Prefix": "p"}},
    }
    job_id = start_job(api, V, params)
    run_jobs(api)
    return job_id


def damage_list(api: Api, query: str = "") -> list[dict[str, Any]]:
    resp = api.admin("GET", "/damage" + query)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["damage"])


def found(by: str) -> float:
    return REGISTRY.get_sample_value("openglacier_damage_found_total", {"found_by": by}) or 0.0


def status_of(api: Api, job_id: str) -> tuple[str, str]:
    job = describe(api, V, job_id)
    return job["StatusCode"], job["StatusMessage"]


def test_the_audit_records_what_it_finds_and_quarantines_the_archive(
    api: Api, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    body = os.urandom(3 * MIB)
    archive_id, key = upload_one(api, runtime, body)
    clean_id, _ = upload_one(api, runtime, os.urandom(MIB))
    zero_range(blob_path(runtime, key), 2 * MIB + 5, 100)
    before = found("audit")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        audit = api.admin("POST", "/audit").json()
    assert audit["checked"] == 2
    (problem,) = audit["problems"]
    assert (problem["ArchiveId"], problem["VaultARN"]) == (archive_id, ARN)
    assert "leaf 2 " in problem["problem"]
    assert found("audit") - before == 1
    (line,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert archive_id in line.getMessage()
    assert key in line.getMessage()
    (record,) = damage_list(api)
    assert (record["ArchiveId"], record["VaultARN"], record["blob"]) == (archive_id, ARN, key)
    assert (record["found_by"], record["quarantined"]) == ("audit", True)
    assert record["repair_note"] == NO_REPLICA_NOTE
    # Quarantined: its retrieval fails as damaged; the clean archive is served.
    assert status_of(api, retrieve(api, archive_id)) == ("Failed", DAMAGED_MESSAGE)
    assert status_of(api, retrieve(api, clean_id))[0] == "Succeeded"
    # Audited again: the same record, seen again.
    api.admin("POST", "/audit")
    assert [r["id"] for r in damage_list(api)] == [record["id"]]


def test_a_download_that_finds_damage_records_it_and_quarantines_the_archive(
    api: Api, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    body = os.urandom(2 * MIB)
    archive_id, key = upload_one(api, runtime, body)
    job_id = retrieve(api, archive_id)
    assert output(api, V, job_id).content == body
    flip_bit(blob_path(runtime, key), MIB // 2)  # in the first window (FIRST_WINDOW)
    before = found("read")
    with caplog.at_level(logging.INFO):
        resp = output(api, V, job_id)
    assert_error(resp, 500, "ServiceUnavailableException")
    assert "leaf 0 " in resp.json()["message"]
    assert found("read") - before == 1
    (record,) = damage_list(api)
    assert (record["ArchiveId"], record["VaultARN"], record["blob"]) == (archive_id, ARN, key)
    assert (record["found_by"], record["quarantined"]) == ("read", True)
    assert record["repair_note"] == NO_REPLICA_NOTE
    assert record["repaired_at"] is None
    # From now on the archive is refused without reading its blobs.
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again = output(api, V, job_id, "bytes=0-99")
    assert_error(again, 500, "ServiceUnavailableException")
    message = again.json()["message"]
    assert archive_id in message
    assert key in message
    assert "quarantined" in message
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert status_of(api, retrieve(api, archive_id)) == ("Failed", DAMAGED_MESSAGE)
    assert len(damage_list(api)) == 1


def test_a_job_that_finds_damage_records_it(api: Api, runtime: Runtime) -> None:
    archive_id, key = upload_one(api, runtime, b"soon gone")
    blob_path(runtime, key).unlink()
    before = found("job")
    assert status_of(api, retrieve(api, archive_id)) == ("Failed", DAMAGED_MESSAGE)
    (record,) = damage_list(api, "?state=open")
    assert (record["ArchiveId"], record["blob"], record["found_by"]) == (archive_id, key, "job")
    assert "missing" in record["problem"]
    assert found("job") - before == 1


def test_a_select_that_finds_damage_records_it(api: Api, runtime: Runtime) -> None:
    archive_id, key = upload_one(api, runtime, b"id,kind\n1,a\n2,b\n")
    flip_bit(blob_path(runtime, key), 3)
    assert status_of(api, select(api, archive_id)) == ("Failed", DAMAGED_MESSAGE)
    (record,) = damage_list(api)
    assert (record["ArchiveId"], record["blob"], record["found_by"]) == (archive_id, key, "job")
    # New blobs carry a CRC32C per chunk (codec 1): the store's check finds
    # the flipped bit before the leaf hash would.
    assert f"blob {key}: leaf 0 (chunk 0) fails its CRC32C check" in record["problem"]


def test_a_scrub_quarantines_what_it_finds_until_the_blob_is_good_again(
    api: Api, runtime: Runtime
) -> None:
    kept_body, body = os.urandom(MIB + 9), os.urandom(3 * MIB)
    kept, _ = upload_one(api, runtime, kept_body)
    damaged, key = upload_one(api, runtime, body)
    earlier = retrieve(api, damaged)  # succeeded before the damage
    path = blob_path(runtime, key)
    zero_range(path, 2 * MIB + 100, 512)

    resp = api.admin("POST", "/scrub")
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert (report["blobs"], report["bytes"], report["damage_found"]) == (2, 4 * MIB + 9, 1)
    assert report["finished_at"] is not None
    (finding,) = report["damage"]
    assert (finding["ArchiveId"], finding["blob"], finding["found_by"]) == (damaged, key, "scrub")
    assert "leaf 2 " in finding["problem"]
    assert damage_list(api) == report["damage"]

    # Never served as good: the finished job's output, new jobs of every kind.
    resp = output(api, V, earlier)
    assert_error(resp, 500, "ServiceUnavailableException")
    assert damaged in resp.json()["message"]
    assert status_of(api, retrieve(api, damaged)) == ("Failed", DAMAGED_MESSAGE)
    assert status_of(api, select(api, damaged)) == ("Failed", DAMAGED_MESSAGE)
    # Another archive is served as ever.
    assert output(api, V, retrieve(api, kept)).content == kept_body
    status = api.admin("GET", "/scrub").json()
    assert status["last_pass"]["blobs"] == 2
    assert status["last_pass"]["damage_found"] == 1
    assert status["damage"] == {"open": 1, "repaired": 0}
    assert (status["current_pass"], status["lease"]) == (None, None)

    # The operator puts the bytes back: the next pass closes the record.
    with path.open("r+b") as fh:
        fh.seek(file_offset(path, 2 * MIB + 100))
        fh.write(body[2 * MIB + 100 : 2 * MIB + 612])
    assert api.admin("POST", "/scrub").json()["damage_found"] == 0
    (closed,) = damage_list(api, "?state=repaired")
    assert closed["repaired_at"] is not None
    assert not closed["quarantined"]
    assert damage_list(api, "?state=open") == []
    assert output(api, V, retrieve(api, damaged)).content == body


def test_scrub_while_another_process_holds_the_lease_is_409(
    api: Api, runtime: Runtime, clock: ManualClock
) -> None:
    upload_one(api, runtime, b"x")
    now = clock.now()
    with runtime.services.deps.store.transaction() as tx:
        assert tx.take_scrub_lease("node-b:42:beef", now, now + timedelta(minutes=1))
    resp = api.admin("POST", "/scrub")
    assert_error(resp, 409, "ConflictException")
    assert "node-b:42:beef" in resp.json()["message"]
    assert api.admin("GET", "/scrub").json()["lease"]["holder"] == "node-b:42:beef"
    clock.advance(timedelta(minutes=1))  # the lease expired: this server takes over
    assert api.admin("POST", "/scrub").json()["blobs"] == 1


@pytest.mark.parametrize(
    "query", ["?state=bogus", "?after=abc", "?after=-1", "?limit=0", "?after=99999999999999999999"]
)
def test_bad_damage_queries_are_400(api: Api, query: str) -> None:
    assert_error(api.admin("GET", "/damage" + query), 400, "InvalidParameterValueException")


def test_damage_pages_by_id(api: Api, runtime: Runtime) -> None:
    keys = []
    for i in range(3):
        _, key = upload_one(api, runtime, b"gone %d" % i)
        blob_path(runtime, key).unlink()
        keys.append(key)
    assert api.admin("POST", "/scrub").json()["damage_found"] == 3
    first = damage_list(api, "?limit=2")
    assert len(first) == 2
    rest = damage_list(api, f"?after={first[-1]['id']}")
    assert {r["blob"] for r in first + rest} == set(keys)

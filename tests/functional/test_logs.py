"""Server logs of a live server, read from its stderr, driven by real boto3 calls.

In JSON every stderr line parses (uvicorn's own lines included) and has time,
level, logger and message; each request has one access line whose request id
is the `x-amzn-RequestId` boto3 got, with the operation, status, account and
the exact body bytes each way. A domain line made while serving a request
carries that request's id. Under `--processes 2` the lines still parse;
`--access-log off` leaves no access line; text lines start with the time,
level and logger. The banner stays plain text, on stdout.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from support.server import ACCOUNT_ID, ADMIN_TOKEN, SECRET_KEY, LiveServer
from support.workers import poll

pytestmark = pytest.mark.functional

VAULT = "logged"
BODY = bytes(range(256)) * 5 + b"tail"  # 1284 bytes
TIME = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def live(tmp_path: Path, **env: str) -> LiveServer:
    settings = {"OPENGLACIER_LOG_LEVEL": "info", "OPENGLACIER_LOG_FORMAT": "json", **env}
    return LiveServer(tmp_path / "data", extra_env=settings, separate_stderr=True)


@pytest.fixture
def json_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = live(tmp_path, OPENGLACIER_INVENTORY_BEFORE_FIRST="empty").start()
    try:
        yield server
    finally:
        server.stop()


def json_lines(server: LiveServer) -> list[dict[str, Any]]:
    """Every stderr line, parsed (a line that does not parse fails the test)."""
    lines = []
    for line in server.stderr().splitlines():
        parsed = json.loads(line)
        assert isinstance(parsed, dict), line
        assert TIME.match(parsed["time"]), line
        assert parsed["level"] in LEVELS, line
        assert parsed["logger"], line
        assert isinstance(parsed["message"], str), line
        lines.append(parsed)
    return lines


def access_by_id(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    access = [line for line in lines if line["logger"] == "openglacier.access"]
    by_id = {line["request_id"]: line for line in access}
    assert len(by_id) == len(access)  # one line per request
    return by_id


def request_id(answer: dict[str, Any]) -> str:
    rid = answer["ResponseMetadata"]["RequestId"]
    assert rid == answer["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    return str(rid)


def body_length(answer: dict[str, Any]) -> int:
    return int(answer["ResponseMetadata"]["HTTPHeaders"].get("content-length", 0))


def test_json_access_lines_match_what_boto3_saw(json_server: LiveServer) -> None:
    glacier = json_server.client()
    created = glacier.create_vault(vaultName=VAULT)
    uploaded = glacier.upload_archive(vaultName=VAULT, body=BODY)
    described = glacier.describe_vault(vaultName=VAULT)
    with pytest.raises(ClientError) as missing:
        glacier.describe_vault(vaultName="no-such-vault")
    json_server.stop()  # every line written

    lines = json_lines(json_server)
    access = access_by_id(lines)
    expected = [
        (created, "CreateVault", "PUT", f"/-/vaults/{VAULT}", 201, 0),
        (uploaded, "UploadArchive", "POST", f"/-/vaults/{VAULT}/archives", 201, len(BODY)),
        (described, "DescribeVault", "GET", f"/-/vaults/{VAULT}", 200, 0),
        (missing.value.response, "DescribeVault", "GET", "/-/vaults/no-such-vault", 404, 0),
    ]
    for answer, operation, method, path, status, bytes_in in expected:
        line = access[request_id(answer)]
        assert line["operation"] == operation
        assert (line["method"], line["path"], line["status"]) == (method, path, status)
        assert line["account"] == ACCOUNT_ID
        assert line["bytes_in"] == bytes_in
        assert line["bytes_out"] == body_length(answer)
        assert line["level"] == "INFO"
        assert 0 <= line["duration_ms"] < 60_000
        assert line["message"].startswith(f"{method} {path} {status} {operation} ")
    assert body_length(described) > 0  # bytes_out was checked against a real body
    # uvicorn's own lines come through the same formatter; its access log is off.
    loggers = {line["logger"] for line in lines}
    assert "uvicorn.error" in loggers
    assert "uvicorn.access" not in loggers
    # Secrets and signatures never reach the log; the banner is on stdout.
    everything = json_server.log()
    for secret in (SECRET_KEY, ADMIN_TOKEN, "Signature=", "AWS4-HMAC-SHA256"):
        assert secret not in everything
    assert json_server.log_path is not None
    assert "Try it:" in json_server.log_path.read_text()  # stdout
    assert "Try it:" not in json_server.stderr()


def test_a_domain_line_carries_the_request_id(json_server: LiveServer) -> None:
    """GetJobOutput of an inventory whose output blob is gone: the damage line the
    domain logs (on a worker thread) names the request boto3 got an error for."""
    glacier = json_server.client()
    glacier.create_vault(vaultName=VAULT)
    job_id = glacier.initiate_job(vaultName=VAULT, jobParameters={"Type": "inventory-retrieval"})[
        "jobId"
    ]
    poll(
        lambda: bool(glacier.describe_job(vaultName=VAULT, jobId=job_id)["Completed"]),
        "the inventory job to complete",
    )
    with closing(sqlite3.connect(json_server.data_dir / "metadata.db")) as db:
        (key,) = db.execute(
            "SELECT output_blob_key FROM jobs WHERE job_id = ?", (job_id,)
        ).fetchone()
    (blob,) = json_server.data_dir.rglob(key)
    blob.unlink()
    with pytest.raises(ClientError) as failed:
        glacier.get_job_output(vaultName=VAULT, jobId=job_id)
    rid = request_id(failed.value.response)
    json_server.stop()

    lines = json_lines(json_server)
    damage = [line for line in lines if line["logger"] == "openglacier.damage"]
    # One damage line per attempt (botocore retries a 500), each with its request's id.
    outputs = [a for a in access_by_id(lines).values() if a["operation"] == "GetJobOutput"]
    assert [line["request_id"] for line in damage] == [a["request_id"] for a in outputs]
    assert rid == outputs[-1]["request_id"]
    for line in damage:
        assert key in line["message"]
        assert line["level"] == "ERROR"


def test_json_lines_parse_under_two_processes(tmp_path: Path) -> None:
    server = live(tmp_path, OPENGLACIER_PROCESSES="2").start()
    try:
        glacier = server.client()
        glacier.create_vault(vaultName=VAULT)
        answers = [glacier.describe_vault(vaultName=VAULT) for _ in range(6)]
    finally:
        server.stop()
    lines = json_lines(server)
    access = access_by_id(lines)
    for answer in answers:
        assert access[request_id(answer)]["operation"] == "DescribeVault"
    started = [line for line in lines if line["message"].startswith("Started server process")]
    assert len(started) == 2  # both processes' uvicorn lines, formatted


def test_access_log_off_leaves_no_access_line(tmp_path: Path) -> None:
    server = live(tmp_path, OPENGLACIER_ACCESS_LOG="off").start()
    try:
        server.client().create_vault(vaultName=VAULT)
    finally:
        server.stop()
    lines = json_lines(server)
    assert lines  # uvicorn's start and stop lines
    assert not [line for line in lines if line["logger"] == "openglacier.access"]


def test_text_lines_have_time_level_and_logger(tmp_path: Path) -> None:
    server = live(tmp_path, OPENGLACIER_LOG_FORMAT="text").start()
    try:
        answer = server.client().create_vault(vaultName=VAULT)
    finally:
        server.stop()
    text = re.compile(r"\A(\S+) (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+) (.*)\Z")
    loggers = []
    for line in server.stderr().splitlines():
        match = text.match(line)
        assert match, line
        assert TIME.match(match[1]), line
        loggers.append(match[3])
        if match[3] == "openglacier.access" and "CreateVault" in line:
            assert match[4] == (
                f"PUT /-/vaults/{VAULT} 201 CreateVault account={ACCOUNT_ID} in=0 out=0 "
                f"{match[4].split()[-2]} request_id={request_id(answer)}"
            )
            assert match[4].split()[-2].endswith("ms")
    assert "openglacier.access" in loggers
    assert "uvicorn.error" in loggers

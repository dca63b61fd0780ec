"""The usage report (issue 16) end to end: real boto3 traffic against a live
server, maintenance passes through POST /_admin/maintenance, a manual clock
crossing midnight, then `openglacier usage` through the CLI.

Counts are exact: every boto3 call is one request (no retries), failed ones
included; uploads are the UploadArchive and CompleteMultipartUpload calls that
created an archive; retrievals are the jobs initiated, by tier, with the
bytes they read.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from openglacier.treehash import MIB
from support.server import ACCOUNT_ID, LiveServer
from support.uploads import multipart_upload

pytestmark = pytest.mark.functional
SMALL, OTHER, LATER = b"a" * 100, b"b" * 3000, b"c" * 10


def openglacier(
    server: LiveServer, *args: str, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "openglacier", *args, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def usage(server: LiveServer, *args: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    out = openglacier(server, "usage", "--json", *args).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    return {(r["account_id"], r["vault"], r["day"]): r for r in rows}


def maintenance(server: LiveServer) -> None:
    assert server.admin("POST", "/maintenance").status_code == 200


def today(server: LiveServer) -> str:
    return str(server.admin("GET", "/clock").json()["now"][:10])


def to_next_day(server: LiveServer) -> str:
    now = server.admin("GET", "/clock").json()["now"]  # 2026-12-04T21:15:20.123Z
    h, m, s = (float(x) for x in now[11:23].split(":"))
    left = 86_400 - (h * 3600 + m * 60 + s) + 1
    resp = server.admin("POST", "/clock/advance", {"seconds": left})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["now"][:10])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path_factory.mktemp("usage") / "data",
        extra_env={"OPENGLACIER_CLOCK": "manual", "OPENGLACIER_TIMING": "instant"},
    ).start()
    yield live
    live.stop()
    assert "Traceback" not in live.log()


def first_day_traffic(glacier: Any) -> dict[str, str]:
    """On vault "photos": 2 archives uploaded, 1 multipart (2 MiB), 1 upload
    refused, a retrieval per tier, and a DescribeVault of a missing vault."""
    glacier.create_vault(vaultName="photos")
    small = glacier.upload_archive(vaultName="photos", body=SMALL)["archiveId"]
    glacier.upload_archive(vaultName="photos", body=OTHER)
    big = multipart_upload(glacier, "photos", b"m" * (2 * MIB))["archiveId"]
    with pytest.raises(ClientError):
        glacier.upload_archive(vaultName="photos", body=SMALL, checksum="0" * 64)
    with pytest.raises(ClientError):
        glacier.describe_vault(vaultName="missing")
    with pytest.raises(ClientError):  # no such name: counted under "(invalid)"
        glacier.describe_vault(vaultName="n" * 300)
    for tier, archive, byte_range in (
        ("Expedited", small, None),
        ("Standard", big, None),
        ("Bulk", big, f"0-{MIB - 1}"),
    ):
        params: dict[str, Any] = {"Type": "archive-retrieval", "ArchiveId": archive, "Tier": tier}
        if byte_range:
            params["RetrievalByteRange"] = byte_range
        glacier.initiate_job(vaultName="photos", jobParameters=params)
    return {"small": small, "big": big}


FIRST_DAY_REQUESTS = {
    "CreateVault": 1,
    "UploadArchive": 3,
    "InitiateMultipartUpload": 1,
    "UploadMultipartPart": 2,
    "CompleteMultipartUpload": 1,
    "InitiateJob": 3,
}
FIRST_DAY_BYTES = len(SMALL) + len(OTHER) + 2 * MIB


def check_first_day(row: dict[str, Any], *, archives: int, stored: int) -> None:
    assert row["archives"] == archives
    assert row["stored_bytes"] == stored
    assert row["uploads"] == {"count": 3, "bytes": FIRST_DAY_BYTES}
    assert row["retrievals"] == {
        "Expedited": {"count": 1, "bytes": len(SMALL)},
        "Standard": {"count": 1, "bytes": 2 * MIB},
        "Bulk": {"count": 1, "bytes": MIB},
    }
    assert row["requests"] == FIRST_DAY_REQUESTS


def test_usage_per_account_vault_and_day(server: LiveServer, tmp_path: Path) -> None:
    glacier = server.client()
    day1 = today(server)
    first_day_traffic(glacier)
    assert usage(server) == {}  # nothing before a maintenance pass flushes the counts
    maintenance(server)
    report = usage(server)
    check_first_day(report[(ACCOUNT_ID, "photos", day1)], archives=3, stored=FIRST_DAY_BYTES)
    missing = report[(ACCOUNT_ID, "missing", day1)]
    assert missing["requests"] == {"DescribeVault": 1}
    assert missing["archives"] is None  # no such vault: no stored snapshot
    assert report[(ACCOUNT_ID, "(invalid)", day1)]["requests"] == {"DescribeVault": 1}
    assert len(report) == 3
    maintenance(server)  # a second pass adds nothing new
    assert usage(server) == report

    day2 = to_next_day(server)
    assert day2 > day1
    glacier.upload_archive(vaultName="photos", body=LATER)
    glacier.list_vaults()
    maintenance(server)
    report = usage(server)
    # Day one keeps its last snapshot; day two has its own, and its own counts.
    check_first_day(report[(ACCOUNT_ID, "photos", day1)], archives=3, stored=FIRST_DAY_BYTES)
    later = report[(ACCOUNT_ID, "photos", day2)]
    assert (later["archives"], later["stored_bytes"]) == (4, FIRST_DAY_BYTES + len(LATER))
    assert later["uploads"] == {"count": 1, "bytes": len(LATER)}
    assert later["requests"] == {"UploadArchive": 1}
    assert report[(ACCOUNT_ID, "", day2)]["requests"] == {"ListVaults": 1}

    since = usage(server, "--since", day2)
    assert {key[2] for key in since} == {day2}
    until = usage(server, "--until", day1)
    assert {key[2] for key in until} == {day1}

    check_other_account_kept_apart(server, day2)
    check_cost_from_config_prices(server, tmp_path, day1)
    check_table_and_errors(server)


def check_other_account_kept_apart(server: LiveServer, day: str) -> None:
    out = openglacier(server, "accounts", "create", "--description", "usage B").stdout
    fields = dict(re.findall(r"^(account id|access key id|secret access key)\s+(\S+)$", out, re.M))
    other = fields["account id"]
    glacier_b = _client_as(server, fields["access key id"], fields["secret access key"])
    glacier_b.create_vault(vaultName="photos")  # the same name, another account
    glacier_b.upload_archive(vaultName="photos", body=LATER)
    maintenance(server)
    b_rows = usage(server, "--account", other)
    assert set(b_rows) == {(other, "photos", day)}
    row = b_rows[(other, "photos", day)]
    assert (row["archives"], row["stored_bytes"]) == (1, len(LATER))
    assert row["requests"] == {"CreateVault": 1, "UploadArchive": 1}
    a_rows = usage(server, "--account", ACCOUNT_ID)
    assert {key[0] for key in a_rows} == {ACCOUNT_ID}
    assert a_rows[(ACCOUNT_ID, "photos", day)]["requests"] == {"UploadArchive": 1}


def _client_as(server: LiveServer, key: str, secret: str) -> Any:
    return boto3.client(
        "glacier",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


def check_cost_from_config_prices(server: LiveServer, tmp_path: Path, day1: str) -> None:
    config = tmp_path / "openglacier.toml"
    config.write_text(
        "[prices]\ncurrency = 'EUR'\nstorage_gb_month = 0\nupload_per_1000 = 1000\n"
        "request_per_1000 = 100\nretrieval_per_1000_expedited = 5000\n"
        "retrieval_gb_standard = 1024\nretrieval_per_1000_standard = 0\n"
        "retrieval_gb_bulk = 0\nretrieval_per_1000_bulk = 0\n"
    )
    row = usage(server, "--config", str(config), "--cost", "--account", ACCOUNT_ID)[
        (ACCOUNT_ID, "photos", day1)
    ]
    # 3 uploads at 1 each; 8 other requests at 0.1; 1 Expedited request at 5;
    # 2 MiB Standard at 1024 per GiB = 2; Expedited's 100 bytes at 0.03 per GiB.
    cost = row["cost"]
    assert cost["currency"] == "EUR"
    assert cost["uploads"] == pytest.approx(3.0)
    assert cost["requests"] == pytest.approx(0.8)
    assert cost["storage"] == 0
    assert cost["retrieval"] == pytest.approx(7.0, abs=1e-5)
    # --prices FILE wins over the config file; defaults (AWS's) without either.
    prices = tmp_path / "prices.toml"
    prices.write_text("[prices]\nupload_per_1000 = 2000\n")
    row = usage(server, "--config", str(config), "--prices", str(prices))[
        (ACCOUNT_ID, "photos", day1)
    ]
    assert row["cost"]["uploads"] == pytest.approx(6.0)
    default = usage(server, "--cost")[(ACCOUNT_ID, "photos", day1)]["cost"]
    assert default["currency"] == "USD"
    assert default["uploads"] == pytest.approx(3 * 0.05 / 1000)
    config.unlink()
    prices.unlink()


def check_table_and_errors(server: LiveServer) -> None:
    table = openglacier(server, "usage", "--cost").stdout
    assert "photos" in table
    assert "UploadArchive" in table
    bad = openglacier(server, "usage", "--since", "yesterday", ok=False)
    assert bad.returncode == 2
    assert "not a date" in bad.stderr
    assert "Traceback" not in bad.stderr
    prices = server.data_dir.parent / "bad-prices.toml"
    prices.write_text("[prices]\nstorage_per_tb = 3\n")
    bad = openglacier(server, "usage", "--prices", str(prices), ok=False)
    prices.unlink()
    assert bad.returncode == 1
    assert "unknown price 'storage_per_tb'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_processes_add_up(tmp_path: Path) -> None:
    """Under `serve --processes 2` each process counts its own requests and its
    own maintenance pass adds them: the rollup holds the sum."""
    server = LiveServer(tmp_path / "data", extra_env={"OPENGLACIER_PROCESSES": "2"}).start()
    try:
        day = today(server)
        for n in range(10):  # a connection of its own each: spread over both processes
            client = server.client()
            client.create_vault(vaultName="spread")
            client.upload_archive(vaultName="spread", body=b"x" * (n + 1))
        # 20 passes on connections of their own: both processes flush (odds of
        # one missing all: 2^-19).
        for _ in range(20):
            resp = httpx.post(
                server.endpoint + "/_admin/maintenance",
                headers={"Authorization": "Bearer test-admin-token"},
                timeout=60,
            )
            assert resp.status_code == 200
        row = usage(server)[(ACCOUNT_ID, "spread", day)]
    finally:
        server.stop()
    assert row["requests"] == {"CreateVault": 10, "UploadArchive": 10}
    assert row["uploads"] == {"count": 10, "bytes": sum(range(1, 11))}
    assert (row["archives"], row["stored_bytes"]) == (10, sum(range(1, 11)))
    assert "Traceback" not in server.log()


def test_a_stop_flushes_what_was_counted(tmp_path: Path) -> None:
    """Maintenance every hour: after its first pass at start, only the flush
    at shutdown (SIGTERM) can write these counts."""
    server = LiveServer(
        tmp_path / "data", extra_env={"OPENGLACIER_MAINTENANCE_INTERVAL_SECONDS": "3600"}
    ).start()
    try:
        day = today(server)
        glacier = server.client()
        glacier.create_vault(vaultName="stopping")
        glacier.upload_archive(vaultName="stopping", body=SMALL)
    finally:
        server.stop()
    row = usage(server)[(ACCOUNT_ID, "stopping", day)]
    assert row["requests"] == {"CreateVault": 1, "UploadArchive": 1}
    assert row["uploads"] == {"count": 1, "bytes": len(SMALL)}
    assert "Traceback" not in server.log()

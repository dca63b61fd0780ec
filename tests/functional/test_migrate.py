"""`openglacier migrate` between real servers (docs/migration.md).

OpenGlacier -> OpenGlacier with the admin token: a few hundred tiny archives,
multipart ones, an empty description, one damaged on the source's disk; the CLI
is SIGKILLed at several steps and run again. The destination must end with the
source's ids, descriptions, creation dates and tree hashes; the damaged archive
is reported, never imported; no archive is retrieved twice except those whose
job expired (the source's manual clock is moved past the 24-hour retention).
OpenGlacier -> moto server (ids cannot be kept there): the mapping file.
"""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openglacier.config import Settings
from openglacier.storage.metadata.store import open_metadata_store
from openglacier.treehash import MIB, tree_hash
from support.blobfiles import blob_file, flip_bit
from support.cli import kill_after_lines
from support.server import ACCESS_KEY, ACCOUNT_ID, ADMIN_TOKEN, SECRET_KEY, LiveServer, free_port
from support.uploads import multipart_upload

pytestmark = pytest.mark.functional

SRC, DST = "old-vault", "new-vault"
ARCHIVES = 240


@pytest.fixture
def source(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path / "src", extra_env={"OPENGLACIER_TIMING": "instant"}).start()
    yield live
    live.stop()


@pytest.fixture
def destination(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path / "dst").start()
    yield live
    live.stop()


def client_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
    )
    env.pop("OPENGLACIER_ADMIN_TOKEN", None)
    return env


def migrate_args(source: LiveServer, to: str, state: Path, *extra: str) -> list[str]:
    return [
        "migrate",
        "--from-endpoint", source.endpoint, "--from-vault", SRC,
        "--to-endpoint", to, "--to-vault", DST,
        "--state", str(state), "--poll-interval", "0.02", "--parallel", "4",
        "--verbose", *extra,
    ]  # fmt: skip


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openglacier", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def fill_source(source: LiveServer) -> dict[str, bytes]:
    """Tiny archives, two multipart ones, one with an empty description."""
    glacier = source.client()
    glacier.create_vault(vaultName=SRC)
    rng = random.Random(15)
    bodies: dict[str, bytes] = {}
    for n in range(ARCHIVES):
        body = rng.randbytes(rng.randint(1, 300))
        description = "" if n == 7 else f"file {n} with  spaces "
        resp = glacier.upload_archive(
            vaultName=SRC, body=body, checksum=tree_hash(body), archiveDescription=description
        )
        bodies[resp["archiveId"]] = body
    for size in (2 * MIB + 5, 3 * MIB):
        body = rng.randbytes(size)
        bodies[multipart_upload(glacier, SRC, body)["archiveId"]] = body
    return bodies


def live_archives(server: LiveServer, vault: str) -> dict[str, dict[str, Any]]:
    resp = server.admin("GET", f"/vaults/{ACCOUNT_ID}/{vault}/archives?limit=100000")
    assert resp.status_code == 200, resp.text
    return {a["ArchiveId"]: a for a in resp.json()["archives"]}


def damage(server: LiveServer, archive_id: str) -> None:
    store = open_metadata_store(Settings(data_dir=server.data_dir).resolved_metadata_url)
    try:
        with store.transaction(readonly=True) as tx:
            [segment] = tx.get_segments(archive_id)
    finally:
        store.close()
    flip_bit(blob_file(server.data_dir / "blobs", segment.blob_key), 0)


def expire_completed_jobs(server: LiveServer) -> None:
    """Move the source 25 hours on (a restart with a manual clock) and let maintenance
    drop the completed jobs, as AWS does 24 hours after completion; then back to the
    system clock."""
    server.stop()
    server.extra_env["OPENGLACIER_CLOCK"] = "manual"
    server.start()
    assert server.admin("POST", "/clock/advance", {"seconds": 25 * 3600}).status_code == 200
    resp = server.admin("POST", "/maintenance")
    assert resp.status_code == 200, resp.text
    assert resp.json()["jobs_expired"] > 0, resp.text
    server.stop()
    del server.extra_env["OPENGLACIER_CLOCK"]
    server.start()


def retrieval_jobs(server: LiveServer, action: str = "ArchiveRetrieval") -> list[tuple[str, str]]:
    """(archive id, job id) of every such job the source still lists."""
    glacier, jobs, marker = server.client(), [], None
    while True:
        page = glacier.list_jobs(vaultName=SRC, **({"marker": marker} if marker else {}))
        jobs += [(j.get("ArchiveId"), j["JobId"]) for j in page["JobList"] if j["Action"] == action]
        marker = page.get("Marker")
        if not marker:
            return jobs


def test_migration_keeps_ids_and_survives_kills(
    source: LiveServer, destination: LiveServer, tmp_path: Path
) -> None:
    bodies = fill_source(source)
    damaged = sorted(bodies)[3]
    damage(source, damaged)
    env = client_env(tmp_path)
    state = tmp_path / "state.sqlite"
    args = migrate_args(source, destination.endpoint, state, "--to-admin-token", ADMIN_TOKEN)

    # Killed once the inventory job is asked for: the next run uses that job.
    assert kill_after_lines(args, env, "migrate: inventory-requested", 1)
    # Killed right after InitiateJob calls, then the jobs' outputs expire unread.
    assert kill_after_lines(args, env, "migrate: requested", 30)
    first = dict(retrieval_jobs(source))
    assert len(first) >= 30
    assert len(retrieval_jobs(source, "InventoryRetrieval")) == 1  # not asked twice
    expire_completed_jobs(source)
    # Killed after downloads, then after imports, at two later points.
    assert kill_after_lines(args, env, "migrate: downloaded", 40)
    assert kill_after_lines(args, env, "migrate: imported", 120)
    assert kill_after_lines(args, env, "migrate: imported", 50)

    final = run_cli(args, env)
    assert final.returncode == 1, final.stderr  # the damaged archive is not migrated
    assert f"{damaged} " in final.stderr.split("Not migrated:")[1]
    assert "Failed: 1\n" in final.stderr

    src, dst = live_archives(source, SRC), live_archives(destination, DST)
    assert set(dst) == set(bodies) - {damaged}
    for archive_id, got in dst.items():
        want = src[archive_id]
        assert got["SHA256TreeHash"] == want["SHA256TreeHash"]
        assert got["Size"] == want["Size"]
        # Inventories give whole seconds (spec 1.4, AWS's too): that is what can move.
        assert got["CreationDate"] == want["CreationDate"][:19] + ".000Z"
        # Glacier's inventory gives "" for no description, so None and "" are one.
        assert (got["ArchiveDescription"] or "") == (want["ArchiveDescription"] or "")
    assert any(a["ArchiveDescription"] == "" for a in dst.values())

    # One retrieval job per archive; those whose output expired unread were asked again.
    jobs = retrieval_jobs(source)
    assert sorted(a for a, _ in jobs) == sorted(bodies)

    again_asked = dict(jobs)
    assert all(again_asked[a] != job for a, job in first.items())

    # A run after the end has nothing left to do and imports nothing twice.
    again = run_cli(args, env)
    assert "migrate: imported" not in again.stderr
    assert "migrate: requested" not in again.stderr
    assert list(tmp_path.glob("state.sqlite.d/*")) == []


def test_fresh_state_against_a_filled_destination_skips_without_retrieving(
    source: LiveServer, destination: LiveServer, tmp_path: Path
) -> None:
    glacier = source.client()
    glacier.create_vault(vaultName=SRC)
    for n in range(5):
        glacier.upload_archive(
            vaultName=SRC, body=b"x" * (n + 1), checksum=tree_hash(b"x" * (n + 1))
        )
    env = client_env(tmp_path)
    args = migrate_args(
        source, destination.endpoint, tmp_path / "a.sqlite", "--to-admin-token", ADMIN_TOKEN
    )
    assert run_cli(args, env).returncode == 0
    before = len(retrieval_jobs(source))
    args = migrate_args(
        source, destination.endpoint, tmp_path / "b.sqlite", "--to-admin-token", ADMIN_TOKEN
    )
    second = run_cli(args, env)
    assert second.returncode == 0, second.stderr
    assert "Skipped (already at the destination): 5" in second.stderr
    assert len(retrieval_jobs(source)) == before


# --- a destination that cannot keep ids: a moto server ------------------------------------


@pytest.fixture
def moto_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "moto.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, (tmp_path / "moto.log").read_text()
            try:
                httpx.get(f"{url}/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "moto server did not answer"
                time.sleep(0.05)  # polling a starting process, not waiting for a job
        yield url
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def test_to_moto_writes_the_mapping_file(source: LiveServer, moto_url: str, tmp_path: Path) -> None:
    glacier = source.client()
    glacier.create_vault(vaultName=SRC)
    bodies = {}
    for n in range(6):
        body = f"archive {n}".encode()
        resp = glacier.upload_archive(vaultName=SRC, body=body, checksum=tree_hash(body))
        bodies[resp["archiveId"]] = body
    env = client_env(tmp_path)
    state = tmp_path / "moto.sqlite"
    done = run_cli(migrate_args(source, moto_url, state), env)
    assert done.returncode == 0, done.stderr
    assert "No --to-admin-token: the destination issues new archive ids" in done.stderr
    with (tmp_path / "moto-mapping.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["source_archive_id"] for r in rows} == set(bodies)
    new_ids = {r["destination_archive_id"] for r in rows}
    assert len(new_ids) == len(bodies)
    assert not new_ids & set(bodies)


def test_without_admin_token_uploads_multipart_and_maps_ids(
    source: LiveServer, destination: LiveServer, tmp_path: Path
) -> None:
    glacier = source.client()
    glacier.create_vault(vaultName=SRC)
    big = random.Random(2).randbytes(3 * MIB + 17)
    old_big = multipart_upload(glacier, SRC, big)["archiveId"]
    small = b"small one"
    old_small = glacier.upload_archive(
        vaultName=SRC, body=small, checksum=tree_hash(small), archiveDescription="kept text"
    )["archiveId"]
    env = client_env(tmp_path)
    mapping = tmp_path / "ids.csv"
    args = migrate_args(
        source, destination.endpoint, tmp_path / "s.sqlite", "--mapping", str(mapping)
    )
    done = run_cli([*args, "--part-size-mib", "1"], env)
    assert done.returncode == 0, done.stderr
    with mapping.open() as fh:
        new_of = {r["source_archive_id"]: r["destination_archive_id"] for r in csv.DictReader(fh)}
    assert set(new_of) == {old_big, old_small}
    dst = live_archives(destination, DST)
    assert dst[new_of[old_big]]["SHA256TreeHash"] == tree_hash(big)
    assert dst[new_of[old_small]]["ArchiveDescription"] == "kept text"
    assert new_of[old_big] != old_big


def test_a_state_file_of_another_migration_is_refused(
    source: LiveServer, destination: LiveServer, tmp_path: Path
) -> None:
    glacier = source.client()
    glacier.create_vault(vaultName=SRC)
    glacier.upload_archive(vaultName=SRC, body=b"one", checksum=tree_hash(b"one"))
    env = client_env(tmp_path)
    state = tmp_path / "s.sqlite"
    token = ("--to-admin-token", ADMIN_TOKEN)
    assert run_cli(migrate_args(source, destination.endpoint, state, *token), env).returncode == 0
    args = migrate_args(source, destination.endpoint, state, *token)
    args[args.index("--to-vault") + 1] = "elsewhere"
    refused = run_cli(args, env)
    assert refused.returncode == 1
    assert "belongs to another migration" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_an_unreachable_destination_is_a_one_line_error(source: LiveServer, tmp_path: Path) -> None:
    source.client().create_vault(vaultName=SRC)
    nowhere = f"http://127.0.0.1:{free_port()}"
    failed = run_cli(migrate_args(source, nowhere, tmp_path / "s.sqlite"), client_env(tmp_path))
    assert failed.returncode == 1
    assert "Error: destination vault new-vault: Could not connect" in failed.stderr
    assert "Traceback" not in failed.stderr

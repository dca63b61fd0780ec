"""`openglacier blobs migrate --to URL` (issue 13), through the real CLI on a real
server's data: archives (single and multipart), a multipart upload in progress,
a finished retrieval and a retained inventory job output. After the migration
a server on the new store serves all of it, and the old store is as it was; a
damaged source blob stops it before the switch; a SIGKILL midway is resumed;
the same command moves blobs onto SeaweedFS's S3 gateway and back."""

from __future__ import annotations

import hashlib
import os
import random
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL

from openglacier.storage.blob_url import canonical_blob_url
from openglacier.storage.metadata.store import open_metadata_store
from openglacier.treehash import MIB, combine, tree_hash
from support.seaweed import ACCESS_KEY as WEED_KEY
from support.seaweed import SECRET_KEY as WEED_SECRET
from support.seaweed import Seaweed
from support.server import ACCOUNT_ID, LiveServer
from support.services import fresh_pg_database
from support.uploads import multipart_upload

pytestmark = pytest.mark.functional

VAULT = "migrating"
DONE = re.compile(r"done: (\d+) blobs \(\d+ bytes\) copied, (\d+) ")


@dataclass
class Deployment:
    data: Path
    metadata_url: str
    archives: dict[str, bytes] = field(default_factory=dict)
    upload_id: str = ""
    pending_part: bytes = b""  # the in-progress upload's second part, not sent yet
    sent_part: bytes = b""
    outputs: dict[str, bytes] = field(default_factory=dict)  # retained job outputs
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. the s3 store's keys

    @property
    def old_url(self) -> str:
        return f"file://{(self.data / 'blobs').resolve()}"

    def env(self, **extra: str) -> dict[str, str]:
        return {"OPENGLACIER_METADATA_URL": self.metadata_url, **self.extra_env, **extra}

    def server(self, blob_url: str) -> LiveServer:
        return LiveServer(self.data, extra_env=self.env(OPENGLACIER_BLOB_URL=blob_url))

    def recorded(self) -> str | None:
        store = open_metadata_store(self.metadata_url)
        try:
            with store.transaction(readonly=True) as tx:
                return tx.recorded_blob_url()
        finally:
            store.close()

    def referenced_blobs(self) -> int:
        store = open_metadata_store(self.metadata_url)
        try:
            with store.transaction(readonly=True) as tx:
                return tx.blob_census().blobs
        finally:
            store.close()


def run_jobs(server: LiveServer) -> None:
    assert server.admin("POST", "/jobs/run").status_code == 200


def retrieve_all(glacier: Any, server: LiveServer, archive_ids: list[str]) -> dict[str, bytes]:
    jobs = {
        glacier.initiate_job(
            vaultName=VAULT, jobParameters={"Type": "archive-retrieval", "ArchiveId": aid}
        )["jobId"]: aid
        for aid in archive_ids
    }
    run_jobs(server)
    return {
        aid: glacier.get_job_output(vaultName=VAULT, jobId=job)["body"].read()
        for job, aid in jobs.items()
    }


def populate(data: Path, metadata_url: str, singles: int = 3) -> Deployment:
    dep = Deployment(data, metadata_url)
    server = dep.server(dep.old_url).start()
    try:
        glacier = server.client()
        glacier.create_vault(vaultName=VAULT)
        rng = random.Random(singles)
        for i in range(singles):
            body = rng.randbytes(2 * MIB + 1000 if i == 0 else 1000 + i)
            aid = glacier.upload_archive(vaultName=VAULT, body=body)["archiveId"]
            dep.archives[aid] = body
        big = rng.randbytes(2 * MIB + MIB // 2)
        dep.archives[multipart_upload(glacier, VAULT, big)["archiveId"]] = big
        dep.upload_id = glacier.initiate_multipart_upload(vaultName=VAULT, partSize=str(MIB))[
            "uploadId"
        ]
        dep.sent_part, dep.pending_part = rng.randbytes(MIB), rng.randbytes(1234)
        glacier.upload_multipart_part(
            vaultName=VAULT,
            uploadId=dep.upload_id,
            range=f"bytes 0-{MIB - 1}/*",
            body=dep.sent_part,
        )
        forced = server.admin("POST", "/inventory", {"account_id": ACCOUNT_ID, "vault": VAULT})
        assert forced.status_code == 200
        inventory = glacier.initiate_job(
            vaultName=VAULT, jobParameters={"Type": "inventory-retrieval"}
        )["jobId"]
        retrieval = glacier.initiate_job(
            vaultName=VAULT, jobParameters={"Type": "archive-retrieval", "ArchiveId": aid}
        )["jobId"]
        run_jobs(server)
        for job in (inventory, retrieval):
            dep.outputs[job] = glacier.get_job_output(vaultName=VAULT, jobId=job)["body"].read()
    finally:
        server.stop()
    return dep


def migrate(dep: Deployment, to: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openglacier", "blobs", "migrate", "--to", to, *args],
        env={**os.environ, "OPENGLACIER_DATA_DIR": str(dep.data), **dep.env()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def counts(result: subprocess.CompletedProcess[str]) -> tuple[int, int]:
    found = DONE.search(" ".join(result.stdout.split()))
    assert found is not None, result.stdout + result.stderr
    return int(found[1]), int(found[2])


def serves_everything(dep: Deployment, new_url: str, *, complete_upload: bool = True) -> None:
    """A server on the new store: every archive, both retained outputs, and the
    upload in progress continues and completes."""
    server = dep.server(new_url).start()
    try:
        glacier = server.client()
        assert retrieve_all(glacier, server, list(dep.archives)) == dep.archives
        for job, body in dep.outputs.items():
            assert glacier.get_job_output(vaultName=VAULT, jobId=job)["body"].read() == body
        if not complete_upload:
            return
        end = MIB + len(dep.pending_part) - 1
        glacier.upload_multipart_part(
            vaultName=VAULT,
            uploadId=dep.upload_id,
            range=f"bytes {MIB}-{end}/*",
            body=dep.pending_part,
        )
        whole = dep.sent_part + dep.pending_part
        done = glacier.complete_multipart_upload(
            vaultName=VAULT,
            uploadId=dep.upload_id,
            archiveSize=str(len(whole)),
            checksum=combine([tree_hash(dep.sent_part), tree_hash(dep.pending_part)]),
        )
        assert retrieve_all(glacier, server, [done["archiveId"]]) == {done["archiveId"]: whole}
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'metadata.db'}"
        return
    admin: URL = request.getfixturevalue("pg_admin")
    with fresh_pg_database(admin) as url:
        yield url.replace("postgresql+psycopg://", "postgresql://")


def test_migrate_then_a_server_on_the_new_store_serves_everything(
    tmp_path: Path, metadata_url: str
) -> None:
    dep = populate(tmp_path / "data", metadata_url)
    old = snapshot(dep.data / "blobs")
    new_url = f"file://{tmp_path / 'new-blobs'}"

    result = migrate(dep, new_url)

    assert result.returncode == 0, result.stderr
    copied, skipped = counts(result)
    assert (copied, skipped) == (dep.referenced_blobs(), 0)
    assert dep.recorded() == new_url
    assert snapshot(dep.data / "blobs") == old  # the old store is left untouched
    serves_everything(dep, new_url)
    # The old store is no longer the deployment's: a server on it is refused.
    with pytest.raises(RuntimeError, match="blobs migrate --to URL"):
        dep.server(dep.old_url).start()
    again = migrate(dep, new_url)
    assert again.returncode == 0
    assert "nothing to do" in again.stdout


def test_a_damaged_source_blob_stops_the_migration_before_the_switch(tmp_path: Path) -> None:
    dep = populate(tmp_path / "data", f"sqlite:///{tmp_path / 'data' / 'metadata.db'}")
    biggest = max((dep.data / "blobs" / "objects").rglob("*"), key=lambda p: p.stat().st_size)
    with biggest.open("r+b") as fh:  # one payload byte in the second MiB
        fh.seek(32 + MIB + 7)
        byte = fh.read(1)
        fh.seek(32 + MIB + 7)
        fh.write(bytes([byte[0] ^ 0x40]))
    old = snapshot(dep.data / "blobs")

    result = migrate(dep, f"file://{tmp_path / 'new-blobs'}")

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: blob {biggest.name} (archive ")
    # The store's own check (codec 1, the default) catches the damage first.
    damage = f"blob {biggest.name}: leaf 1 (chunk 1) fails its CRC32C check (damaged)"
    assert f": unreadable ({damage}); nothing was switched" in lines[0]
    assert dep.recorded() == dep.old_url
    assert snapshot(dep.data / "blobs") == old
    # Nothing of the damaged blob was committed at the destination.
    assert not list((tmp_path / "new-blobs" / "objects").rglob(biggest.name))


def test_a_killed_migration_resumes_and_skips_what_was_copied(tmp_path: Path) -> None:
    dep = populate(tmp_path / "data", f"sqlite:///{tmp_path / 'data' / 'metadata.db'}", 40)
    total = dep.referenced_blobs()
    new_url = f"file://{tmp_path / 'new-blobs'}"
    kill_after = random.Random().randint(1, total // 3)
    env = {**os.environ, "OPENGLACIER_DATA_DIR": str(dep.data), **dep.env()}
    process = subprocess.Popen(
        [sys.executable, "-m", "openglacier", "blobs", "migrate", "--to", new_url],
        env={**env, "OPENGLACIER_LOG_LEVEL": "debug"},  # a line per blob copied
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    seen = 0
    for line in process.stderr:
        seen += "copied blob" in line
        if seen == kill_after:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(30)
    process.stderr.close()
    assert process.returncode == -signal.SIGKILL, f"finished before blob {kill_after}"
    assert dep.recorded() == dep.old_url  # not switched

    result = migrate(dep, new_url)

    assert result.returncode == 0, result.stderr
    copied, skipped = counts(result)
    assert copied + skipped == total
    assert skipped >= kill_after, (copied, skipped, kill_after)
    assert dep.recorded() == new_url
    serves_everything(dep, new_url)


def test_file_to_s3_and_back(tmp_path: Path, seaweed_store: Seaweed) -> None:
    """The same command moves blobs onto SeaweedFS's S3 gateway and off it again."""
    dep = populate(tmp_path / "data", f"sqlite:///{tmp_path / 'data' / 'metadata.db'}")
    dep.extra_env = {
        "OPENGLACIER_BLOB_ACCESS_KEY_ID": WEED_KEY,
        "OPENGLACIER_BLOB_SECRET_ACCESS_KEY": WEED_SECRET,
    }
    prefix = f"migrate-{uuid.uuid4().hex}"
    s3_url = seaweed_store.blob_url("migrated", prefix)
    old = snapshot(dep.data / "blobs")
    try:
        to_s3 = migrate(dep, s3_url)
        assert to_s3.returncode == 0, to_s3.stderr
        assert counts(to_s3) == (dep.referenced_blobs(), 0)
        assert dep.recorded() == canonical_blob_url(s3_url)
        assert snapshot(dep.data / "blobs") == old
        serves_everything(dep, s3_url, complete_upload=False)
        before_back = seaweed_store.objects("migrated", prefix)
        back_url = f"file://{tmp_path / 'back'}"
        back = migrate(dep, back_url)
        assert back.returncode == 0, back.stderr
        assert counts(back) == (dep.referenced_blobs(), 0)
        assert seaweed_store.objects("migrated", prefix) == before_back  # left as it was
        # Every blob came back byte for byte (one blob format on both stores).
        returned = snapshot(tmp_path / "back" / "objects")
        assert {f"objects/{k}": v for k, v in returned.items()} == {
            k: v for k, v in old.items() if k.startswith("objects/")
        }
        serves_everything(dep, back_url)
    finally:
        seaweed_store.empty("migrated", prefix)

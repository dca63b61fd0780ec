"""Encryption at rest end to end, through real servers and the real CLI: with
--encryption-key-file, no plaintext of an archive (a random marker repeated
through it) is anywhere under the data dir or in the S3 bucket (SeaweedFS),
and no secret key is in the metadata database (SQLite file bytes, a
PostgreSQL dump), yet every archive reads back and every key signs; after a
rotation, `blobs rewrite` (online, resumable after SIGKILL) leaves every
archive readable and every blob on the new key."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from sqlalchemy import select
from sqlalchemy.engine import URL
from test_blobs_migrate import VAULT, retrieve_all, run_jobs
from test_startup_errors import run_cli

from openglacier.auth.credentials import CREDENTIALS_FILE
from openglacier.keyring import load_keyring
from openglacier.ports import BlobStore
from openglacier.storage.blobs.codecs import CodecConfig
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from openglacier.storage.metadata.schema import metadata
from openglacier.storage.metadata.store import open_metadata_store
from openglacier.treehash import MIB
from support.cli import kill_after_lines
from support.seaweed import ACCESS_KEY as WEED_KEY
from support.seaweed import SECRET_KEY as WEED_SECRET
from support.seaweed import Seaweed
from support.server import REGION, SECRET_KEY, LiveServer
from support.services import fresh_pg_database
from support.uploads import multipart_upload

pytestmark = pytest.mark.functional

MARKER = os.urandom(24).hex().encode()  # 48 characters no blob holds by chance
DONE = re.compile(r"done: (\d+) blobs \(\d+ bytes\) re-encrypted with key id (\S+), (\d+) ")


def marked(size: int) -> bytes:
    return (MARKER * (size // len(MARKER) + 1))[:size]


@dataclass
class Site:
    """A deployment under test: its data dir, stores and key file."""

    data: Path
    key_file: Path
    metadata_url: str
    blob_env: dict[str, str] = field(default_factory=dict)
    archives: dict[str, bytes] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=lambda: [SECRET_KEY])
    access: dict[str, str] = field(default_factory=dict)  # created keys: id -> secret

    def env(self, *, keyed: bool = True) -> dict[str, str]:
        env = {"OPENGLACIER_METADATA_URL": self.metadata_url, **self.blob_env}
        if keyed:
            env["OPENGLACIER_ENCRYPTION_KEY_FILE"] = str(self.key_file)
        return env

    def server(self, *, keyed: bool = True) -> LiveServer:
        return LiveServer(self.data, extra_env=self.env(keyed=keyed))

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return run_cli(list(args), self.data, **{**self.env(), **env})

    def create_access_key(self, *, keyed: bool = True) -> None:
        unkeyed = {} if keyed else {"OPENGLACIER_ENCRYPTION_KEY_FILE": ""}
        result = self.cli("keys", "create", **unkeyed)
        assert result.returncode == 0, result.stderr
        key_id = re.search(r"access key id\s+(\S+)", result.stdout)
        secret = re.search(r"secret access key\s+(\S+)", result.stdout)
        assert key_id is not None, result.stdout
        assert secret is not None, result.stdout
        self.access[key_id[1]] = secret[1]
        self.secrets.append(secret[1])

    def named_blobs(self) -> list[str]:
        store = open_metadata_store(self.metadata_url)
        try:
            keys: list[str] = []
            with store.transaction(readonly=True) as tx:
                while page := tx.blob_refs(keys[-1] if keys else None, 500):
                    keys += [ref.key for ref in page]
            return keys
        finally:
            store.close()

    def queued_not_due(self) -> set[str]:
        store = open_metadata_store(self.metadata_url)
        try:
            with store.transaction() as tx:
                due = tx.pending_blob_deletes(10_000, datetime.now(UTC))
                return set(tx.pending_blob_deletes(10_000)) - set(due)
        finally:
            store.close()

    def dump(self) -> bytes:
        """Every row of every metadata table, as a SELECT returns it."""
        store = open_metadata_store(self.metadata_url)
        try:
            with store.engine.connect() as conn:
                rows = [conn.execute(select(t)).all() for t in metadata.sorted_tables]
            return repr(rows).encode()
        finally:
            store.close()


def upload_marked(site: Site, server: LiveServer) -> None:
    glacier = server.client()
    glacier.create_vault(vaultName=VAULT)
    for size in (2 * MIB + 100, 5000):
        body = marked(size)
        site.archives[glacier.upload_archive(vaultName=VAULT, body=body)["archiveId"]] = body
    body = marked(2 * MIB + MIB // 3)
    site.archives[multipart_upload(glacier, VAULT, body)["archiveId"]] = body


def signs_and_reads(site: Site, server: LiveServer) -> None:
    """Every archive reads back whole; every created key still signs."""
    glacier = server.client()
    assert retrieve_all(glacier, server, list(site.archives)) == site.archives
    for key_id, secret in site.access.items():
        client = boto3.client(
            "glacier",
            endpoint_url=server.endpoint,
            region_name=REGION,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
        )
        assert "VaultList" in client.list_vaults()


def files_holding(root: Path, needles: list[bytes]) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and any(n in p.read_bytes() for n in needles)
    )


def keyed_site(tmp_path: Path, metadata_url: str, **blob_env: str) -> Site:
    site = Site(tmp_path / "data", tmp_path / "keys.toml", metadata_url, blob_env)
    created = site.cli("encryption-key", "create", str(site.key_file))
    assert created.returncode == 0, created.stderr
    return site


def test_nothing_under_the_data_dir_is_in_the_clear(tmp_path: Path) -> None:
    """Data written before encryption was on is sealed at the first keyed start
    (secrets) and re-encrypted by `blobs rewrite` (blobs); the old blobs go."""
    site = keyed_site(tmp_path, f"sqlite:///{tmp_path / 'data' / 'metadata.db'}")
    plain = site.server(keyed=False).start()
    try:
        upload_marked(site, plain)
    finally:
        plain.stop()
    site.create_access_key(keyed=False)  # a secret stored before encryption was on
    # ... and the root pair `keys create` generated for its account, in credentials.json
    site.secrets.append(json.loads((site.data / CREDENTIALS_FILE).read_text())["secret_access_key"])
    seen = files_holding(site.data, [MARKER, *(s.encode() for s in site.secrets[-2:])])
    assert {"metadata.db", CREDENTIALS_FILE} <= set(seen)  # the scan sees plaintext
    assert any(path.startswith("blobs/objects/") for path in seen)

    server = site.server().start()  # seals every stored secret
    try:
        site.create_access_key()
        key_id = load_keyring(site.key_file).current
        rewrite = site.cli("blobs", "rewrite", "--key-id", key_id, "--delete-after", "0")
        assert rewrite.returncode == 0, rewrite.stderr
        assert server.admin("POST", "/maintenance").status_code == 200  # old blobs collected
        signs_and_reads(site, server)
    finally:
        server.stop()
    needles = [MARKER, *(s.encode() for s in site.secrets)]
    assert files_holding(site.data, needles) == []


@pytest.fixture
def pg_url(pg_admin: URL) -> Iterator[str]:
    with fresh_pg_database(pg_admin) as url:
        yield url.replace("postgresql+psycopg://", "postgresql://")


@pytest.mark.postgres
def test_s3_objects_and_postgresql_rows_hold_nothing_in_the_clear(
    tmp_path: Path, pg_url: str, seaweed_store: Seaweed
) -> None:
    prefix = f"keys-{uuid.uuid4().hex}"
    seaweed_store.ensure_bucket("encrypted")
    site = keyed_site(
        tmp_path,
        pg_url,
        OPENGLACIER_BLOB_URL=seaweed_store.blob_url("encrypted", prefix),
        OPENGLACIER_BLOB_ACCESS_KEY_ID=WEED_KEY,
        OPENGLACIER_BLOB_SECRET_ACCESS_KEY=WEED_SECRET,
    )
    server = site.server().start()
    try:
        upload_marked(site, server)
        site.create_access_key()
        signs_and_reads(site, server)  # also a retrieval's pinned blobs
        objects = seaweed_store.objects("encrypted", prefix)
        assert len(objects) >= len(site.named_blobs()) > 0
        assert [key for key, body in objects.items() if MARKER in body] == []
        dump = site.dump()
        assert b"og1:" in dump  # the secrets are there, sealed
        assert [s for s in site.secrets if s.encode() in dump] == []
        assert files_holding(site.data, [MARKER]) == []
    finally:
        server.stop()
        seaweed_store.empty("encrypted", prefix)


# --- rotation ----------------------------------------------------------------------------


def blob_keys_by_id(site: Site, root: Path | None = None) -> dict[str | None, int]:
    store: BlobStore = FilesystemBlobStore(
        root or site.data / "blobs", CodecConfig(keyring=load_keyring(site.key_file))
    )
    by_id: dict[str | None, int] = {}
    for key in site.named_blobs():
        info = store.stat(key)
        assert info is not None, key
        by_id[info.key_id] = by_id.get(info.key_id, 0) + 1
    return by_id


def populate(site: Site, server: LiveServer, count: int) -> dict[str, bytes]:
    """Archives, a finished retrieval (pinned blobs) and an inventory output."""
    glacier = server.client()
    glacier.create_vault(vaultName=VAULT)
    rng = random.Random(count)
    for i in range(count):
        body = rng.randbytes(2 * MIB + 7 if i == 0 else 100 + i)
        site.archives[glacier.upload_archive(vaultName=VAULT, body=body)["archiveId"]] = body
    big = rng.randbytes(2 * MIB + 5)
    site.archives[multipart_upload(glacier, VAULT, big)["archiveId"]] = big
    outputs = {}
    for params in ({"Type": "archive-retrieval", "ArchiveId": next(iter(site.archives))},):
        outputs[glacier.initiate_job(vaultName=VAULT, jobParameters=params)["jobId"]] = b""
    run_jobs(server)
    for job in outputs:
        outputs[job] = glacier.get_job_output(vaultName=VAULT, jobId=job)["body"].read()
    return outputs


def counts(result: subprocess.CompletedProcess[str]) -> tuple[int, str, int]:
    found = DONE.search(" ".join(result.stdout.split()))
    assert found is not None, result.stdout + result.stderr
    return int(found[1]), found[2], int(found[3])


def test_rewrite_after_rotation_resumes_after_sigkill_and_moves_every_blob(
    tmp_path: Path,
) -> None:
    site = keyed_site(tmp_path, f"sqlite:///{tmp_path / 'data' / 'metadata.db'}")
    old_id = load_keyring(site.key_file).current
    server = site.server().start()
    try:
        outputs = populate(site, server, 30)
    finally:
        server.stop()
    total = len(site.named_blobs())
    assert blob_keys_by_id(site) == {old_id: total}
    added = site.cli("encryption-key", "create", "--add", str(site.key_file))
    assert added.returncode == 0, added.stderr
    new_id = load_keyring(site.key_file).current

    # Every serve and worker restarted with the new keyring first, then the rewrite.
    server = site.server().start()
    try:
        kill_after = random.Random().randint(1, total // 3)
        env = {**os.environ, "OPENGLACIER_DATA_DIR": str(site.data), **site.env()}
        debug = {**env, "OPENGLACIER_LOG_LEVEL": "debug"}  # a line per blob rewritten
        args = ["blobs", "rewrite", "--key-id", new_id]
        killed = kill_after_lines(args, debug, "rewrote blob", kill_after)
        assert killed, f"finished before blob {kill_after}"
        result = site.cli("blobs", "rewrite", "--key-id", new_id, "--delete-after", "0")
        assert result.returncode == 0, result.stderr
        rewritten, shown_id, skipped = counts(result)
        assert shown_id == new_id
        assert rewritten + skipped == total
        assert skipped >= kill_after
        assert blob_keys_by_id(site) == {new_id: total}
        assert server.admin("POST", "/maintenance").status_code == 200
        on_disk = {p.name for p in (site.data / "blobs" / "objects").rglob("*") if p.is_file()}
        left = on_disk - set(site.named_blobs())
        # The killed run's old blobs wait out their grace (--delete-after, 1h) in
        # the queue, for reads that began before their switch; the rerun's went
        # (0). Beside them only the copy the kill left unswitched (an orphan).
        waiting = site.queued_not_due()
        assert len(waiting) >= kill_after
        assert waiting <= left
        assert len(left - waiting) <= 1
        glacier = server.client()
        assert retrieve_all(glacier, server, list(site.archives)) == site.archives
        for job, body in outputs.items():
            assert glacier.get_job_output(vaultName=VAULT, jobId=job)["body"].read() == body
    finally:
        server.stop()
    again = site.cli("blobs", "rewrite", "--key-id", new_id)
    assert counts(again) == (0, new_id, total)


def test_rewrite_with_a_replica_re_encrypts_both_copies(tmp_path: Path) -> None:
    site = keyed_site(tmp_path, f"sqlite:///{tmp_path / 'data' / 'metadata.db'}")
    replica = tmp_path / "replica"
    site.blob_env = {"OPENGLACIER_REPLICA_BLOB_URL": f"file://{replica}"}
    old_id = load_keyring(site.key_file).current
    server = site.server().start()
    try:
        upload_marked(site, server)
    finally:
        server.stop()
    total = len(site.named_blobs())
    assert site.cli("encryption-key", "create", "--add", str(site.key_file)).returncode == 0
    new_id = load_keyring(site.key_file).current
    result = site.cli("blobs", "rewrite", "--key-id", new_id, "--delete-after", "0")
    assert result.returncode == 0, result.stderr
    assert counts(result) == (total, new_id, 0)
    for root in (site.data / "blobs", replica):
        assert blob_keys_by_id(site, root) == {new_id: total}
    server = site.server().start()
    try:
        assert server.admin("POST", "/maintenance").status_code == 200
        for root in (site.data / "blobs", replica):
            left = {p.name for p in (root / "objects").rglob("*") if p.is_file()}
            assert left == set(site.named_blobs())  # the old-key copies went from both
        assert retrieve_all(server.client(), server, list(site.archives)) == site.archives
    finally:
        server.stop()
    assert old_id != new_id

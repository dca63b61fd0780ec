"""The scrubber on a live server with real boto3 clients and the real CLI.

Archives are uploaded (single and multipart), then their stored blobs are
damaged as disks and buckets damage them: a bit flipped in the first MiB and
in a later MiB, a truncation, a zeroed range. Each on a filesystem blob store
and on an S3 one (a real SeaweedFS), raw (codec 1) and encrypted
(AES-256-GCM). `POST /_admin/scrub` finds each
fault and `GET /_admin/damage` lists it; `openglacier scrub now` finds them
too, prints each archive's vault and id and exits 1; a retrieval of a damaged
archive fails with the damage message; the output of a job that succeeded
before the damage is never served as good; an undamaged archive still
retrieves. With a replica (files or S3) the same faults in one copy are
repaired by the next pass, and every archive retrieves intact meanwhile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from openglacier.clock import SystemClock
from openglacier.config import Settings
from openglacier.domain.damage import DAMAGED_MESSAGE
from openglacier.keyring import render_keyring
from openglacier.storage.metadata.store import open_metadata_store
from openglacier.treehash import MIB, tree_hash
from support.blobfiles import blob_file
from support.blobrot import FileBlob, S3Blob, StoredBlob, flip_bit, truncate, zero_range
from support.codecs import KEYRING
from support.seaweed import ACCESS_KEY, SECRET_KEY, Seaweed
from support.seaweed import REGION as S3_REGION
from support.server import ACCOUNT_ID, REGION, LiveServer
from support.uploads import multipart_upload

pytestmark = pytest.mark.functional

VAULT = "scrubbed"
ARN = f"arn:aws:glacier:{REGION}:{ACCOUNT_ID}:vaults/{VAULT}"
BUCKET = "blob-contract"  # shared with the contract suites; each site has its prefix


@dataclass(frozen=True)
class Store:
    """A blob store for a site: its URL and settings, and its stored objects."""

    url: str
    env: dict[str, str]
    seaweed: Seaweed | None = None
    prefix: str = ""  # in BUCKET, for an s3 store

    def blob(self, key: str) -> StoredBlob:
        if self.seaweed is None:
            return FileBlob(key, blob_file(Path(self.url.removeprefix("file://")), key))
        return S3Blob(key, self.seaweed, BUCKET, f"{self.prefix}/{key}")

    def clean(self) -> None:
        if self.seaweed is not None:
            self.seaweed.empty(BUCKET, self.prefix)


def file_store(root: Path) -> Store:
    return Store(f"file://{root}", {})


def s3_store(seaweed: Seaweed) -> Store:
    prefix = f"scrub/{uuid.uuid4().hex}"
    env = {
        "OPENGLACIER_BLOB_ACCESS_KEY_ID": ACCESS_KEY,
        "OPENGLACIER_BLOB_SECRET_ACCESS_KEY": SECRET_KEY,
        "OPENGLACIER_BLOB_REGION": S3_REGION,
    }
    return Store(seaweed.blob_url(BUCKET, prefix), env, seaweed, prefix)


def key_file(directory: Path) -> dict[str, str]:
    """Encryption on: a keyring file (mode 0600) and the setting naming it."""
    path = directory / "keys.toml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(render_keyring(KEYRING))
    return {"OPENGLACIER_ENCRYPTION_KEY_FILE": str(path)}


@dataclass
class Site:
    server: LiveServer
    glacier: Any
    bodies: dict[str, bytes]  # archive id -> its bytes
    store: Store  # the blob store (the primary, with a replica)
    env: dict[str, str]  # the server's settings (store, keys, scrub rate)
    earlier_job: str = ""  # a retrieval of `flipped_first` that succeeded before the damage

    @property
    def metadata_url(self) -> str:
        return Settings(data_dir=self.server.data_dir).resolved_metadata_url

    def blob_keys(self, archive_id: str) -> list[str]:
        store = open_metadata_store(self.metadata_url)
        try:
            with store.transaction(readonly=True) as tx:
                return [s.blob_key for s in tx.get_segments(archive_id)]
        finally:
            store.close()

    def stored(self, archive_id: str, segment: int = 0, store: Store | None = None) -> StoredBlob:
        """The stored object of the archive's `segment`th blob (in the primary,
        or in `store`)."""
        return (store or self.store).blob(self.blob_keys(archive_id)[segment])

    def upload(self, body: bytes) -> str:
        resp = self.glacier.upload_archive(vaultName=VAULT, body=body, checksum=tree_hash(body))
        self.bodies[resp["archiveId"]] = body
        return str(resp["archiveId"])

    def retrieve(self, archive_id: str) -> str:
        job = self.glacier.initiate_job(
            vaultName=VAULT, jobParameters={"Type": "archive-retrieval", "ArchiveId": archive_id}
        )
        resp = self.server.admin("POST", "/jobs/run")
        assert resp.status_code == 200, resp.text
        return str(job["jobId"])

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self.glacier.describe_job(vaultName=VAULT, jobId=job_id))

    def output(self, job_id: str) -> bytes:
        resp = self.glacier.get_job_output(vaultName=VAULT, jobId=job_id)
        return bytes(resp["body"].read())


def cli(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**server.env(), "COLUMNS": "400"}
    return subprocess.run(
        [sys.executable, "-m", "openglacier", "scrub", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module", params=["files", "s3", "s3-encrypted"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("scrub")
    if request.param == "files":
        store = file_store(root / "data" / "blobs")
    else:
        store = s3_store(request.getfixturevalue("seaweed_store"))
    # No background scrubbing: the test runs every pass itself.
    env = {"OPENGLACIER_BLOB_URL": store.url, **store.env, "OPENGLACIER_SCRUB_RATE": "0"}
    if request.param.endswith("encrypted"):
        env.update(key_file(root))
    server = LiveServer(root / "data", extra_env=env).start()
    site = Site(server, server.client(), {}, store, env)
    try:
        site.glacier.create_vault(vaultName=VAULT)
        yield site
    finally:
        site.server.stop()  # the last one started (a test restarts it)
        store.clean()


@pytest.fixture(scope="module")
def damaged(site: Site) -> dict[str, str]:
    """Archives by the fault injected into them; "clean" has none."""
    names = {
        "clean": site.upload(os.urandom(3 * MIB + 5)),
        "flipped_first": site.upload(os.urandom(3 * MIB)),
        "flipped_later": site.upload(os.urandom(5 * MIB + 77)),
        "truncated": site.upload(os.urandom(4 * MIB)),
        "zeroed": site.upload(os.urandom(6 * MIB)),
    }
    body = os.urandom(3 * MIB)
    multipart = multipart_upload(site.glacier, VAULT, body)["archiveId"]
    site.bodies[multipart] = body
    names["multipart"] = multipart
    site.earlier_job = site.retrieve(names["flipped_first"])
    assert site.job(site.earlier_job)["StatusCode"] == "Succeeded"

    inject(site, names)
    # Read before any scrub: the damaged bytes are never served as good.
    with pytest.raises(ClientError) as caught:
        site.output(site.earlier_job)
    assert caught.value.response["Error"]["Code"] == "ServiceUnavailableException"
    assert "damaged" in caught.value.response["Error"]["Message"]
    return names


def inject(site: Site, names: dict[str, str], store: Store | None = None) -> None:
    """The faults, by archive name, in `store` (default: the site's)."""

    def blob(name: str, segment: int = 0) -> StoredBlob:
        return site.stored(names[name], segment, store)

    faults: dict[str, Callable[[], None]] = {
        "flipped_first": lambda: flip_bit(blob("flipped_first"), 4242, bit=6),
        "flipped_later": lambda: flip_bit(blob("flipped_later"), 3 * MIB + 9),
        "truncated": lambda: truncate(blob("truncated"), 3 * MIB + 1),
        "zeroed": lambda: zero_range(blob("zeroed"), 4 * MIB + 512, 8192),
        # The third part of the multipart archive: its own blob.
        "multipart": lambda: flip_bit(blob("multipart", 2), MIB - 1),
    }
    for name, fault in faults.items():
        if name in names:
            fault()


@pytest.fixture(scope="module")
def scrubbed(site: Site, damaged: dict[str, str]) -> dict[str, Any]:
    """The report of the first `POST /_admin/scrub` after the damage."""
    resp = site.server.admin("POST", "/scrub")
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_an_admin_scrub_finds_each_fault_and_lists_it(
    site: Site, damaged: dict[str, str], scrubbed: dict[str, Any]
) -> None:
    report = scrubbed
    assert report["finished_at"] is not None
    assert report["blobs"] == 8  # the multipart archive has three parts
    want = {damaged[name] for name in damaged if name != "clean"}
    found = {d["ArchiveId"]: d for d in report["damage"]}
    assert set(found) == want
    assert "leaf 0 " in found[damaged["flipped_first"]]["problem"]
    assert "leaf 3 " in found[damaged["flipped_later"]]["problem"]
    assert "leaf 4 " in found[damaged["zeroed"]]["problem"]
    assert found[damaged["multipart"]]["blob"] == site.blob_keys(damaged["multipart"])[2]
    assert all(d["VaultARN"] == ARN and d["quarantined"] for d in report["damage"])

    listed = site.server.admin("GET", "/damage?state=open").json()["damage"]
    assert {d["ArchiveId"] for d in listed} == want
    # Found again, the same records: nothing new is listed.
    assert site.server.admin("POST", "/scrub").json()["damage_found"] == len(want)
    assert len(site.server.admin("GET", "/damage").json()["damage"]) == len(want)


def test_scrub_now_prints_each_damaged_archive_and_exits_1(
    site: Site, damaged: dict[str, str]
) -> None:
    done = cli(site.server, "now")
    assert done.returncode == 1, done.stderr
    for name, archive_id in damaged.items():
        if name == "clean":
            assert archive_id not in done.stdout
        else:
            (line,) = [ln for ln in done.stdout.splitlines() if archive_id in ln]
            assert ARN in line
    assert "8 blobs" in done.stdout
    assert "5 damaged" in done.stdout
    assert "Traceback" not in done.stderr

    shown = cli(site.server, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert status["damage"]["open"] == 5
    assert status["last_pass"]["blobs"] == 8
    assert status["current_pass"] is None
    assert {r["ArchiveId"] for r in status["records"]} == set(damaged.values()) - {damaged["clean"]}
    human = cli(site.server, "status")
    assert human.returncode == 0, human.stderr
    assert "5 open, 0 repaired" in human.stdout


def test_a_damaged_archive_is_never_served_and_a_clean_one_is(
    site: Site, damaged: dict[str, str], scrubbed: dict[str, Any]
) -> None:
    for name in ("flipped_first", "truncated", "multipart"):
        job = site.job(site.retrieve(damaged[name]))
        assert (job["StatusCode"], job["StatusMessage"]) == ("Failed", DAMAGED_MESSAGE)
    with pytest.raises(ClientError) as caught:
        site.output(site.earlier_job)
    error = caught.value.response
    assert error["Error"]["Code"] == "ServiceUnavailableException"
    assert damaged["flipped_first"] in error["Error"]["Message"]
    assert "damaged" in error["Error"]["Message"]
    clean = damaged["clean"]
    assert site.output(site.retrieve(clean)) == site.bodies[clean]


def test_scrub_now_while_another_process_scrubs_is_one_line(
    site: Site, damaged: dict[str, str]
) -> None:
    store = open_metadata_store(site.metadata_url)
    try:
        now = SystemClock().now()
        with store.transaction() as tx:
            assert tx.take_scrub_lease("node-b:7:cafe", now, now + timedelta(minutes=5))
        busy = cli(site.server, "now")
        assert busy.returncode == 1
        (line,) = busy.stderr.strip().splitlines()
        assert "another process is scrubbing (node-b:7:cafe" in line
        assert site.server.admin("POST", "/scrub").status_code == 409
    finally:
        with store.transaction() as tx:
            state = tx.scrub_state()
            assert state is not None
            free = replace(state, lease_holder=None, lease_until=None)
            assert tx.save_scrub_state("node-b:7:cafe", free)
        store.close()


def test_serve_scrubs_in_the_background(site: Site, damaged: dict[str, str]) -> None:
    """The same data under a server whose background scrubber is on (and due
    at once): it runs a pass by itself, paced, and finds the same damage.
    Polled with a deadline: a background loop has no admin hook."""
    before = site.server.admin("GET", "/scrub").json()
    site.server.stop()
    site.server = LiveServer(
        site.server.data_dir,
        extra_env={
            **site.env,
            "OPENGLACIER_SCRUB_RATE": "64",
            "OPENGLACIER_SCRUB_INTERVAL": "1s",
        },
    ).start()
    deadline = time.monotonic() + 60
    status = before
    while status["passes_completed"] == before["passes_completed"]:
        assert time.monotonic() < deadline, f"no background pass: {status}"
        time.sleep(0.2)
        status = site.server.admin("GET", "/scrub").json()
    assert status["last_pass"]["blobs"] == 8
    assert status["last_pass"]["damage_found"] == 5
    records = site.server.admin("GET", "/damage").json()["damage"]
    assert len(records) == 5  # found again: the same records, seen later
    assert all(r["last_seen_at"] > r["found_at"] for r in records)


# --- with a replica: the same faults in one copy are repaired ---------------------------


@pytest.fixture(params=["s3+files", "files+s3-encrypted"])
def replicated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Site, Store]]:
    """A site whose blob store has a replica: (the site, the replica)."""
    seaweed: Seaweed = request.getfixturevalue("seaweed_store")
    if request.param.startswith("s3+"):
        primary, replica = s3_store(seaweed), file_store(tmp_path / "replica")
    else:
        primary, replica = file_store(tmp_path / "data" / "blobs"), s3_store(seaweed)
    env = {
        "OPENGLACIER_BLOB_URL": primary.url,
        "OPENGLACIER_REPLICA_BLOB_URL": replica.url,
        **primary.env,
        **replica.env,
        "OPENGLACIER_SCRUB_RATE": "0",
    }
    if request.param.endswith("encrypted"):
        env.update(key_file(tmp_path))
    server = LiveServer(tmp_path / "data", extra_env=env).start()
    site = Site(server, server.client(), {}, primary, env)
    try:
        site.glacier.create_vault(vaultName=VAULT)
        yield site, replica
    finally:
        server.stop()
        primary.clean()
        replica.clean()


def test_with_a_replica_each_fault_is_repaired_and_every_archive_retrieves_intact(
    replicated: tuple[Site, Store],
) -> None:
    site, replica = replicated
    in_primary = {
        "flipped_first": site.upload(os.urandom(2 * MIB + 3)),
        "flipped_later": site.upload(os.urandom(4 * MIB)),
        "truncated": site.upload(os.urandom(4 * MIB)),
        "zeroed": site.upload(os.urandom(5 * MIB)),
    }
    in_replica = {"flipped_first": site.upload(os.urandom(MIB))}
    earlier = site.retrieve(in_primary["flipped_first"])
    inject(site, in_primary)
    inject(site, in_replica, replica)

    # Before any repair, reads use the good copy: never the damaged bytes.
    assert site.output(earlier) == site.bodies[in_primary["flipped_first"]]

    report = site.server.admin("POST", "/scrub").json()
    damaged = set(in_primary.values()) | set(in_replica.values())
    assert {d["ArchiveId"] for d in report["damage"]} == damaged
    assert report["repaired"] == len(damaged)
    for record in report["damage"]:
        assert not record["quarantined"]
        assert record["repair_note"].startswith("restored the ")
        copy = "replica" if record["ArchiveId"] in in_replica.values() else "primary"
        assert f"restored the {copy} copy from the" in record["repair_note"]
    assert site.server.admin("GET", "/damage?state=open").json()["damage"] == []
    # Both copies verify again, and every archive retrieves whole.
    assert site.server.admin("POST", "/scrub").json()["damage_found"] == 0
    for archive_id, body in site.bodies.items():
        assert site.output(site.retrieve(archive_id)) == body

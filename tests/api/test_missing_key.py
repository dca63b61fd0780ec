"""A blob whose key the reading process lacks is a configuration problem, not
damage (issue 14).

At start a process is refused unless its keyring holds every recorded key id,
so the case arises at read time only: another node, started later with a newer
key, wrote (or re-encrypted) the blob. Here the server runs with the old key
only, and the archive's blob is rewritten under a new key through a blob store
holding both, as that other node's `blobs rewrite --key-id` would. The
server's GetJobOutput answers ServiceUnavailableException naming the key id
(not an internal error), its retrieval job is left to be retried (not failed
as damaged), and nothing is recorded as damage or quarantined.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.conftest import make_settings
from openglacier.clock import ManualClock
from openglacier.keyring import render_keyring
from openglacier.server import Runtime, build_runtime
from openglacier.storage.blobs.codecs import CodecConfig
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from openglacier.treehash import MIB
from support.asserts import assert_error
from support.codecs import KEYRING, OLD_KEYRING
from support.inprocess import Api
from support.jobs import describe, output, run_jobs, start_job, upload

V = "v"


@pytest.fixture
def runtime(tmp_path: Path, clock: ManualClock) -> Iterator[Runtime]:
    """The server, with the old key only."""
    key_file = tmp_path / "old.keys"
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(render_keyring(OLD_KEYRING))
    settings = make_settings(
        tmp_path, timing="instant", clock="manual", encryption_key_file=str(key_file)
    )
    rt = build_runtime(settings, clock=clock)
    yield rt
    rt.close()


def _rewrite_under_new_key(runtime: Runtime) -> None:
    """What another node holding the new key does to the one blob."""
    other = FilesystemBlobStore(
        Path(runtime.settings.data_dir) / "blobs", CodecConfig(keyring=KEYRING)
    )
    try:
        (key,) = other.keys()
        with other.open(key) as reader:  # the old key: both keyrings hold it
            payload = b"".join(reader)
        other.delete(key)
        writer = other.create(key)
        writer.write(payload)
        writer.commit()
    finally:
        other.close()


def test_a_blob_under_a_key_the_server_lacks_is_an_error_naming_it_not_damage(
    api: Api, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    assert api("PUT", f"/-/vaults/{V}").status_code == 201
    body = os.urandom(2 * MIB + 11)
    archive_id = upload(api, V, body)
    job_id = start_job(api, V, {"Type": "archive-retrieval", "ArchiveId": archive_id})
    assert run_jobs(api) == 1
    assert describe(api, V, job_id)["StatusCode"] == "Succeeded"
    assert output(api, V, job_id).content == body
    _rewrite_under_new_key(runtime)

    caplog.clear()
    resp = output(api, V, job_id)
    assert_error(resp, 500, "ServiceUnavailableException")
    message = resp.json()["message"]
    assert "key id 'k-new'" in message
    assert "old.keys" not in message  # the key file's path stays in the log
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("key id 'k-new' is needed" in line for line in errors), errors
    assert not any("damaged" in line for line in errors), errors
    assert all(r.exc_info is None for r in caplog.records if r.levelno >= logging.ERROR)

    # A new retrieval is not failed as damaged: it stays in progress, for a
    # node with the key (or this one restarted with it) to complete.
    second = start_job(api, V, {"Type": "archive-retrieval", "ArchiveId": archive_id})
    resp = api.admin("POST", f"/jobs/{second}/complete")
    assert resp.status_code == 409, resp.text  # could not run now: stays in progress
    assert describe(api, V, second)["StatusCode"] == "InProgress"
    assert any("k-new" in str(r.exc_info) for r in caplog.records)  # the runner's log

    # A scrub pass stops on it (an error naming the key, like a store outage)
    # instead of recording the healthy blob as damaged.
    scrub = api.admin("POST", "/scrub")
    assert scrub.status_code >= 500
    assert "k-new" in scrub.text
    assert api.admin("GET", "/damage").json()["damage"] == []

"""Blob codecs through the API: what --compression and --encryption-key-file do
to the blobs an upload writes, and that retrievals read them back verified.

The store-level behaviour (every codec, damage, ranges) is in
tests/contract/test_blob_contract.py and tests/unit/test_codecs.py; here the
settings reach the store and the bytes on disk are what they should be.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.conftest import make_settings
from openglacier.clock import ManualClock
from openglacier.keyring import create_key_file
from openglacier.server import Runtime, build_runtime
from openglacier.storage.blobs.format import unpack_header
from openglacier.treehash import MIB
from support.codecs import mixed_payload
from support.inprocess import Api
from support.jobs import output, run_jobs, start_job, upload

V = "codecs"
CODEC_SETTINGS = {
    "checked": ({}, 1),
    "zstd": ({"compression": "zstd:5"}, 2),
    "aes": ({"encryption_key_file": "KEY"}, 3),
    "zstd-aes": ({"compression": "zstd", "encryption_key_file": "KEY"}, 4),
}


@pytest.fixture(params=list(CODEC_SETTINGS))
def codec(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def runtime(tmp_path: Path, clock: ManualClock, codec: str) -> Iterator[Runtime]:
    overrides: dict[str, object] = dict(CODEC_SETTINGS[codec][0])
    if "encryption_key_file" in overrides:
        key_file = tmp_path / "blob.key"
        create_key_file(key_file)
        overrides["encryption_key_file"] = str(key_file)
    settings = make_settings(tmp_path, timing="instant", clock="manual", **overrides)
    rt = build_runtime(settings, clock=clock)
    yield rt
    rt.close()


def _blob_files(runtime: Runtime) -> list[Path]:
    objects = Path(runtime.settings.data_dir) / "blobs" / "objects"
    return [p for p in objects.rglob("*") if p.is_file()]


def test_uploads_are_stored_with_the_configured_codec(
    api: Api, runtime: Runtime, codec: str
) -> None:
    assert api("PUT", f"/-/vaults/{V}").status_code == 201
    body = mixed_payload(3 * MIB + 12345, 7)
    archive_id = upload(api, V, body)
    (path,) = _blob_files(runtime)
    raw = path.read_bytes()
    header = unpack_header(raw, path.name)
    assert (header.codec, header.payload_length) == (CODEC_SETTINGS[codec][1], len(body))
    marker = body[MIB : MIB + 64]  # a piece of the plaintext
    if codec in ("zstd", "zstd-aes"):
        assert len(raw) < len(body)  # compressible, so compressed
    if codec in ("aes", "zstd-aes"):
        assert marker not in raw
    else:
        assert (marker in raw) == (codec == "checked")
    (info,) = [runtime.services.deps.blobs.stat(path.name)]
    assert info is not None
    assert info.key_id is not None if codec in ("aes", "zstd-aes") else info.key_id is None

    job_id = start_job(api, V, {"Type": "archive-retrieval", "ArchiveId": archive_id})
    assert run_jobs(api) == 1
    assert output(api, V, job_id).content == body
    ranged = output(api, V, job_id, f"bytes={MIB - 3}-{2 * MIB + 5}")
    assert ranged.content == body[MIB - 3 : 2 * MIB + 6]

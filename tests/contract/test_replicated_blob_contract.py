"""The BlobStore contract suite (test_blob_contract.py) once more, over the
replicated store (--replica-blob-url): a filesystem primary with a filesystem
replica, and a filesystem primary with a SeaweedFS S3 replica.

The tests are not copied: every test and fixture of the contract module is
collected again here, where this module's `store` fixture overrides it, so a
test added to the contract suite runs over the replicated store as well. Each
test then also checks that the two copies agree (`_copies_agree`): the suite's
own assertions see the replicated store only from outside.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_blob_contract as _contract

from openglacier.ports import BlobStore
from openglacier.storage.blobs.codecs import CodecConfig
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from openglacier.storage.blobs.replicated import ReplicatedBlobStore
from support.codecs import CODECS, codec_params
from support.seaweed import Seaweed

MIB = 1 << 20
_FIXTURE_TYPE = type(_contract.store)

# Collect the contract's tests and fixtures (all but `store` and `codec`) in this module.
globals().update(
    {
        name: value
        for name, value in vars(_contract).items()
        if name.startswith("test_")
        or (isinstance(value, _FIXTURE_TYPE) and name not in ("store", "codec"))
    }
)


@pytest.fixture(params=codec_params(["checked", "zstd-aes"]))
def codec(request: pytest.FixtureRequest) -> str:
    """The default codec and the most involved one: the codecs themselves are
    the single-store suite's subject; here it is the two copies."""
    return str(request.param)


def _s3(request: pytest.FixtureRequest, codecs: CodecConfig) -> BlobStore:
    seaweed: Seaweed = request.getfixturevalue("seaweed_store")
    prefix = f"replica/{uuid.uuid4().hex}"
    request.addfinalizer(lambda: seaweed.empty(_contract.CONTRACT_BUCKET, prefix))
    return seaweed.blob_store(_contract.CONTRACT_BUCKET, prefix, part_size=5 * MIB, codecs=codecs)


@pytest.fixture(params=["file+file", "file+s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, codec: str) -> Iterator[BlobStore]:
    codecs = CODECS[codec]
    primary = FilesystemBlobStore(tmp_path / "primary", codecs)
    replica = (
        _s3(request, codecs)
        if request.param == "file+s3"
        else FilesystemBlobStore(tmp_path / "r", codecs)
    )
    replicated = ReplicatedBlobStore(primary, replica)
    yield replicated
    try:
        _copies_agree(primary, replica)
    finally:
        replicated.close()


def _copies_agree(primary: BlobStore, replica: BlobStore) -> None:
    """Whatever a test did, each store holds the same blobs with the same bytes."""
    keys = list(primary.keys())
    assert keys == list(replica.keys())
    for key in keys:
        assert primary.stat(key) == replica.stat(key)
        assert b"".join(primary.open(key)) == b"".join(replica.open(key))

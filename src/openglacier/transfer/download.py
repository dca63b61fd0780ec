"""PLACEHOLDER until helper h4's transfer/download.py is merged (same signature):
the job output streamed to `dest`.part, its tree hash computed while writing,
renamed to `dest` only if it matches. h4's version adds parallel ranges, range
checksums and resume; this file is replaced by it on merge."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openglacier.treehash import MIB, TreeHasher


class ChecksumMismatch(Exception):
    pass


def download_job_output(
    client: Any,
    account_id: str,
    vault: str,
    job_id: str,
    dest: Path,
    *,
    size: int,
    tree_hash: str | None,
    parallel: int = 1,
    part_size: int = 64 * MIB,
    progress: Callable[[int], None] | None = None,
) -> str:
    del parallel, part_size  # h4's version uses them
    part = dest.with_name(dest.name + ".part")
    hasher = TreeHasher()
    resp = client.get_job_output(accountId=account_id, vaultName=vault, jobId=job_id)
    with part.open("wb") as fh:
        for chunk in resp["body"].iter_chunks(MIB):
            hasher.update(chunk)
            fh.write(chunk)
            if progress is not None:
                progress(len(chunk))
        fh.flush()
        os.fsync(fh.fileno())
    computed = hasher.hexdigest()
    if hasher.size != size or (tree_hash is not None and computed != tree_hash):
        part.unlink()
        raise ChecksumMismatch(
            f"job {job_id}: {hasher.size} bytes with tree hash {computed}, "
            f"expected {size} bytes with {tree_hash}"
        )
    part.rename(dest)
    return computed

"""A job's output to a file: parallel ranges, each range's checksum verified,
resumable after a kill, the whole file's tree hash verified before it is
renamed into place.

Ranges are `range_size` (1 MiB times a power of two) long and start at its
multiples, so each is a node of the archive's tree: Glacier returns its tree
hash (`x-amz-sha256-tree-hash`, spec 3.6) and the client compares it with the
hash of the bytes received. A range that does not match is asked for again (a
flipped bit in transit); one that keeps not matching is an error. Finished
ranges are recorded in the sidecar (transfer/sidecar.py), so a rerun asks only
for the others. At the end the partial file is read back whole: its tree hash
must be the archive's. If it is not, the ranges whose bytes on disk no longer
hash to what was received are downloaded once more; if it still is not, the
partial file is removed and ChecksumMismatch raised: nothing is presented as good.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError, HTTPClientError, IncompleteReadError

from openglacier.transfer.sidecar import Range, Sidecar, part_path
from openglacier.treehash import MIB, TreeHasher, root_of_leaves

DEFAULT_RANGE_SIZE = 16 * MIB
READ = MIB
ATTEMPTS = 3  # per range: a checksum mismatch or a dropped stream is retried


class ChecksumMismatch(Exception):
    """Bytes received do not match their tree hash (str() is one line)."""


def plan_ranges(size: int, range_size: int) -> list[Range]:
    return [(first, min(first + range_size, size) - 1) for first in range(0, size, range_size)]


def check_range_size(range_size: int) -> None:
    blocks = range_size // MIB
    if range_size % MIB or blocks < 1 or blocks & (blocks - 1):
        raise ValueError("range size must be 1 MiB times a power of two")


def download_job_output(
    client: Any,
    account_id: str,
    vault: str,
    job_id: str,
    dest: Path,
    *,
    size: int,
    tree_hash: str | None,
    parallel: int = 4,
    part_size: int = DEFAULT_RANGE_SIZE,
    progress: Callable[[int], None] | None = None,
    on_resume: Callable[[int], None] | None = None,
    on_repair: Callable[[str], None] | None = None,
) -> str:
    """Download job `job_id`'s output (`size` bytes) to `dest`; its tree hash.

    `tree_hash` is the output's (DescribeJob's SHA256TreeHash); None (inventory,
    a retrieval range that is not tree-hash aligned) downloads without checks.
    `progress(n)` is called as bytes arrive, `on_resume(n)` once with the bytes
    already on disk from an earlier run, `on_repair(line)` when ranges found
    damaged on disk are downloaded again. ClientError (e.g. the job expired)
    and connection errors propagate; the partial file stays for a rerun.
    """
    check_range_size(part_size)
    part = part_path(dest)
    sidecar = _open_sidecar(
        dest, part, job_id=job_id, size=size, tree_hash=tree_hash, range_size=part_size
    )
    todo = [r for r in plan_ranges(size, part_size) if r not in sidecar.done]
    if on_resume is not None and len(todo) < len(plan_ranges(size, part_size)):
        on_resume(size - sum(last - first + 1 for first, last in todo))
    fetch = _Fetcher(
        client,
        account_id=account_id,
        vault=vault,
        job_id=job_id,
        part=part,
        tree_hash=tree_hash,
        progress=progress,
    )
    fetch.run(todo, parallel, sidecar)
    computed, damaged = _verify_file(part, size, sidecar)
    if tree_hash is not None and computed != tree_hash.lower() and damaged:
        if on_repair is not None:
            on_repair(f"{len(damaged)} range(s) damaged on disk since download; fetching again")
        sidecar.forget(damaged)
        fetch.run(damaged, parallel, sidecar)
        computed, damaged = _verify_file(part, size, sidecar)
    if tree_hash is not None and computed != tree_hash.lower():
        part.unlink(missing_ok=True)
        sidecar.remove()
        raise ChecksumMismatch(
            f"checksum mismatch: job {job_id} output hashes to {computed}, expected {tree_hash}"
        )
    _fsync(part)
    os.replace(part, dest)
    sidecar.remove()
    return computed


def _open_sidecar(
    dest: Path, part: Path, *, job_id: str, size: int, tree_hash: str | None, range_size: int
) -> Sidecar:
    """The sidecar, its ranges kept only if they are of the same bytes: same
    size, tree hash and range size (a new job for the same archive qualifies),
    or the same job when there is no tree hash to compare."""
    sidecar = Sidecar.load(dest)
    meta = sidecar.meta
    same = (
        part.exists()
        and meta.get("size") == size
        and meta.get("range_size") == range_size
        and (
            (tree_hash is not None and meta.get("tree_hash") == tree_hash)
            or (tree_hash is None and meta.get("output_job_id") == job_id)
        )
    )
    facts = {"size": size, "range_size": range_size, "tree_hash": tree_hash}
    if same:
        sidecar.update_meta(output_job_id=job_id, **facts)
        return sidecar
    keep = {k: v for k, v in meta.items() if k not in facts and k != "output_job_id"}
    sidecar.reset(**keep, output_job_id=job_id, **facts)
    with part.open("wb") as fh:
        fh.truncate(size)
    return sidecar


class _Fetcher:
    """Ranges of one job's output into the partial file, `parallel` at a time."""

    def __init__(
        self,
        client: Any,
        *,
        account_id: str,
        vault: str,
        job_id: str,
        part: Path,
        tree_hash: str | None,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.client, self.account_id, self.vault, self.job_id = client, account_id, vault, job_id
        self.part = part
        self.checked = tree_hash is not None
        self.progress = progress
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []

    def run(self, ranges: list[Range], parallel: int, sidecar: Sidecar) -> None:
        """Threads of this call only, ended when the ranges are: a migration
        downloads thousands of outputs in one process. They are daemons, so
        Ctrl-C exits at once instead of waiting for ranges in flight."""
        if not ranges:
            return
        todo = iter(ranges)
        fd = os.open(self.part, os.O_RDWR)
        threads = [
            threading.Thread(target=self._worker, args=(fd, todo, sidecar), daemon=True)
            for _ in range(min(parallel, len(ranges)))
        ]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            if not any(thread.is_alive() for thread in threads):  # else: exiting anyway
                os.close(fd)
        if self._errors:
            raise self._errors[0]

    def _worker(self, fd: int, todo: Iterator[Range], sidecar: Sidecar) -> None:
        while True:
            with self._lock:
                r = None if self._errors else next(todo, None)
            if r is None:
                return
            try:
                digest = self._fetch(fd, r)
                with self._lock:
                    sidecar.add_range(r[0], r[1], digest)
            except BaseException as exc:  # handed to the calling thread
                with self._lock:
                    self._errors.append(exc)
                return

    def _fetch(self, fd: int, r: Range) -> str:
        """One range, retried on a mismatch or a dropped stream; its tree hash."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._fetch_once(fd, r)
            except (ChecksumMismatch, HTTPClientError, IncompleteReadError):
                if attempt == ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _fetch_once(self, fd: int, r: Range) -> str:
        first, last = r
        resp = self.client.get_job_output(
            accountId=self.account_id,
            vaultName=self.vault,
            jobId=self.job_id,
            range=f"bytes={first}-{last}",
        )
        hasher = TreeHasher(linear=False)
        offset, sent = first, 0
        body = resp["body"]
        try:
            for chunk in body.iter_chunks(READ):
                os.pwrite(fd, chunk, offset)
                hasher.update(chunk)
                offset += len(chunk)
                sent += len(chunk)
                if self.progress is not None:
                    self.progress(len(chunk))
        finally:
            body.close()
        if offset != last + 1:
            self._unsend(sent)
            raise ChecksumMismatch(f"range {first}-{last}: {offset - first} bytes received")
        digest = hasher.hexdigest()
        expected = resp.get("checksum")
        if self.checked and expected and str(expected).lower() != digest:
            self._unsend(sent)
            raise ChecksumMismatch(
                f"checksum mismatch: range {first}-{last} of job {self.job_id} hashes to"
                f" {digest}, the endpoint says {expected}"
            )
        return digest

    def _unsend(self, nbytes: int) -> None:
        if self.progress is not None:
            self.progress(-nbytes)


def _verify_file(part: Path, size: int, sidecar: Sidecar) -> tuple[str, list[Range]]:
    """The partial file's tree hash, and the recorded ranges whose bytes on disk
    no longer hash to what was received."""
    hasher = TreeHasher(linear=False)
    with part.open("rb") as fh:
        while chunk := fh.read(READ):
            hasher.update(chunk)
    if hasher.size != size:
        return hasher.hexdigest(), sorted(sidecar.done)
    leaves = hasher.leaves()
    damaged = [
        (first, last)
        for (first, last), digest in sidecar.done.items()
        if digest is not None
        and root_of_leaves(leaves[(first // MIB) * 32 : (last // MIB + 1) * 32]).hex() != digest
    ]
    return hasher.hexdigest(), sorted(damaged)


def _fsync(path: Path) -> None:
    with path.open("rb+") as fh:
        os.fsync(fh.fileno())


def stream_job_output(
    client: Any, account_id: str, vault: str, job_id: str, *, chunk_size: int = READ
) -> Iterator[bytes]:
    """The job's output as it arrives, in chunks (an inventory to parse as it
    streams; nothing is kept)."""
    resp = client.get_job_output(accountId=account_id, vaultName=vault, jobId=job_id)
    body = resp["body"]
    try:
        yield from body.iter_chunks(chunk_size)
    finally:
        body.close()


def is_not_found(exc: BaseException) -> bool:
    """A ClientError saying the job (or archive, or vault) is not there: for a
    job whose id was recorded, that it expired."""
    return (
        isinstance(exc, ClientError)
        and exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException"
    )

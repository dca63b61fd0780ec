"""Client-side multipart upload through boto3, as backup tools do it."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

from openglacier.treehash import MIB, combine, tree_hash
from support.kills import Step, kill_mid_requests
from support.server import LiveServer

Upload = Callable[[Any, random.Random], tuple[str, str, int]]


def multipart_upload(glacier: Any, vault: str, data: bytes, part_size: int = MIB) -> dict[str, Any]:
    """Initiate, upload every part, complete with the combined tree hash (spec 3.4)."""
    upload_id = glacier.initiate_multipart_upload(vaultName=vault, partSize=str(part_size))[
        "uploadId"
    ]
    hashes = []
    for first in range(0, len(data), part_size):
        piece = data[first : first + part_size]
        glacier.upload_multipart_part(
            vaultName=vault,
            uploadId=upload_id,
            range=f"bytes {first}-{first + len(piece) - 1}/*",
            body=piece,
        )
        hashes.append(tree_hash(piece))
    return dict(
        glacier.complete_multipart_upload(
            vaultName=vault,
            uploadId=upload_id,
            archiveSize=str(len(data)),
            checksum=combine(hashes),
        )
    )


def upload_until_killed(
    server: LiveServer, single: Upload, multipart: Upload, *, workers: int, kill_after: int
) -> list[tuple[str, str, int]]:
    """Upload from `workers` threads (even ones single, odd ones multipart) and
    SIGKILL the server once `kill_after` uploads were acknowledged, while the
    other threads are mid-request. Returns (archive id, tree hash, size) of
    every acknowledged upload."""
    acked: list[tuple[str, str, int]] = []
    lock = threading.Lock()

    def worker(seed: int) -> Step:
        rng, glacier = random.Random(seed), server.client()
        op = multipart if seed % 2 else single

        def step() -> bool:
            result = op(glacier, rng)
            with lock:
                acked.append(result)
                return len(acked) >= kill_after

        return step

    kill_mid_requests(server, [worker(i) for i in range(workers)], timeout=300)
    with lock:
        return list(acked)

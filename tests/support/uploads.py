"""Client-side multipart upload through boto3, as backup tools do it."""

from __future__ import annotations

from typing import Any

from openglacier.treehash import MIB, combine, tree_hash


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

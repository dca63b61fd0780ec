"""Test archives on disk and their precomputed hashes (so clients never hash)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from openglacier.treehash import MIB, TreeHasher, root_of_leaves

BLOCK = 8 * MIB


@dataclass(frozen=True)
class Part:
    offset: int
    size: int
    tree_hash: str
    sha256: str


@dataclass(frozen=True)
class ArchiveFile:
    path: Path
    size: int
    tree_hash: str
    sha256: str
    parts: tuple[Part, ...]  # for multipart uploads
    part_size: int


def make_archive(path: Path, size: int, part_size: int = 64 * MIB) -> ArchiveFile:
    """Write `size` incompressible bytes and hash them once, whole and per part."""
    seed = os.urandom(BLOCK)
    linear = hashlib.sha256()
    parts: list[Part] = []
    leaves = bytearray()
    with path.open("wb") as out:
        for offset in range(0, size, part_size):
            length = min(part_size, size - offset)
            part = TreeHasher()
            written = 0
            while written < length:
                # Vary each block so no two MiB leaves are equal.
                block = (offset + written).to_bytes(8, "big") + seed[
                    8 : min(BLOCK, length - written)
                ]
                out.write(block)
                part.update(block)
                linear.update(block)
                written += len(block)
            leaves += part.leaves()
            parts.append(Part(offset, length, part.hexdigest(), part.sha256_hexdigest()))
    return ArchiveFile(
        path, size, root_of_leaves(bytes(leaves)).hex(), linear.hexdigest(), tuple(parts), part_size
    )

"""Multipart upload pieces: part sizes, the parts an endpoint already holds, and
the state of one file's upload shared by the reader and the request threads."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from openglacier.transfer.errors import TransferError
from openglacier.treehash import MIB

MAX_PARTS = 10_000
MAX_PART_SIZE = 4096 * MIB
DEFAULT_PART_SIZE = 8 * MIB
_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?)(i?B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_part_size(text: str) -> int:
    """A part size such as "8MiB", "16M" or "4194304": 1 MiB times a power of two,
    at most 4 GiB (Glacier's rule). ValueError with the reason otherwise."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size (e.g. 8MiB, 64M, 1GiB)")
    size = int(match.group(1)) * _UNITS[match.group(2).upper()]
    if size < MIB or size > MAX_PART_SIZE or size % MIB or (size // MIB) & (size // MIB - 1):
        raise ValueError(f"{text!r}: a part size is 1 MiB times a power of two, at most 4 GiB")
    return size


def part_size_for(size: int, requested: int) -> int:
    """The requested part size, raised as far as Glacier's 10,000 parts need."""
    part = requested
    while part * MAX_PARTS < size:
        part *= 2
    if part > MAX_PART_SIZE:
        raise TransferError(f"{size} bytes is more than a Glacier archive can hold")
    return part


def part_count(size: int, part_size: int) -> int:
    return max(1, -(-size // part_size))


def parts_on_endpoint(
    glacier: Any, vault: str, upload_id: str, account_id: str, page_size: int | None = None
) -> tuple[int, dict[int, str]]:
    """(part size, {first byte: tree hash}) of the parts the endpoint holds for the
    upload, over every page of ListParts. ResourceNotFoundException (the upload
    expired, was aborted or completed) is the caller's to handle."""
    config = {"PageSize": page_size} if page_size else {}
    pages = glacier.get_paginator("list_parts").paginate(
        accountId=account_id, vaultName=vault, uploadId=upload_id, PaginationConfig=config
    )
    part_size, parts = 0, {}
    for page in pages:
        part_size = int(page.get("PartSizeInBytes") or part_size)
        for part in page.get("Parts", []):
            first = int(str(part["RangeInBytes"]).split("-", 1)[0])
            parts[first] = str(part["SHA256TreeHash"]).lower()
    return part_size, parts


@dataclass
class MultipartState:
    """One file's multipart upload while its parts are read and sent.

    The reader (main thread) and the request threads both report here; whoever
    makes the last report runs `finish` exactly once: completion when every
    part is on the endpoint, else the file's failure.
    """

    upload_id: str
    part_size: int
    hashes: list[str]
    finish: Callable[[MultipartState], None]
    sha256: str = ""
    error: TransferError | None = None
    reused: int = 0  # parts already on the endpoint, not sent again
    _in_flight: int = 0
    _reading: bool = True
    _finished: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sending(self) -> None:
        with self._lock:
            self._in_flight += 1

    def sent(self, error: TransferError | None = None) -> None:
        with self._lock:
            self._in_flight -= 1
            if error is not None and self.error is None:
                self.error = error
        self._maybe_finish()

    def read_all(self, sha256: str, error: TransferError | None = None) -> None:
        with self._lock:
            self._reading = False
            self.sha256 = sha256
            if error is not None and self.error is None:
                self.error = error
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        with self._lock:
            if self._reading or self._in_flight or self._finished:
                return
            self._finished = True
        self.finish(self)

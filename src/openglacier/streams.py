"""Byte iterators as readable files, for libraries that want a file (csv, boto3)."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any


class IterStream(io.RawIOBase):
    """Reads the chunks of an iterable in order; never holds more than one chunk."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def buffered(chunks: Iterable[bytes], size: int = 1 << 20) -> io.BufferedReader:
    return io.BufferedReader(IterStream(chunks), buffer_size=size)

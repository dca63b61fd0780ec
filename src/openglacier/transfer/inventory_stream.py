"""The archives of a Glacier JSON inventory, read one at a time.

An inventory of a million archives is a few hundred MB of JSON, and `json.load`
would hold all of it as Python objects; this reads the `ArchiveList` array's
objects one by one from a file, with a buffer of one read plus one archive.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

READ = 1 << 20
_KEY = '"ArchiveList"'
_DECODER = json.JSONDecoder()


class InventoryFormatError(ValueError):
    """Not a Glacier JSON inventory."""


class _Reader:
    def __init__(self, fh: IO[str], read_size: int) -> None:
        self.fh = fh
        self.read_size = read_size
        self.buf = ""
        self.pos = 0
        self.eof = False

    def more(self) -> bool:
        if self.eof:
            return False
        chunk = self.fh.read(self.read_size)
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        self.eof = not chunk
        return bool(chunk)

    def skip_space(self, extra: str = "") -> str:
        """The next character that is not whitespace (or in `extra`); '' at the end."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n" + extra:
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""


def iter_archives(fh: IO[str], read_size: int = READ) -> Iterator[dict[str, Any]]:
    reader = _Reader(fh, read_size)
    while (at := reader.buf.find(_KEY)) < 0:
        # Keep a key's length of tail: the key may straddle two reads.
        reader.pos = max(len(reader.buf) - len(_KEY), 0)
        if not reader.more():
            raise InventoryFormatError("no ArchiveList in the inventory")
    reader.pos = at + len(_KEY)
    if reader.skip_space() != ":":
        raise InventoryFormatError("ArchiveList is not followed by ':'")
    reader.pos += 1
    if reader.skip_space() != "[":
        raise InventoryFormatError("ArchiveList is not an array")
    reader.pos += 1
    while (head := reader.skip_space(",")) not in ("]", ""):
        if head != "{":
            raise InventoryFormatError(f"unexpected {head!r} in ArchiveList")
        yield _next_object(reader)
    if head != "]":
        raise InventoryFormatError("the inventory ends inside ArchiveList")


def _next_object(reader: _Reader) -> dict[str, Any]:
    while True:
        try:
            item, end = _DECODER.raw_decode(reader.buf, reader.pos)
        except json.JSONDecodeError:
            if reader.more():
                continue  # the object goes on in the next read
            raise InventoryFormatError("the inventory ends inside an archive entry") from None
        reader.pos = end
        if not isinstance(item, dict):
            raise InventoryFormatError("an ArchiveList entry is not an object")
        return item

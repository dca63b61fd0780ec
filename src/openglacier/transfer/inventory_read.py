"""An inventory job's output read as it streams, one archive at a time.

A vault of millions of archives has an inventory of gigabytes: nothing here
holds more than one read (1 MiB) and one archive. JSON goes through
transfer/inventory_stream.py's incremental ArchiveList reader; CSV is read a
line at a time (descriptions are printable ASCII, so a record is one line).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from typing import IO, Any, cast

from openglacier.transfer.inventory_stream import InventoryFormatError, iter_archives

FIELDS = ("ArchiveId", "ArchiveDescription", "CreationDate", "Size", "SHA256TreeHash")


class _ChunkText:
    """read(n) -> str over an iterator of byte chunks (UTF-8, split anywhere)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def read(self, _size: int = -1) -> str:
        for chunk in self._chunks:
            text = self._decoder.decode(chunk)
            if text:
                return text
        return self._decoder.decode(b"", final=True)


def iter_json(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """The ArchiveList entries of a JSON inventory, in order."""
    yield from iter_archives(cast(IO[str], _ChunkText(chunks)))


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Lines (without their end) of a byte stream, one chunk plus one line held."""
    rest = b""
    for chunk in chunks:
        rest += chunk
        *lines, rest = rest.split(b"\n")
        yield from lines
    if rest:
        yield rest


def _unquote(field: str) -> str:
    if len(field) >= 2 and field[0] == field[-1] == '"':
        return field[1:-1].replace('\\"', '"')
    return field


def parse_csv_line(line: str) -> dict[str, Any]:
    """One record of a CSV inventory (spec 4.6: `\\"` is a quote inside quotes,
    backslashes otherwise literal). Only the description may hold commas or
    quotes, so the id is cut at the first comma and the last three columns at
    the last three: no quoting ambiguity is left to resolve."""
    archive_id, sep, rest = line.partition(",")
    parts = rest.rsplit(",", 3)
    if not sep or len(parts) != 4:
        raise InventoryFormatError(f"not an inventory CSV record: {line[:80]!r}")
    description, date, size, tree_hash = parts
    try:
        size_value = int(_unquote(size))
    except ValueError:
        raise InventoryFormatError(f"not an inventory CSV record: {line[:80]!r}") from None
    return {
        "ArchiveId": _unquote(archive_id),
        "ArchiveDescription": _unquote(description),
        "CreationDate": _unquote(date),
        "Size": size_value,
        "SHA256TreeHash": _unquote(tree_hash),
    }


def iter_csv(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """The records of a CSV inventory (its header line skipped), in order."""
    lines = iter_lines(chunks)
    header = next(lines, b"").decode("utf-8").rstrip("\r")
    if not header.startswith("ArchiveId,"):
        raise InventoryFormatError("the CSV inventory has no header line")
    for raw in lines:
        line = raw.decode("utf-8").rstrip("\r")
        if line:
            yield parse_csv_line(line)


def iter_inventory(fmt: str, chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    return iter_csv(chunks) if fmt.upper() == "CSV" else iter_json(chunks)

"""Strict readers of inventory documents (spec 4.6): JSON with member order and
types checked, and CSV by the spec's own quoting rules (not RFC 4180)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from openglacier.domain.inventory_doc import CSV_HEADER

COLUMNS = ["ArchiveId", "ArchiveDescription", "CreationDate", "Size", "SHA256TreeHash"]
ITEM_MEMBERS = COLUMNS
Position = tuple[datetime, str]


# --- strict readers (spec 4.6) -----------------------------------------------------

_ID_RE = re.compile(r"[A-Za-z0-9_-]+")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_HASH_RE = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Parsed:
    """An inventory document read back: (id, description, date, size, hash) rows."""

    rows: list[tuple[str, str, str, int, str]]
    vault_arn: str | None = None
    inventory_date: str | None = None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-JSON constant {name}")


def _pairs(pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError(f"duplicate member in {keys}")
    return pairs


def parse_json_inventory(data: bytes) -> Parsed:
    """Strict: valid UTF-8 JSON, no duplicate members, the service's member order
    and types, dates in seconds (spec 4.6)."""
    doc = json.loads(
        data.decode("utf-8"), object_pairs_hook=_pairs, parse_constant=_reject_constant
    )
    assert isinstance(doc, list)  # the hook keeps objects as ordered pair lists
    assert [key for key, _ in doc] == ["VaultARN", "InventoryDate", "ArchiveList"]
    top = dict(doc)
    assert isinstance(top["VaultARN"], str)
    assert isinstance(top["InventoryDate"], str)
    assert _DATE_RE.fullmatch(top["InventoryDate"])
    assert isinstance(top["ArchiveList"], list)
    rows = []
    for entry in top["ArchiveList"]:
        assert [key for key, _ in entry] == ITEM_MEMBERS
        item = dict(entry)
        assert isinstance(item["ArchiveId"], str)
        assert isinstance(item["ArchiveDescription"], str)
        assert isinstance(item["CreationDate"], str)
        assert _DATE_RE.fullmatch(item["CreationDate"])
        assert type(item["Size"]) is int
        assert item["Size"] >= 0
        assert isinstance(item["SHA256TreeHash"], str)
        rows.append(tuple(item[name] for name in ITEM_MEMBERS))
    return Parsed(rows, top["VaultARN"], top["InventoryDate"])


def _quoted(text: str, pos: int, value: str) -> Iterator[tuple[str, int]]:
    """A quoted field's value from just after its opening quote.

    Inside quotes `\\"` is a quote and a backslash is otherwise literal. A
    backslash right before the closing quote (a description ending in `\\`) reads
    the same as an escaped quote, so both readings are explored; the caller keeps
    only readings that yield a well-formed record.
    """
    chunk: list[str] = []
    for index in range(pos, len(text)):
        char = text[index]
        if char == "\\" and text.startswith('"', index + 1):
            so_far = value + "".join(chunk)
            yield from _quoted(text, index + 2, so_far + '"')
            yield so_far + "\\", index + 2
            return
        if char == '"':
            yield value + "".join(chunk), index + 1
            return
        chunk.append(char)


def _field(text: str, pos: int) -> Iterator[tuple[str, int, bool]]:
    if text.startswith('"', pos):
        for value, end in _quoted(text, pos + 1, ""):
            yield value, end, True
        return
    end = pos
    while end < len(text) and text[end] not in ",\n":
        if text[end] in '"\r':
            return  # a quote (or CR) in an unquoted field is malformed
        end += 1
    yield text[pos:end], end, False


def _records(
    text: str, pos: int, fields: list[tuple[str, bool]]
) -> Iterator[tuple[list[tuple[str, bool]], int]]:
    for value, end, quoted in _field(text, pos):
        row = [*fields, (value, quoted)]
        if end < len(text) and text[end] == ",":
            yield from _records(text, end + 1, row)
        elif end == len(text):
            yield row, end
        elif text[end] == "\n":
            yield row, end + 1


def _valid_row(row: list[tuple[str, bool]]) -> bool:
    """Five columns, only ArchiveDescription quoted, the others in their alphabets."""
    if [quoted for _, quoted in row] != [False, True, False, False, False]:
        return False
    archive_id, _, date, size, tree_hash = (value for value, _ in row)
    return bool(
        _ID_RE.fullmatch(archive_id)
        and _DATE_RE.fullmatch(date)
        and _SIZE_RE.fullmatch(size)
        and _HASH_RE.fullmatch(tree_hash)
    )


def _documents(text: str, pos: int) -> Iterator[list[tuple[str, str, str, int, str]]]:
    if pos == len(text):
        yield []
        return
    for row, end in _records(text, pos, []):
        if _valid_row(row):
            values = [value for value, _ in row]
            record = (values[0], values[1], values[2], int(values[3]), values[4])
            for rest in _documents(text, end):
                yield [record, *rest]


def parse_csv_inventory(data: bytes) -> Parsed:
    """Strict reader of spec 4.6's CSV: header line, `\\n` line ends, fields quoted
    or not, `\\"` for a quote inside quotes, backslashes otherwise literal; on top,
    what this server promises: only ArchiveDescription quoted, and exactly one
    reading of the whole document."""
    text = data.decode("utf-8")
    header = CSV_HEADER + "\n"
    assert text.startswith(header) or text == CSV_HEADER
    readings = []
    for reading in _documents(text, min(len(header), len(text))):
        readings.append(reading)
        assert len(readings) == 1, f"ambiguous CSV: {readings}"
    assert readings, "malformed CSV"
    return Parsed(readings[0])


def parse_inventory(fmt: str, data: bytes) -> Parsed:
    return parse_json_inventory(data) if fmt == "JSON" else parse_csv_inventory(data)

"""Reading a JSON inventory's archives one at a time, whatever the read boundaries."""

from __future__ import annotations

import io
import json

import pytest

from openglacier.transfer.inventory_stream import InventoryFormatError, iter_archives

ARCHIVES = [
    {"ArchiveId": "a" * 138, "ArchiveDescription": "", "CreationDate": "2012-03-20T17:03:43Z",
     "Size": 2140123, "SHA256TreeHash": "0" * 64},
    {"ArchiveId": "b" * 138, "ArchiveDescription": 'tricky "ArchiveList": [{]} \\ é',
     "CreationDate": "2012-03-21T17:03:43Z", "Size": 1, "SHA256TreeHash": "1" * 64},
]  # fmt: skip


def document(archives: list[dict[str, object]], indent: int | None = None) -> str:
    return json.dumps(
        {
            "VaultARN": "arn:aws:glacier:us-east-1:123456789012:vaults/v",
            "InventoryDate": "2012-03-22T00:00:00Z",
            "ArchiveList": archives,
        },
        indent=indent,
    )


@pytest.mark.parametrize("read_size", [1, 3, 7, 64, 1 << 20])
@pytest.mark.parametrize("indent", [None, 2])
def test_every_archive_whatever_the_reads(read_size: int, indent: int | None) -> None:
    text = document(ARCHIVES, indent)
    assert list(iter_archives(io.StringIO(text), read_size)) == ARCHIVES


def test_an_empty_list() -> None:
    assert list(iter_archives(io.StringIO(document([])), 5)) == []


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        '{"ArchiveList": {}}',
        '{"ArchiveList": [1, 2]}',
        document(ARCHIVES)[:-40],
        document(ARCHIVES)[:-2],
    ],
)
def test_what_is_not_an_inventory_is_refused(text: str) -> None:
    with pytest.raises(InventoryFormatError):
        list(iter_archives(io.StringIO(text), 4))

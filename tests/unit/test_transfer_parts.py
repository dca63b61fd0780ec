"""Part sizes of the transfer client: Glacier's power-of-two and 10,000-part rules."""

from __future__ import annotations

import pytest

from openglacier.transfer.errors import TransferError
from openglacier.transfer.multipart import (
    DEFAULT_PART_SIZE,
    MAX_PART_SIZE,
    parse_part_size,
    part_count,
    part_size_for,
)
from openglacier.treehash import MIB


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1MiB", MIB),
        ("8M", 8 * MIB),
        ("16 MiB", 16 * MIB),
        ("4GiB", 4096 * MIB),
        (str(2 * MIB), 2 * MIB),
        ("1024k", MIB),
    ],
)
def test_part_sizes_are_read_in_binary_units(text: str, size: int) -> None:
    assert parse_part_size(text) == size


@pytest.mark.parametrize("text", ["3MiB", "512KiB", "8GiB", "0", "", "eight", "1.5MiB"])
def test_part_sizes_glacier_refuses_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_part_size(text)


def test_the_part_size_grows_until_10000_parts_hold_the_file() -> None:
    assert part_size_for(10, DEFAULT_PART_SIZE) == DEFAULT_PART_SIZE
    assert part_size_for(10_000 * 8 * MIB, 8 * MIB) == 8 * MIB
    assert part_size_for(10_000 * 8 * MIB + 1, 8 * MIB) == 16 * MIB
    assert part_count(10_000 * 8 * MIB + 1, 16 * MIB) <= 10_000
    with pytest.raises(TransferError, match="more than a Glacier archive"):
        part_size_for(10_000 * MAX_PART_SIZE + 1, MIB)


def test_part_counts_round_up() -> None:
    assert [part_count(n, MIB) for n in (1, MIB, MIB + 1)] == [1, 1, 2]

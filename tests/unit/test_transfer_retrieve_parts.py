"""Pieces of the retrieval client that need no server: the inventory readers
(incremental: an archive is yielded before the rest of the document exists),
the CSV record parser, range planning, the download sidecar's log, and the
retrieval commands' options (help, OPENGLACIER_* variable, exit codes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from openglacier.cli.inventory import inventory
from openglacier.cli.job import job
from openglacier.cli.retrieve import archive_get
from openglacier.transfer.download import check_range_size, plan_ranges
from openglacier.transfer.inventory_read import iter_csv, iter_json, parse_csv_line
from openglacier.transfer.sidecar import Sidecar
from openglacier.treehash import MIB

ITEMS = [
    {
        "ArchiveId": f"id{n}",
        "ArchiveDescription": d,
        "CreationDate": "2026-12-04T20:00:00Z",
        "Size": n * 1000,
        "SHA256TreeHash": "ab" * 32,
    }
    for n, d in enumerate(["plain", 'q "x", y', "back\\slash\\", "", "é"])
]


def json_document() -> bytes:
    return json.dumps(
        {"VaultARN": "arn:x", "InventoryDate": "2026-12-04T20:00:00Z", "ArchiveList": ITEMS},
        ensure_ascii=False,  # "é" split across chunks
    ).encode()


def csv_document() -> bytes:
    lines = ["ArchiveId,ArchiveDescription,CreationDate,Size,SHA256TreeHash"]
    for i in ITEMS:
        desc = str(i["ArchiveDescription"]).replace('"', '\\"')
        lines.append(
            f'{i["ArchiveId"]},"{desc}",{i["CreationDate"]},{i["Size"]},{i["SHA256TreeHash"]}'
        )
    return ("\n".join(lines) + "\n").encode()


def dribble(data: bytes, size: int, sent: list[int]) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        sent.append(start + size)
        yield data[start : start + size]


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_json_inventory_read_incrementally(chunk: int) -> None:
    data, sent = json_document(), []
    items = iter_json(dribble(data, chunk, sent))
    first = next(items)
    assert first == ITEMS[0]
    if chunk < len(data):
        assert sent[-1] < len(data)  # the first archive came before the document's end
    assert [first, *items] == ITEMS


@pytest.mark.parametrize("chunk", [1, 5, 1 << 20])
def test_csv_inventory_read_line_by_line(chunk: int) -> None:
    data, sent = csv_document(), []
    rows = iter_csv(dribble(data, chunk, sent))
    assert next(rows) == ITEMS[0]
    if chunk < len(data):
        assert sent[-1] < len(data)
    assert list(rows) == ITEMS[1:]


def test_csv_record_with_a_backslash_before_the_closing_quote() -> None:
    line = 'id,"ends with \\",2026-12-04T20:00:00Z,5,' + "cd" * 32
    assert parse_csv_line(line)["ArchiveDescription"] == "ends with \\"


def test_ranges_are_aligned_and_cover_the_output() -> None:
    assert plan_ranges(5 * MIB + 3, 2 * MIB) == [
        (0, 2 * MIB - 1),
        (2 * MIB, 4 * MIB - 1),
        (4 * MIB, 5 * MIB + 2),
    ]
    assert plan_ranges(0, MIB) == []
    for bad in (3 * MIB, MIB + 1, 0):
        with pytest.raises(ValueError, match="power of two"):
            check_range_size(bad)


def test_sidecar_ignores_a_torn_last_line(tmp_path: Path) -> None:
    dest = tmp_path / "f"
    side = Sidecar.load(dest)
    side.reset(job_id="J", size=10)
    side.add_range(0, 4, "aa")
    side.add_range(5, 9, "bb")
    with side.path.open("a") as fh:
        fh.write('{"range": [10, 1')  # a kill in the middle of a line
    again = Sidecar.load(dest)
    assert again.meta == {"job_id": "J", "size": 10}
    assert again.done == {(0, 4): "aa", (5, 9): "bb"}
    again.forget([(0, 4)])
    assert Sidecar.load(dest).done == {(5, 9): "bb"}


COMMANDS = [
    ("archive get", archive_get),
    ("job get", job.commands["get"]),
    ("job ls", job.commands["ls"]),
    ("inventory", inventory),
]


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_options_have_help_a_variable_and_exit_codes(name: str, command: click.Command) -> None:
    assert command.epilog is not None
    assert "8 job failed" in command.epilog
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts[0]}: no help text"
            assert isinstance(param.envvar, str), f"{name} {param.opts[0]}: no variable"
            assert param.envvar.startswith("OPENGLACIER_"), f"{name} {param.opts[0]}"

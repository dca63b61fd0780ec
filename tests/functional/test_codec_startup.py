"""A key file that cannot be used stops a start with one line, before anything
is created (storage/factory.py codec_config, cli/startup.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_startup_errors import assert_one_line_and_nothing_made, run_cli


@pytest.mark.parametrize("command", ["serve", "worker"])
@pytest.mark.parametrize("content", [None, b"garbage"], ids=["missing", "garbage"])
def test_an_unusable_key_file_is_one_line_and_creates_nothing(
    tmp_path: Path, command: str, content: bytes | None
) -> None:
    key_file = tmp_path / "blob.key"
    if content is not None:
        key_file.write_bytes(content)
    data = tmp_path / "data"
    result = run_cli([command, "--encryption-key-file", str(key_file)], data)
    line = assert_one_line_and_nothing_made(result, data, 1)
    assert str(key_file) in line

"""Tests remove what they create: temp files land in pytest's base directory, which
pytest removes after a passing run (a run left about 1.5 GB in the system temp dir)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest


def test_passing_tests_tmp_paths_are_removed(request: pytest.FixtureRequest) -> None:
    assert request.config.getini("tmp_path_retention_policy") == "failed"
    assert int(request.config.getini("tmp_path_retention_count")) <= 1


def test_temp_files_of_the_run_and_its_subprocesses_stay_in_the_base_dir(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    base = tmp_path_factory.getbasetemp()
    assert Path(tempfile.gettempdir()).is_relative_to(base)
    with tempfile.NamedTemporaryFile() as handle:
        assert Path(handle.name).is_relative_to(base)
    child = subprocess.run(
        [sys.executable, "-c", "import tempfile; print(tempfile.gettempdir())"],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
    )
    assert Path(child.stdout.strip()).is_relative_to(base)

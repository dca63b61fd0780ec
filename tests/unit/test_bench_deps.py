"""`make bench` installs nothing: nginx comes from the explicit `make bench-deps`
step, and the bench names what is missing and which figures it skips."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from bench.servers import missing_tools

ROOT = Path(__file__).resolve().parents[2]


def dry_run(target: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(
        ["make", "-n", "-C", str(ROOT), target], capture_output=True, text=True, check=True
    )
    return done.stdout


def test_bench_runs_no_package_manager() -> None:
    assert "apt-get" not in dry_run("bench")


def test_bench_deps_is_the_install_step() -> None:
    assert "apt-get install -y nginx-light" in dry_run("bench-deps")


def test_missing_tools_say_what_is_skipped_and_how_to_install(tmp_path: Path) -> None:
    missing = {tool.tool: str(tool) for tool in missing_tools(moto=True, path=str(tmp_path))}
    assert set(missing) == {"nginx", "moto_server"}
    assert "download ceiling" in missing["nginx"]
    assert "make bench-deps" in missing["nginx"]
    assert "moto_server comparison" in missing["moto_server"]
    assert [t.tool for t in missing_tools(moto=False, path=str(tmp_path))] == ["nginx"]

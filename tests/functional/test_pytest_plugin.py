"""The pytest plugin (openglacier.testing), as a user's project would use it.

tests/plugin_example/ is such a project: it runs here in its own pytest, with
its own pytest.ini, so none of this suite's conftest files or fixtures help it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from openglacier.config import ConfigError
from openglacier.testing import AdminError, GlacierTestServer

EXAMPLE = Path(__file__).parent.parent / "plugin_example"
PLUGIN = "openglacier.testing.pytest_plugin"
PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"


def plugin_args() -> list[str]:
    """Nothing once the package is installed with its pytest11 entry point (pytest
    loads it; naming the module again with -p would register it twice, a
    ValueError), else `-p` the module, as a source checkout must."""
    installed = [ep for ep in entry_points(group="pytest11") if ep.value == PLUGIN]
    return [] if installed else ["-p", PLUGIN]


def run_example(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = dict(env or os.environ, TMPDIR=str(temp))
    config = ["-c", str(EXAMPLE / "pytest.ini"), "--rootdir", str(EXAMPLE)]
    where = ["--basetemp", str(tmp_path / "base"), str(EXAMPLE)]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *config, *args, *where],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=240,
        check=False,
    )
    assert sorted(p.name for p in temp.iterdir()) == [], "the servers left files behind"
    return result


def test_example_project_passes_with_only_the_plugins_fixtures(tmp_path: Path) -> None:
    result = run_example(tmp_path, *plugin_args())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "9 passed" in result.stdout, result.stdout


def test_entry_point_alone_loads_the_plugin(tmp_path: Path) -> None:
    """What `pip install openglacier` gives: pytest finds the fixtures through the
    pytest11 entry point of pyproject.toml, with no -p. The entry point is
    installed here as a distribution on PYTHONPATH (this checkout's venv may not
    have been reinstalled since it was added)."""
    entry = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["entry-points"]
    dist = tmp_path / "site" / "openglacier_plugin_check-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: openglacier-plugin-check\n")
    lines = [f"{name} = {value}" for name, value in entry["pytest11"].items()]
    (dist / "entry_points.txt").write_text("[pytest11]\n" + "\n".join(lines) + "\n")
    path = os.pathsep.join(filter(None, [str(dist.parent), os.environ.get("PYTHONPATH")]))
    result = run_example(tmp_path, env=dict(os.environ, PYTHONPATH=path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "9 passed" in result.stdout, result.stdout


def test_without_the_plugin_the_fixtures_do_not_exist(tmp_path: Path) -> None:
    # Proves the run above got its fixtures from the plugin, not from anywhere else.
    env_off = ["-p", f"no:{PLUGIN}", "-p", "no:openglacier"]
    result = run_example(tmp_path, *env_off, "-k", "fresh_server")
    assert result.returncode != 0
    assert "fixture 'glacier_client' not found" in result.stdout, result.stdout


def test_entry_point_names_the_plugin_module() -> None:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    assert project["entry-points"]["pytest11"] == {"openglacier": PLUGIN}


def test_importing_the_plugin_imports_no_server_or_client() -> None:
    code = (
        f"import sys, pytest, {PLUGIN}, openglacier.testing as t; t.__all__; "
        "heavy = {'boto3', 'botocore', 'starlette', 'uvicorn', 'sqlalchemy', 'httpx'};"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_stop_removes_every_file_and_frees_the_port() -> None:
    server = GlacierTestServer().start()
    root = server.data_dir.parent
    server.client().create_vault(vaultName="v")
    assert any(root.rglob("*"))
    port = server.port
    server.stop()
    server.stop()  # twice is harmless
    assert not root.exists()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # nothing listens there any more


def test_admin_errors_are_raised_with_the_servers_answer() -> None:
    with GlacierTestServer() as server, pytest.raises(AdminError, match="404"):
        server.complete_job("no-such-job")


def test_system_clock_server_refuses_to_advance() -> None:
    with (
        GlacierTestServer(clock="system", timing="instant") as server,
        pytest.raises(AdminError, match="clock = manual"),
    ):
        server.advance(hours=1)


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"timng": "instant"}, "unknown setting"), ({"timing": "slow"}, "timing")],
)
def test_bad_settings_are_refused_and_leave_nothing(
    settings: dict[str, str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(ConfigError, match=message):
        GlacierTestServer(**settings).start()
    assert list(tmp_path.iterdir()) == []

"""Suite-wide fixtures."""

from __future__ import annotations

import contextlib
import getpass
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from support.seaweed import seaweed_store  # noqa: F401 - one SeaweedFS per session
from support.services import pg_admin_url, probe_pg

# A user's project for the pytest plugin, run in its own pytest by
# functional/test_pytest_plugin.py: not part of this suite's collection.
collect_ignore = ["plugin_example"]

SYSTEM_TMP = Path(tempfile.gettempdir())
_tmp_before: set[str] = set()


@pytest.fixture(scope="session")
def pg_admin() -> URL:
    """The PostgreSQL server's admin URL; skips (fails in CI) when it is unreachable."""
    return probe_pg(pg_admin_url())


@pytest.fixture(scope="session", autouse=True)
def session_tmpdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every temp file of the run, ours or a subprocess's, inside pytest's base dir.

    Servers, the AWS CLI, node, moto and SeaweedFS write temp files of their own
    (glog, caches, sockets). With TMPDIR pointing here they land in the session's
    base directory, which pytest removes after a passing run
    (`tmp_path_retention_policy = "failed"` in pyproject.toml), instead of piling
    up in the system temp dir.
    """
    path = tmp_path_factory.mktemp("tmp", numbered=False)
    saved_env, saved_tempdir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = str(path)
    tempfile.tempdir = str(path)
    try:
        yield path
    finally:
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env


def pytest_sessionstart(session: pytest.Session) -> None:
    _tmp_before.update(_entries(SYSTEM_TMP))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name what appeared in the system temp dir during the run (outside pytest's
    own directory). Other processes on the machine may add entries too, so this
    reports rather than fails."""
    left = sorted(_entries(SYSTEM_TMP) - _tmp_before - {f"pytest-of-{getpass.getuser()}"})
    if left:
        terminalreporter.write_line(
            f"new in {SYSTEM_TMP} during this run (from tests, or other processes): "
            + ", ".join(left[:20])
            + (" ..." if len(left) > 20 else "")
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    """After a passing run pytest has removed its numbered base dir but keeps
    the per-user root it was made in; remove that too when it is empty (a
    failed run's directories are kept for reading, and keep it)."""
    if _tmp_before and f"pytest-of-{getpass.getuser()}" not in _tmp_before:
        with contextlib.suppress(OSError):
            (SYSTEM_TMP / f"pytest-of-{getpass.getuser()}").rmdir()


def _entries(directory: Path) -> set[str]:
    try:
        return {entry.name for entry in directory.iterdir()}
    except OSError:
        return set()

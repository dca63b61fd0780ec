"""kill -9 during uploads and multipart completes: nothing acknowledged is lost and
nothing partial becomes visible (design principle 3, issue 2 acceptance)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.crash import check_recovered, crash_and_restart
from support.server import LiveServer

pytestmark = pytest.mark.slow
KILL_AFTER = 24  # acknowledged operations before the kill
WORKERS = 6


def server_for(data_dir: Path, port: int | None) -> LiveServer:
    return LiveServer(data_dir) if port is None else LiveServer(data_dir, port=port)


def test_sigkill_loses_no_acknowledged_archive(tmp_path: Path) -> None:
    crash = crash_and_restart(server_for, tmp_path / "data", workers=WORKERS, kill_after=KILL_AFTER)
    try:
        check_recovered(crash)
    finally:
        crash.restarted.stop()

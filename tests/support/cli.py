"""Driving the `openglacier` command line from tests."""

from __future__ import annotations

import signal
import subprocess
import sys


def kill_after_lines(args: list[str], env: dict[str, str], marker: str, count: int) -> bool:
    """Run `openglacier ARGS`, SIGKILL it once `count` lines of its stderr hold
    `marker` (a debug line per blob done); True if it was killed, False if it
    finished first."""
    process = subprocess.Popen(
        [sys.executable, "-m", "openglacier", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    seen = 0
    for line in process.stderr:
        seen += marker in line
        if seen == count:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(30)
    process.stderr.close()
    return process.returncode == -signal.SIGKILL

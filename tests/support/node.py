"""Node.js for functional tests that drive the AWS SDK for JavaScript v3.

The packages are pinned by `tests/functional/js/package-lock.json` and installed by
the test run itself (`npm ci`) when `node_modules` is missing. Without node or npm,
or without the registry, the tests skip on a laptop and fail in CI (design 6).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from support.services import require_or_skip

JS_DIR = Path(__file__).resolve().parent.parent / "functional" / "js"
NPM_TIMEOUT = 300


def require_node() -> str:
    """The node executable, after making sure the JS packages are installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        require_or_skip("node and npm are needed for the JavaScript SDK tests (not on PATH)")
    if not (JS_DIR / "node_modules" / "@aws-sdk" / "client-glacier").is_dir():
        install(npm)
    return node


def install(npm: str) -> None:
    lock = (JS_DIR / "package-lock.json").is_file()
    command = [npm, "ci" if lock else "install", "--no-audit", "--no-fund", "--loglevel=error"]
    try:
        proc = subprocess.run(
            command,
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        require_or_skip(f"`{' '.join(command[:2])}` in {JS_DIR} took over {NPM_TIMEOUT}s")
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        require_or_skip(f"`{' '.join(command[:2])}` in {JS_DIR} failed:\n{tail}")


def run_script(node: str, script: str, env: dict[str, str], timeout: float = 120) -> dict[str, Any]:
    """Run a script from the JS directory; its stdout is one JSON document."""
    proc = subprocess.run(
        [node, script],
        cwd=JS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"node {script} failed:\n{proc.stderr}\n{proc.stdout}"
    return dict(json.loads(proc.stdout))

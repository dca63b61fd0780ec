"""Uploads stream with constant memory: the server's peak RSS must not grow with the
archive size (issue 2: a 4 GiB archive must never be held in memory)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from openglacier.treehash import MIB, TreeHasher
from support.server import LiveServer

pytestmark = pytest.mark.slow
SIZE = 512 * MIB
BUDGET = 96 * MIB  # allowed growth of peak RSS: a few pipeline buffers and the rest


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def test_large_upload_keeps_server_memory_flat(tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    hasher = TreeHasher()
    block = os.urandom(MIB)
    with source.open("wb") as fh:
        for i in range(SIZE // MIB):
            chunk = block[i % 7 :] + block[: i % 7]  # distinct leaves, cheap to make
            fh.write(chunk)
            hasher.update(chunk)
    server = LiveServer(tmp_path / "data").start()
    try:
        assert server.process is not None
        glacier = server.client()
        glacier.create_vault(vaultName="big")
        glacier.upload_archive(vaultName="big", body=b"warm-up")
        before = peak_rss(server.process.pid)
        with source.open("rb") as body:
            resp = glacier.upload_archive(vaultName="big", body=body)
        after = peak_rss(server.process.pid)
        assert resp["checksum"] == hasher.hexdigest()
        assert after - before < BUDGET, f"peak RSS grew by {(after - before) // MIB} MiB"
    finally:
        server.stop()
        # 1 GiB of archive and blob: gone at once, even when the test failed (the
        # server log, kept beside the data dir, is what a failure needs).
        source.unlink(missing_ok=True)
        shutil.rmtree(tmp_path / "data", ignore_errors=True)

"""A real OpenGlacier server process on 127.0.0.1, for functional tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from openglacier.testing.ports import free_port

ACCESS_KEY = "OGAKTESTTESTTESTTEST"
SECRET_KEY = "test-secret-key-0123456789abcdefghijklmn"
ACCOUNT_ID = "123456789012"
ADMIN_TOKEN = "test-admin-token"
REGION = "us-east-1"


@dataclass
class LiveServer:
    data_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    # stderr (the log lines) to a file of its own, stdout (the banner) to log_path.
    separate_stderr: bool = False
    err_path: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            OPENGLACIER_DATA_DIR=str(self.data_dir),
            OPENGLACIER_PORT=str(self.port),
            OPENGLACIER_HOST="127.0.0.1",
            OPENGLACIER_ACCESS_KEY_ID=ACCESS_KEY,
            OPENGLACIER_SECRET_ACCESS_KEY=SECRET_KEY,
            OPENGLACIER_ACCOUNT_ID=ACCOUNT_ID,
            OPENGLACIER_ADMIN_TOKEN=ADMIN_TOKEN,
            OPENGLACIER_REGION=REGION,
            OPENGLACIER_LOG_LEVEL="warning",
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 30.0) -> LiveServer:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        if self.separate_stderr:
            self.err_path = self.data_dir.parent / f"server-{self.port}.err"
        with contextlib.ExitStack() as files:  # the child keeps its own descriptors
            log = files.enter_context(self.log_path.open("ab"))
            err = files.enter_context(self.err_path.open("ab")) if self.err_path else None
            self.process = subprocess.Popen(
                [sys.executable, "-m", "openglacier", "serve"],
                env=self.env(),
                stdout=log,
                stderr=err or subprocess.STDOUT,
            )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(self.endpoint + "/_admin/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling a process start-up, not waiting for a job
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        """stdout and stderr (stderr after stdout when they go to separate files)."""
        out = self.log_path.read_text(errors="replace") if self.log_path else ""
        return out + self.stderr()

    def stderr(self) -> str:
        """stderr, when `separate_stderr` (else it is in log())."""
        return self.err_path.read_text(errors="replace") if self.err_path else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flushing — a crash."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            self.process = None

    def _session_args(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint,
            "region_name": REGION,
            "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": SECRET_KEY,
        }

    def client(self, **config: Any) -> Any:
        # One attempt: a retry would hide the first answer, which is what tests check.
        retries = Config(retries={"max_attempts": 1}, **config)
        return boto3.client("glacier", config=retries, **self._session_args())

    def resource(self) -> Any:
        return boto3.resource("glacier", **self._session_args())

    def admin(self, method: str, path: str, json: Any = None) -> httpx.Response:
        return httpx.request(
            method,
            self.endpoint + "/_admin" + path,
            json=json,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=60,
        )

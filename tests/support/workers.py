"""`openglacier worker` processes for functional tests, and the PostgreSQL view of them.

A WorkerProcess names its database sessions (`application_name` in the metadata
URL), so a test can tell from `pg_stat_activity` what each worker is doing, and
its job runners' lease owners contain its pid (`runner:HOST:PID:RANDOM`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from support.server import REGION


def poll(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait for a process or database condition, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)  # polling a condition, not waiting for a job


def named_url(url: str, application_name: str) -> str:
    """`url` whose sessions show as `application_name` in pg_stat_activity."""
    named = make_url(url).update_query_dict({"application_name": application_name})
    return named.render_as_string(hide_password=False)


@dataclass
class WorkerProcess:
    name: str
    data_dir: Path
    metadata_url: str  # PostgreSQL; sessions are tagged with `name`
    blob_url: str
    runners: int = 2
    lease_seconds: float = 2.0
    poll_seconds: float = 0.1
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def owner_pattern(self) -> str:
        """SQL LIKE pattern matching the lease owners of this process's runners."""
        return f"runner:%:{self.pid}:%"

    def env(self) -> dict[str, str]:
        config = self.data_dir / "worker.toml"
        # job_poll_seconds has no flag or variable; only the config file sets it.
        config.write_text(f"job_poll_seconds = {self.poll_seconds}\n", encoding="utf-8")
        env = dict(os.environ)
        env.update(
            OPENGLACIER_CONFIG=str(config),
            OPENGLACIER_DATA_DIR=str(self.data_dir),
            OPENGLACIER_METADATA_URL=named_url(self.metadata_url, self.name),
            OPENGLACIER_BLOB_URL=self.blob_url,
            OPENGLACIER_REGION=REGION,
            OPENGLACIER_JOB_WORKERS=str(self.runners),
            OPENGLACIER_JOB_LEASE_SECONDS=str(self.lease_seconds),
            OPENGLACIER_LOG_LEVEL="warning",
        )
        env.update(self.extra_env)
        return env

    def start(self) -> WorkerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / f"{self.name}.log"
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "openglacier", "worker"],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """The banner is printed once storage is open (migrated, temp files swept)."""

        def ready() -> bool:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited:\n{self.log()}")
            return " worker" in self.log() and "runner(s) on" in self.log()

        poll(ready, f"worker {self.name} to start", timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pause(self) -> None:
        """SIGSTOP: the process keeps its connections and leases but does nothing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, nothing finished — a crash."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.resume()  # a stopped process would not act on SIGINT
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def sessions(conn: Connection, worker: WorkerProcess) -> list[tuple[str, str | None]]:
    """(state, wait_event_type) of each database session the worker has open."""
    rows = conn.execute(
        text(
            "SELECT state, wait_event_type FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = :name"
        ),
        {"name": worker.name},
    )
    return [(str(r.state), r.wait_event_type) for r in rows]


def waiting_on_locks(conn: Connection, worker: WorkerProcess) -> int:
    return sum(1 for state, wait in sessions(conn, worker) if state == "active" and wait == "Lock")


def quiescent(conn: Connection, worker: WorkerProcess) -> bool:
    """Every session is idle outside a transaction or waiting on a lock: a
    stopped worker in this state holds no row locks another worker could need."""
    return all(
        state == "idle" or (state == "active" and wait == "Lock")
        for state, wait in sessions(conn, worker)
    )


def held_jobs(conn: Connection, worker: WorkerProcess) -> dict[str, str]:
    """job id -> action of the in-progress jobs leased to the worker's runners."""
    rows = conn.execute(
        text(
            "SELECT job_id, action FROM jobs "
            "WHERE status = 'InProgress' AND lease_owner LIKE :owner"
        ),
        {"owner": worker.owner_pattern},
    )
    return {str(r.job_id): str(r.action) for r in rows}

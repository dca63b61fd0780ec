"""Start and stop the servers a benchmark compares, all on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.wire import Endpoint
from openglacier.testing.ports import free_port

ACCESS_KEY = "OGAKBENCHBENCHBENCHB"
SECRET_KEY = "bench-secret-0123456789abcdefghijklmnopq"
ACCOUNT_ID = "123456789012"


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)  # waiting for a process to start listening
    raise RuntimeError(f"nothing listening on {port} after {timeout}s")


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    endpoint: Endpoint
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_mb(self) -> float:
        return _status_kb(self.pid, "VmRSS") / 1024

    def reset_peak(self) -> None:
        """Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def peak_mb(self) -> float:
        return _status_kb(self.pid, "VmHWM") / 1024

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server and its child processes."""
        return sum(_cpu_seconds(pid) for pid in [self.pid, *_children(self.pid)])

    def settle(
        self, *, busy_share: float = 0.05, window: float = 1.0, timeout: float = 180.0
    ) -> float:
        """Wait until the server uses under `busy_share` of a core over `window` seconds;
        the seconds waited (`timeout` if it never settled).

        A server can keep working after its clients stop (OpenGlacier's runner
        completing jobs that InitiateJob queued), and that work must not be
        counted against the next server measured on the same cores.
        """
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            before = self.cpu_seconds()
            time.sleep(window)  # sampling CPU use over the window
            if self.cpu_seconds() - before < busy_share * window:
                break
        return time.monotonic() - began

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0  # exited meanwhile
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("PPid:"):
                if int(line.split()[1]) == pid:
                    found.append(int(entry.name))
                break
    return found


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def start_openglacier(
    data_dir: Path,
    metadata_url: str | None = None,
    processes: int = 1,
    *,
    env_extra: dict[str, str] | None = None,
    name: str | None = None,
) -> Server:
    """`env_extra`: more OPENGLACIER_* settings (e.g. an s3+http blob URL and its keys)."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        OPENGLACIER_DATA_DIR=str(data_dir),
        OPENGLACIER_HOST="127.0.0.1",
        OPENGLACIER_PORT=str(port),
        OPENGLACIER_ACCESS_KEY_ID=ACCESS_KEY,
        OPENGLACIER_SECRET_ACCESS_KEY=SECRET_KEY,
        OPENGLACIER_ACCOUNT_ID=ACCOUNT_ID,
        OPENGLACIER_TIMING="instant",
        OPENGLACIER_LOG_LEVEL="warning",
        OPENGLACIER_INVENTORY_BEFORE_FIRST="empty",
        OPENGLACIER_PROCESSES=str(processes),
    )
    if metadata_url:
        env["OPENGLACIER_METADATA_URL"] = metadata_url
    env.update(env_extra or {})
    log = data_dir.parent / f"openglacier-{port}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "openglacier", "serve"], env=env, stdout=out, stderr=out
        )
    wait_for_port(port, proc)
    name = name or ("openglacier" if processes == 1 else f"openglacier x{processes}")
    return Server(name, proc, Endpoint("127.0.0.1", port, ACCESS_KEY, SECRET_KEY), log)


def stored_codecs(data_dir: Path) -> set[int]:
    """The codec ids of the blobs a filesystem-backed server stored (byte 5 of
    each blob file's header, storage/blobs/format.py)."""
    codecs = set()
    for path in (data_dir / "blobs" / "objects").rglob("*"):
        if path.is_file():
            with path.open("rb") as f:
                header = f.read(6)
            if len(header) == 6 and header[:4] == b"OGLB":
                codecs.add(header[5])
    return codecs


@dataclass(frozen=True)
class MissingTool:
    """A tool the bench compares against that is not installed, and what that costs."""

    tool: str
    install: str
    skipped: str

    def __str__(self) -> str:
        return f"{self.tool} is not installed: {self.skipped} skipped (install: {self.install})"


def missing_tools(*, moto: bool, path: str | None = None) -> list[MissingTool]:
    """What the bench cannot run here. It installs nothing itself: installing
    system packages is the explicit `make bench-deps` step (docs/performance.md).
    `path` replaces $PATH (and the usual sbin location) when given."""
    missing = []
    if nginx_binary(path) is None:
        missing.append(
            MissingTool(
                "nginx",
                "make bench-deps, which runs apt-get install nginx-light as root",
                "the download ceiling (limits: nginx static file) and scenario 3's targets",
            )
        )
    if moto and moto_binary(path) is None:
        missing.append(
            MissingTool(
                "moto_server",
                "pip install -e '.[test]' (make bench does it), or run with --no-moto",
                "every moto_server comparison (scenario 7 and the moto notes)",
            )
        )
    return missing


def moto_binary(path: str | None = None) -> str | None:
    # The venv's own script first: `python -m bench` may run without an activated venv.
    if path is None:
        beside = shutil.which("moto_server", path=os.path.dirname(sys.executable))
        return beside or shutil.which("moto_server")
    return shutil.which("moto_server", path=path)


def start_moto(work: Path) -> Server:
    port = free_port()
    exe = moto_binary() or "moto_server"
    log = work / f"moto-{port}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out)
    wait_for_port(port, proc)
    return Server("moto_server", proc, Endpoint("127.0.0.1", port, "bench", "bench"), log)


NGINX_CONF = """
daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    fastcgi_temp_path {work}/nginx-fastcgi;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def nginx_binary(path: str | None = None) -> str | None:
    if path is not None:
        return shutil.which("nginx", path=path)
    # Debian puts it in /usr/sbin, which a non-root $PATH often lacks.
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")


def start_nginx(work: Path, root: Path) -> Server | None:
    """nginx serving `root` statically (Debian's package); None if it is not installed."""
    exe = nginx_binary()
    if exe is None:
        return None
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=work, port=port, root=root))
    log = work / "nginx.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [exe, "-c", str(conf), "-e", str(work / "nginx-error.log")], stdout=out, stderr=out
        )
    wait_for_port(port, proc)
    return Server("nginx", proc, Endpoint("127.0.0.1", port, sign=False), log)

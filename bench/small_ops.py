"""Scenario 4: small operations at 16 connections, one API process and one per
core (`serve --processes N`), against moto_server (which keeps its state in one
process's memory and cannot run several)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.exc import SQLAlchemyError

from bench import scenarios as sc
from bench.cpu import CpuMeter
from bench.data import make_archive
from bench.report import Report
from bench.servers import Server, start_openglacier
from bench.wire import LoadResult
from openglacier.testing.postgres import PG_URL_ENV, pg_admin_url, scratch_database


@dataclass
class SmallOps:
    seconds: float  # per load run
    runs: int
    work: Path
    report: Report

    # --- scenario 4 --------------------------------------------------------------------------
    def __call__(
        self,
        og: Server,
        moto: Server | None,
        start: Callable[[Callable[[], Server]], Server],
        step: Callable[[str], None],
    ) -> None:
        """One process (the default), then one process per core (`--processes`):
        API processes share nothing but the store, as separate nodes would.
        moto_server keeps its state in one process's memory and cannot do that.
        The targets use the per-core configuration; the note gives the other."""
        cores = os.cpu_count() or 1
        step(f"scenario 4: small operations at 16 connections (1 and {cores} processes)")
        multi = start(lambda: start_openglacier(self.work / "og-multi", processes=cores))
        rates: dict[str, dict[str, float]] = {}
        for server in [s for s in (og, multi, moto) if s is not None]:
            rates[server.name] = self.small_on(server)
            waited = server.settle()
            if waited > 2:
                self.report.notes.append(
                    f"{server.name} kept working {waited:.0f} s after its scenario 4 load "
                    "(jobs it had queued); the next server was measured after that"
                )
        multi.stop()
        for op, many in rates[multi.name].items():
            self.report.target(
                "4",
                f"{op}: {cores} processes / 1 process",
                many / rates[og.name][op],
                1.6,
                unit="x",
            )
        if moto:
            for op, ours in rates[multi.name].items():
                theirs = rates["moto_server"][op]
                self.report.target(
                    "4", f"{op}: OpenGlacier / moto_server req/s", ours / theirs, 10, unit="x"
                )
                single = rates[og.name][op] / theirs
                self.report.notes.append(
                    f"{op}: one OpenGlacier process gives {single:.2f}x moto_server, "
                    f"{cores} give {ours / theirs:.2f}x"
                )
        self.pairs_on_postgres(step)

    def small_on(self, server: Server) -> dict[str, float]:
        endpoint = server.endpoint
        sc.create_vault(endpoint, "small")
        small = make_archive(self.work / "small.bin", 4096)
        archive_id, _ = sc.upload_archive(endpoint, small, vault="small")
        for _ in range(60):
            sc.initiate_job(
                endpoint, {"Type": "archive-retrieval", "ArchiveId": archive_id}, vault="small"
            )
        ops = [
            sc.SmallOp("DescribeVault", "GET", sc.vault_path("small"), 200),
            sc.SmallOp("ListJobs (50)", "GET", sc.vault_path("small") + "/jobs?limit=50", 200),
        ]
        rates: dict[str, float] = {}
        for op in ops:
            runs = [sc.load(endpoint, op, 16, self.seconds) for _ in range(self.runs)]
            rates[op.name] = self.record_load(server, op.name, runs)
        rates["InitiateJob+DescribeJob"] = self.pairs_on(server, archive_id)
        return rates

    def pairs_on(self, server: Server, archive_id: str) -> float:
        """The pairs' rate; where the CPU went meanwhile in a note (on SQLite
        the writers of all processes queue on one lock, so the cores need
        not be full; PostgreSQL's server shows as "rest")."""
        meter = CpuMeter([server])
        runs = []
        for _ in range(self.runs):
            with meter:
                runs.append(
                    sc.job_pairs(server.endpoint, archive_id, 16, self.seconds, vault="small")
                )
        self.report.notes.append(meter.note("4", f"InitiateJob+DescribeJob on {server.name}"))
        return self.record_load(server, "InitiateJob+DescribeJob", runs)

    def pairs_on_postgres(self, step: Callable[[str], None]) -> None:
        """InitiateJob+DescribeJob on 1 and N processes with the metadata in
        PostgreSQL: on SQLite every process's writes queue on one writer, so
        the ratio there says nothing about processes. A fresh database each."""
        cores = os.cpu_count() or 1
        # The test suite's server and variable: one setting serves both.
        admin = pg_admin_url()
        probe = create_engine(admin, connect_args={"connect_timeout": 3})
        try:
            with probe.connect():
                pass
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().partition("\n")[0]
            self.report.notes.append(f"scenario 4 on PostgreSQL skipped ({PG_URL_ENV}): {reason}")
            return
        finally:
            probe.dispose()
        step(f"scenario 4: InitiateJob+DescribeJob on PostgreSQL (1 and {cores} processes)")
        small = make_archive(self.work / "small-pg.bin", 4096)
        rates: dict[int, float] = {}
        for processes in dict.fromkeys((1, cores)):
            name = "openglacier on PostgreSQL" + (f" x{processes}" if processes > 1 else "")
            with scratch_database(admin, prefix="og_bench") as url:
                server = start_openglacier(
                    self.work / f"og-pg-{processes}", url, processes, name=name
                )
                try:
                    sc.create_vault(server.endpoint, "small")
                    archive_id, _ = sc.upload_archive(server.endpoint, small, vault="small")
                    rates[processes] = self.pairs_on(server, archive_id)
                finally:
                    server.stop()
        self.report.target(
            "4",
            f"InitiateJob+DescribeJob on PostgreSQL: {cores} processes / 1 process",
            rates[cores] / rates[1],
            1.6,
            unit="x",
        )

    def record_load(self, server: Server, name: str, runs: list[LoadResult]) -> float:
        r = self.report
        who = server.name
        rate = r.add("4", f"{name} ({who})", "req/s", [x.rate for x in runs])
        latencies = sorted(v for x in runs for v in x.latencies)
        errors = sum(x.errors for x in runs)
        if latencies:
            r.add("4", f"{name} ({who}) p50", "ms", [latencies[len(latencies) // 2] * 1000])
            r.add("4", f"{name} ({who}) p99", "ms", [latencies[int(len(latencies) * 0.99)] * 1000])
        if errors:
            r.notes.append(f"{name} on {who}: {errors} unexpected statuses")
        return rate.median

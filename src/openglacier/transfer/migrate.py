"""`openglacier migrate`: copy a Glacier vault to another endpoint (docs/migration.md).

One pass of the loop: list the source's jobs; settle the archives whose
retrieval job finished (failed -> reported; gone, i.e. expired before its output
was downloaded -> asked for again); initiate retrievals for pending archives as
far as the daily byte budget and the cap on outstanding jobs allow (adopting a
job the source already has for that archive, so a kill between InitiateJob and
recording its id costs no second retrieval); then download every finished
output (tree hash verified) and write it to the destination, `parallel` at a
time. Every step is recorded in the state file (migrate_state.py) as soon as
it is done. Between passes with nothing to do, it waits `poll_interval`.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import httpx
from botocore.exceptions import ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from openglacier.transfer.download import download_job_output
from openglacier.transfer.inventory_stream import InventoryFormatError, iter_archives
from openglacier.transfer.migrate_dest import Destination, WriteRefused
from openglacier.transfer.migrate_state import (
    DONE,
    DOWNLOADED,
    FAILED,
    PENDING,
    REQUESTED,
    SKIPPED,
    Entry,
    MigrationState,
)
from openglacier.treehash import MIB

TIERS = ("Bulk", "Standard", "Expedited")
# InitiateJob refusals that pass: the next pass asks again.
WAIT_CODES = frozenset(
    {"PolicyEnforcedException", "InsufficientCapacityException", "ThrottlingException"}
)


class MigrationError(Exception):
    """The migration cannot go on (one line); the state file keeps what was done."""


class Events(Protocol):
    """What the command line shows: one call per step, and bytes as they arrive."""

    def begin(self, archives: int, size: int) -> None:
        """What is left to move: archives and bytes."""

    def step(self, kind: str, entry: Entry | None, detail: str = "") -> None: ...

    def transferred(self, count: int) -> None: ...


@dataclass(frozen=True)
class Options:
    tier: str = "Bulk"
    max_bytes_per_day: int | None = None  # None: no budget
    parallel: int = 4
    max_jobs: int = 100  # retrieval jobs outstanding at once
    poll_interval: float = 60.0
    part_size: int = 64 * MIB
    retry_failed: bool = False


@dataclass
class Report:
    archives: int = 0
    migrated: int = 0
    migrated_bytes: int = 0
    skipped: int = 0
    skipped_bytes: int = 0
    failed: list[Entry] = field(default_factory=list)
    not_migrated: list[Entry] = field(default_factory=list)  # failed, or left pending
    seconds: float = 0.0


@dataclass
class Source:
    client: Any
    account_id: str
    vault: str


class Migration:
    def __init__(
        self,
        source: Source,
        destination: Destination,
        state: MigrationState,
        work_dir: Path,
        *,
        options: Options,
        events: Events,
        mapping: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.destination = destination
        self.state = state
        self.work_dir = work_dir
        self.options = options
        self.events = events
        self.mapping = mapping
        self.clock = clock

    # --- the whole run ----------------------------------------------------------------------
    def run(self, existing: dict[str, str] | None = None) -> Report:
        """`existing`: id -> tree hash already at the destination (admin import only)."""
        started = time.monotonic()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if not self.state.loaded:
            self._load_inventory()
        if self.options.retry_failed:
            self.state.retry_failed()
        self._sweep_work_dir()
        if existing:
            self._skip_existing(existing)
        self.events.begin(*self.state.count(PENDING, REQUESTED, DOWNLOADED))
        while self._pass():
            pass
        self._write_mapping()
        return self._report(time.monotonic() - started)

    def _pass(self) -> bool:
        """One pass; False once nothing is left to do."""
        jobs = self._list_jobs()
        ready = self._settle(jobs)
        self._initiate(jobs)
        ready += self.state.entries(DOWNLOADED)
        if ready:
            self._transfer(ready)
            self._write_mapping()
            return True
        if self.state.count(PENDING, REQUESTED)[0] == 0:
            return False
        time.sleep(self._pause())
        return True

    # --- the source inventory ---------------------------------------------------------------
    def _load_inventory(self) -> None:
        path = self.work_dir / "inventory.json"
        while not path.exists():
            job_id = self.state.get("inventory.job")
            if job_id is None:
                job_id = self._initiate_job({"Type": "inventory-retrieval", "Format": "JSON"})
                self.state.put("inventory.job", job_id)
                self.events.step("inventory-requested", None, job_id)
            status = self._describe(job_id)
            if status is None:  # expired (or never existed): ask again
                self.state.put("inventory.job", None)
            elif status["StatusCode"] == "Failed":
                self.state.put("inventory.job", None)
                raise MigrationError(f"the inventory job failed: {status.get('StatusMessage')}")
            elif status["StatusCode"] == "Succeeded":
                self._fetch(job_id, path)
            else:
                time.sleep(self.options.poll_interval)
        try:
            with path.open(encoding="utf-8") as fh:
                count = self.state.load(_inventory_entries(iter_archives(fh)))
        except (InventoryFormatError, KeyError, ValueError) as exc:
            path.unlink()  # fetched again next time
            raise MigrationError(f"the source inventory cannot be read: {exc}") from exc
        self.events.step("inventory", None, f"{count} archives in the source inventory")
        path.unlink()

    def _sweep_work_dir(self) -> None:
        """Drop the files of archives that are finished: a kill between recording an
        archive done and deleting its file leaves one."""
        for path in self.work_dir.iterdir():
            # FILE, FILE.part and the download's FILE.part.state: ids hold no dot.
            state = self.state.state_of(path.name.split(".", 1)[0])
            if state in (DONE, SKIPPED, FAILED):
                path.unlink(missing_ok=True)

    def _fetch(self, job_id: str, path: Path) -> None:
        part = path.with_name(path.name + ".part")
        resp = self.source.client.get_job_output(
            accountId=self.source.account_id, vaultName=self.source.vault, jobId=job_id
        )
        with part.open("wb") as fh:
            for chunk in resp["body"].iter_chunks(MIB):
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        part.rename(path)

    def _skip_existing(self, existing: dict[str, str]) -> None:
        """Archives the destination already holds are neither retrieved nor sent (a
        downloaded one too: a run killed after its import but before recording it)."""
        for entry in self.state.entries(PENDING, REQUESTED, DOWNLOADED):
            there = existing.get(entry.archive_id)
            if there is not None:
                (self.work_dir / entry.archive_id).unlink(missing_ok=True)
            if there == entry.tree_hash:
                self.state.set_state(entry.archive_id, SKIPPED, reason="already at the destination")
                self.events.step("skipped", entry, "already at the destination")
            elif there is not None:
                reason = f"the destination holds this id with another tree hash ({there})"
                self.state.set_state(entry.archive_id, FAILED, reason=reason)
                self.events.step("failed", entry, reason)

    # --- jobs -------------------------------------------------------------------------------
    def _list_jobs(self) -> dict[str, dict[str, Any]]:
        jobs: dict[str, dict[str, Any]] = {}
        marker = None
        while True:
            kwargs = {"accountId": self.source.account_id, "vaultName": self.source.vault}
            page = self._call(self.source.client.list_jobs, **kwargs, **_marker(marker))
            jobs.update((j["JobId"], j) for j in page.get("JobList", []))
            marker = page.get("Marker")
            if not marker:
                return jobs

    def _settle(self, jobs: dict[str, dict[str, Any]]) -> list[Entry]:
        """Requested archives whose job finished: ready ones are returned."""
        ready = []
        for entry in self.state.entries(REQUESTED):
            job = jobs.get(entry.job_id or "")
            if job is None:
                self.state.set_state(entry.archive_id, PENDING)
                self.events.step("expired", entry, f"job {entry.job_id} is gone; asking again")
            elif job["StatusCode"] == "Failed":
                reason = f"retrieval job failed: {job.get('StatusMessage')}"
                self.state.set_state(entry.archive_id, FAILED, job_id=entry.job_id, reason=reason)
                self.events.step("failed", entry, reason)
            elif job["StatusCode"] == "Succeeded":
                ready.append(entry)
        return ready

    def _initiate(self, jobs: dict[str, dict[str, Any]]) -> None:
        adoptable = _adoptable(jobs)
        outstanding = self.state.count(REQUESTED)[0]
        room = self.options.max_jobs - outstanding
        # Only as many as may be asked for: a vault may hold millions of archives.
        for entry in self.state.entries(PENDING, limit=max(room, 0)):
            if outstanding >= self.options.max_jobs:
                return
            adopted = adoptable.get((entry.archive_id, entry.size))
            if adopted is not None:
                self.state.set_state(entry.archive_id, REQUESTED, job_id=adopted)
                self.events.step("adopted", entry, f"job {adopted}")
                outstanding += 1
                continue
            if not self._budget_allows(entry.size) or not self._request(entry):
                return
            outstanding += 1

    def _request(self, entry: Entry) -> bool:
        """Initiate the archive's retrieval; False: the source wants no more for now."""
        params = {"Type": "archive-retrieval", "ArchiveId": entry.archive_id}
        try:
            job_id = self.source.client.initiate_job(
                accountId=self.source.account_id,
                vaultName=self.source.vault,
                jobParameters={**params, "Tier": self.options.tier},
            )["jobId"]
        except ClientError as exc:
            code = _code(exc)
            if code in WAIT_CODES:  # a retrieval policy, Expedited capacity, throttling
                self.events.step("waiting", entry, f"the source refuses more jobs now: {code}")
                return False
            if code == "ResourceNotFoundException":  # deleted since the inventory
                self._fail(entry, f"not in the source vault any more: {exc}")
                return True
            raise MigrationError(f"source: {exc}") from exc
        self.state.requested(entry.archive_id, job_id, entry.size, self.clock())
        self.events.step("requested", entry, f"job {job_id}")
        return True

    def _budget_allows(self, size: int) -> bool:
        budget = self.options.max_bytes_per_day
        if budget is None:
            return True
        used, _ = self.state.window(self.clock())
        # An archive larger than the whole budget still goes, alone in its window,
        # or it would never go at all.
        return used + size <= budget or used == 0

    def _pause(self) -> float:
        """Seconds to wait: the poll interval, or less if the budget frees sooner."""
        pause = self.options.poll_interval
        idle = self.state.count(REQUESTED)[0] == 0
        if idle and self.options.max_bytes_per_day is not None:
            _, frees_at = self.state.window(self.clock())
            if frees_at is not None:
                wait = max(frees_at - self.clock(), 0.0) + 1.0
                self.events.step(
                    "budget", None, f"daily budget used; next retrieval in {wait:.0f}s"
                )
                return wait
        return pause

    def _initiate_job(self, params: dict[str, str]) -> str:
        resp = self._call(
            self.source.client.initiate_job,
            accountId=self.source.account_id,
            vaultName=self.source.vault,
            jobParameters=params,
        )
        return str(resp["jobId"])

    def _describe(self, job_id: str) -> dict[str, Any] | None:
        try:
            return dict(
                self.source.client.describe_job(
                    accountId=self.source.account_id, vaultName=self.source.vault, jobId=job_id
                )
            )
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise MigrationError(f"source: {exc}") from exc

    def _call(self, method: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except ClientError as exc:
            raise MigrationError(f"source: {exc}") from exc

    # --- moving bytes -----------------------------------------------------------------------
    def _transfer(self, ready: list[Entry]) -> None:
        with ThreadPoolExecutor(self.options.parallel) as pool:
            for _ in pool.map(self._move, ready):
                pass

    def _move(self, entry: Entry) -> None:
        path = self.work_dir / entry.archive_id
        if entry.state == DOWNLOADED and not path.exists():
            # The work directory was cleared: fetch it again while the job lasts.
            self.state.set_state(entry.archive_id, REQUESTED, job_id=entry.job_id)
            entry = replace(entry, state=REQUESTED)
        if entry.state == REQUESTED and not self._download(entry, path):
            return
        try:
            written = self.destination.write(entry, path)
        except WriteRefused as exc:
            self.state.set_state(entry.archive_id, FAILED, job_id=entry.job_id, reason=str(exc))
            self.events.step("failed", entry, str(exc))
        else:
            reason = "was already at the destination" if written.existed else None
            self.state.set_state(entry.archive_id, DONE, new_id=written.new_id, reason=reason)
            if self.destination.keeps_ids:
                self.events.step("imported", entry, reason or "")
            else:
                self.events.step("uploaded", entry, f"as {written.new_id}")
        path.unlink(missing_ok=True)

    def _download(self, entry: Entry, path: Path) -> bool:
        try:
            got = download_job_output(
                self.source.client,
                self.source.account_id,
                self.source.vault,
                entry.job_id or "",
                path,
                size=entry.size,
                tree_hash=entry.tree_hash,
                parallel=1,
                part_size=self.options.part_size,
                progress=self.events.transferred,
                on_resume=self.events.transferred,  # bytes an earlier run already fetched
            )
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                self.state.set_state(entry.archive_id, PENDING)
                self.events.step("expired", entry, f"job {entry.job_id} expired; asking again")
            else:
                self._fail(entry, f"download: {exc}")
            return False
        except (BotoConnectionError, httpx.TransportError, OSError):
            raise  # the network or the disk: stop; a rerun continues from here
        except Exception as exc:
            self._fail(entry, f"download: {exc}")
            return False
        if got != entry.tree_hash:
            self._fail(entry, f"bytes hash to {got}, the inventory says {entry.tree_hash}")
            path.unlink(missing_ok=True)
            return False
        self.state.set_state(entry.archive_id, DOWNLOADED, job_id=entry.job_id)
        self.events.step("downloaded", entry)
        return True

    def _fail(self, entry: Entry, reason: str) -> None:
        self.state.set_state(entry.archive_id, FAILED, job_id=entry.job_id, reason=reason)
        self.events.step("failed", entry, reason)

    # --- results ----------------------------------------------------------------------------
    def _write_mapping(self) -> None:
        if self.mapping is None:
            return
        part = self.mapping.with_name(self.mapping.name + ".part")
        with part.open("w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(
                ["source_archive_id", "destination_archive_id", "size", "sha256_tree_hash"]
            )
            for e in self.state.entries(DONE):
                out.writerow([e.archive_id, e.new_id, e.size, e.tree_hash])
        part.replace(self.mapping)

    def _report(self, seconds: float) -> Report:
        counts = self.state.counts()
        report = Report(seconds=seconds)
        report.archives = sum(n for n, _ in counts.values())
        report.migrated, report.migrated_bytes = counts.get(DONE, (0, 0))
        report.skipped, report.skipped_bytes = counts.get(SKIPPED, (0, 0))
        report.failed = self.state.entries(FAILED)
        report.not_migrated = self.state.entries(FAILED, PENDING, REQUESTED, DOWNLOADED)
        return report


def _inventory_entries(items: Iterator[dict[str, Any]]) -> Iterator[Entry]:
    for item in items:
        yield Entry(
            archive_id=item["ArchiveId"],
            size=int(item["Size"]),
            tree_hash=item["SHA256TreeHash"],
            description=item.get("ArchiveDescription"),
            created=item["CreationDate"],
        )


def _adoptable(jobs: dict[str, dict[str, Any]]) -> dict[tuple[str, int], str]:
    """Whole-archive retrieval jobs still usable, by (archive id, size)."""
    found: dict[tuple[str, int], str] = {}
    for job in sorted(jobs.values(), key=lambda j: j.get("CreationDate", "")):
        if job.get("Action") != "ArchiveRetrieval" or job["StatusCode"] == "Failed":
            continue
        size = int(job.get("ArchiveSizeInBytes") or 0)
        whole = job.get("RetrievalByteRange") in (None, f"0-{size - 1}")
        if whole:
            found[(job["ArchiveId"], size)] = job["JobId"]
    return found


def _marker(marker: str | None) -> dict[str, str]:
    return {"marker": marker} if marker else {}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))

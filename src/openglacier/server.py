"""Assembling a running server from Settings: storage, services, auth, apps."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from openglacier import allocator
from openglacier.admin.api import AdminApi
from openglacier.api.app import GlacierApp
from openglacier.api.front import Front
from openglacier.auth.credentials import (
    Authenticator,
    RootKeys,
    ensure_root_credential,
    load_or_create_root,
)
from openglacier.clock import Clock, ManualClock, SystemClock
from openglacier.config import Settings
from openglacier.config_checks import parse_duration
from openglacier.console import build_console
from openglacier.domain.context import Deps
from openglacier.domain.governance.retrieval_limits import RetrievalLimits
from openglacier.domain.jobs.service import JobOptions
from openglacier.domain.scrub import Scrubber
from openglacier.domain.services import JobSetup, Services
from openglacier.domain.usage_report import Prices
from openglacier.jobs.threaded import in_own_thread
from openglacier.notify.targets import parse_targets
from openglacier.ports import BlobStore, MetadataStore
from openglacier.storage.blob_url import check_recorded, record
from openglacier.storage.blobs.codecs import CodecConfig
from openglacier.storage.blobs.replicated import open_replicated
from openglacier.storage.encryption_keys import check_keys, record_keys
from openglacier.storage.factory import codec_config, open_blobs, open_metadata
from openglacier.storage.metadata.engine import sqlite_files
from openglacier.storage.private_files import make_private_dir, tighten
from openglacier.storage.readiness import readiness_checks
from openglacier.treehash import MIB

STALE_TEMP_SECONDS = 3600.0
ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105 - a file name, not a secret


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    services: Services
    app: GlacierApp
    root: RootKeys
    admin_token: str

    def close(self) -> None:
        self.services.deliverer.targets.close()
        self.services.deps.store.close()
        self.services.deps.blobs.close()


def load_or_create_admin_token(data_dir: Path, configured: str) -> str:
    if configured:
        return configured
    path = data_dir / ADMIN_TOKEN_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    token = secrets.token_urlsafe(32)
    make_private_dir(data_dir)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    return token


def build_deps(settings: Settings, clock: Clock | None = None) -> Deps:
    """The stores, opened in an order that creates nothing when one cannot be
    opened (a blob store that is down, refused keys): see `_open_stores`."""
    url = settings.resolved_metadata_url
    codecs = codec_config(settings)  # a key file that cannot be read: fail before anything
    tighten(settings.data_dir, also=sqlite_files(url))
    store, blobs, to_record = _open_stores(settings, url, codecs)
    # Recorded once the blob store has opened: a URL that cannot be used, or a
    # key never used, is never recorded.
    if to_record:
        replica = settings.replica_blob_url or None
        _or_close(store, blobs, partial(record, store, settings.resolved_blob_url, replica=replica))
    _or_close(store, blobs, partial(record_keys, store, codecs.keyring))
    if clock is None:
        clock = ManualClock() if settings.clock == "manual" else SystemClock()
    return Deps(
        store=store,
        blobs=blobs,
        clock=clock,
        timing=settings.profile,
        partition=settings.partition,
        body_timeout=settings.body_timeout_seconds,
        orphan_blob_min_age=timedelta(seconds=settings.orphan_blob_min_age_seconds),
        stale_temp_seconds=_stale_temp_seconds(settings),
    )


def open_deployment_blobs(
    settings: Settings, codecs: CodecConfig | None = None, url: str | None = None
) -> BlobStore:
    """The blob store every serve and worker uses: with --replica-blob-url, every
    blob in both stores (storage/blobs/replicated.py). Only here, not in
    open_blobs: `blobs migrate` opens single stores by URL. `codecs`: how new
    blobs are encoded (default: as the settings say; `blobs rewrite` encrypts
    with the key it is given); `url`: the primary (default: --blob-url)."""
    primary = url or settings.resolved_blob_url
    if settings.replica_blob_url:
        return open_replicated(primary, settings.replica_blob_url, settings, codecs)
    return open_blobs(primary, settings, codecs=codecs)


def _open_stores(
    settings: Settings, url: str, codecs: CodecConfig
) -> tuple[MetadataStore, BlobStore, bool]:
    """(metadata store, blob store, whether URLs are to be recorded).

    A SQLite store that does not exist yet has no blob URL recorded, so the blob
    store is opened first and the database (with the data dir it may make) only
    once that worked. Otherwise the metadata store opens first (an existing
    file; a PostgreSQL one only connects) and a process on another blob store
    than the recorded one (or another replica) is refused before anything is
    created (storage/blob_url.py)."""
    files = sqlite_files(url)
    if files and not files[0].exists():
        blobs = _open_blob_store(settings, codecs)
        try:
            return open_metadata(url), blobs, True
        except BaseException:
            blobs.close()
            raise
    store = open_metadata(url)
    try:
        replica = settings.replica_blob_url or None
        to_record = check_recorded(store, settings.resolved_blob_url, replica)
        check_keys(store, codecs.keyring)
        return store, _open_blob_store(settings, codecs), to_record
    except BaseException:
        store.close()
        raise


def _open_blob_store(settings: Settings, codecs: CodecConfig) -> BlobStore:
    """The blob store, and the private data dir once it opened. A file:// store
    may live inside the data dir, which is made private before it."""
    url = settings.resolved_blob_url
    if url.startswith("file:"):
        make_private_dir(settings.data_dir)
    blobs = open_deployment_blobs(settings, codecs)
    try:
        sweep = getattr(blobs, "sweep_temp", None)
        if sweep is not None:
            # Crash leftovers: never acknowledged, safe to drop (design 3). Only
            # stale ones: other processes (API nodes, workers) may share this blob
            # store and be writing right now; a live writer touches its file at
            # least once per body timeout.
            sweep(older_than=_stale_temp_seconds(settings))
        make_private_dir(settings.data_dir)
    except BaseException:
        blobs.close()
        raise
    return blobs


def _stale_temp_seconds(settings: Settings) -> float:
    return max(STALE_TEMP_SECONDS, 2 * settings.body_timeout_seconds)


def _or_close(store: MetadataStore, blobs: BlobStore, step: Callable[[datetime], object]) -> None:
    """`step(now)`, closing both stores if it fails (a refused start)."""
    try:
        step(datetime.now(UTC))
    except BaseException:
        blobs.close()
        store.close()
        raise


def job_setup(settings: Settings) -> JobSetup:
    sink_factory = None
    if settings.select_output_url:
        from openglacier.storage.outputs import open_output_sink  # noqa: PLC0415 - boto3 on demand

        sink_factory = partial(
            open_output_sink,
            settings.select_output_url,
            settings.select_output_access_key_id,
            settings.select_output_secret_access_key,
            settings.region,
        )
    return JobSetup(
        options=JobOptions(
            inventory_before_first=settings.inventory_before_first,
            select_enabled=sink_factory is not None,
            limits=RetrievalLimits(
                free_tier_bytes_per_month=settings.free_tier_bytes_per_month,
                spread_hours=settings.retrieval_spread_hours,
                expedited_capacity=settings.expedited_capacity,
            ),
        ),
        sink_factory=sink_factory,
        lease=timedelta(seconds=settings.job_lease_seconds),
        workers=settings.job_workers,
        targets=parse_targets(settings.notify_targets, default_region=settings.region),
        notify_max_attempts=settings.notify_max_attempts,
        notify_retry_base=timedelta(seconds=settings.notify_retry_seconds),
    )


def background_loops(
    settings: Settings, services: Services, *, maintenance: bool = True
) -> list[Callable[[], Coroutine[Any, Any, None]]]:
    """What runs beside request handling. With a manual clock nothing does:
    tests move time and trigger each step through the admin API."""
    if settings.clock == "manual":
        return []
    loops: list[Callable[[], Coroutine[Any, Any, None]]] = []
    if maintenance:
        loops.append(partial(services.maintenance.loop, settings.maintenance_interval_seconds))
    if settings.job_workers > 0:
        # Each runner on a thread and event loop of its own (jobs/threaded.py).
        loops += [
            partial(in_own_thread, partial(r.loop, settings.job_poll_seconds), f"job-runner-{i}")
            for i, r in enumerate(services.runners)
        ]
        loops.append(partial(services.deliverer.loop, settings.job_poll_seconds))
    if maintenance and settings.scrub_rate > 0:
        loops.append(partial(scrubber(settings, services.deps).loop, SCRUB_POLL_SECONDS))
    return loops


SCRUB_POLL_SECONDS = 60.0  # how often an idle scrubber asks whether a pass is due


def scrubber(settings: Settings, deps: Deps) -> Scrubber:
    """The background scrubber: every serve process runs one, and the lease in
    the metadata store lets one of them scrub at a time (domain/scrub/)."""
    return Scrubber(deps, rate=settings.scrub_rate * MIB, interval=scrub_interval(settings))


def scrub_interval(settings: Settings) -> timedelta:
    return timedelta(seconds=parse_duration(settings.scrub_interval))


def build_runtime(
    settings: Settings,
    clock: Clock | None = None,
    *,
    tune_allocator: bool = True,
    prices: Prices | None = None,
) -> Runtime:
    """`tune_allocator=False` for a server embedded in someone else's process (the
    pytest plugin): glibc's arena settings are process-wide, not ours to change there."""
    if tune_allocator:
        allocator.tune()  # before any worker thread: downloads' buffers (allocator.py)
    deps = build_deps(settings, clock)
    services = Services.build(deps, job_setup(settings))
    root = load_or_create_root(
        settings.data_dir,
        settings.access_key_id,
        settings.secret_access_key,
        settings.account_id,
        deps.store.keyring,
    )
    ensure_root_credential(deps, root)
    authenticator = Authenticator(
        deps,
        region=settings.region,
        max_skew_seconds=settings.max_clock_skew_seconds,
        root=root,
        verify=settings.auth == "sigv4",
        cache_seconds=settings.credential_cache_seconds,
    )
    token = load_or_create_admin_token(settings.data_dir, settings.admin_token)
    admin = AdminApi(services, token, settings.region, scrub_interval(settings))
    app = GlacierApp(
        services,
        authenticator,
        admin,
        max_json_body=settings.max_json_body_bytes,
        background=background_loops(settings, services),
        front=Front(
            readiness_checks(deps.store, deps.blobs),
            metrics=settings.metrics_port < 0,  # else on its own port (cli/main.py)
        ),
        access_log=settings.access_log == "on",
    )
    if settings.console == "on":
        app.console = build_console(
            app, token, settings.region, root.account_id, prices or Prices()
        )
    return Runtime(settings, services, app, root, token)

"""One blob store for the whole deployment (issue 13).

The blob URL is recorded in the metadata store by the first process that
starts (`record`), and every later `serve`, `worker` or `blobs migrate` is
checked against it (`check_recorded`) before it opens or creates anything, so
a process pointed at another store is refused instead of writing blobs that
the others can never read (a worker on another directory used to mark
inventory jobs Succeeded whose output could never be downloaded).

URLs are compared in a canonical form: a file:// path resolved (symbolic links,
`..`, a trailing slash), an s3 URL reduced to scheme, lowercase host, port
(the scheme's default made explicit), bucket and prefix. Credentials are never
part of it (s3 URLs refuse them; a user:password in any URL is dropped), so
the recorded form can be printed.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from openglacier.config import mask_secrets
from openglacier.ports import MetadataStore
from openglacier.storage.blobs.opening import BlobStoreOpenError

log = logging.getLogger(__name__)
_DEFAULT_PORTS = {"s3+http": 80, "s3+https": 443}


class BlobStoreMismatchError(BlobStoreOpenError):
    """A process started on another blob store than the recorded one: one line
    naming both and what to do (cli/startup.py prints it as is)."""


def canonical_blob_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "file":
        return f"file://{Path(unquote(parts.path)).resolve()}"
    if parts.scheme in _DEFAULT_PORTS:
        host = (parts.hostname or "").lower()
        if ":" in host:  # an IPv6 literal keeps its brackets
            host = f"[{host}]"
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
        path = "/".join(p for p in unquote(parts.path).split("/") if p)
        return f"{parts.scheme}://{host}:{port}/{path}"
    return mask_secrets(url)  # config.validate refuses these before any use


def mismatch(recorded: str, given: str) -> BlobStoreMismatchError:
    return BlobStoreMismatchError(
        f"this deployment's blob store is {recorded} (recorded in the metadata store), "
        f"not {mask_secrets(canonical_blob_url(given))}: start every serve and worker "
        f"with --blob-url {recorded}, or move the blobs first with "
        f"`openglacier blobs migrate --to URL`"
    )


def replica_mismatch(recorded: str, given: str | None) -> BlobStoreMismatchError:
    what = "none" if given is None else mask_secrets(canonical_blob_url(given))
    return BlobStoreMismatchError(
        f"this deployment's replica blob store is {recorded} (recorded in the metadata "
        f"store), not {what}: run every serve, worker, scrub and blobs rewrite with "
        f"--replica-blob-url {recorded}"
    )


def check_recorded(store: MetadataStore, url: str, replica: str | None = None) -> bool:
    """Whether this start has something to record (the blob URL, or a replica
    added to a deployment that had none); raises `BlobStoreMismatchError` if
    `url` is another store, or `replica` is not the recorded replica (None
    when one is recorded included). Reads only: a refused process creates
    nothing."""
    with store.transaction(readonly=True) as tx:
        recorded = tx.recorded_blob_url()
        recorded_replica = tx.recorded_replica_url()
    if recorded is not None and recorded != canonical_blob_url(url):
        raise mismatch(recorded, url)
    check_replica(recorded_replica, replica)
    return recorded is None or (replica is not None and recorded_replica is None)


def check_replica(recorded: str | None, replica: str | None) -> None:
    """Raise `BlobStoreMismatchError` unless `replica` is the recorded replica
    (anything goes while none is recorded)."""
    if recorded is not None and (replica is None or recorded != canonical_blob_url(replica)):
        raise replica_mismatch(recorded, replica)


def record(store: MetadataStore, url: str, now: datetime, replica: str | None = None) -> None:
    """Record `url` if no URL is recorded (the first start, once its blob store
    opened), and `replica` if given and none is recorded (the first start, or
    a replica added later: the scrubber copies the older blobs into it). Of
    processes starting at once with different URLs, the first wins and the
    others are refused here."""
    canonical = canonical_blob_url(url)
    wanted = None if replica is None else canonical_blob_url(replica)
    with store.transaction() as tx:
        recorded = tx.record_blob_url(canonical, now)
        had_replica = tx.recorded_replica_url()
        recorded_replica = had_replica if wanted is None else tx.record_replica_url(wanted, now)
    if recorded != canonical:
        raise mismatch(recorded, url)
    if recorded_replica != wanted:
        assert recorded_replica is not None  # a replica given is recorded or refused
        raise replica_mismatch(recorded_replica, replica)
    if wanted is not None and had_replica is None:
        log.warning(
            "replica blob store %s recorded for this deployment; blobs written before have "
            "no copy there until the scrubber restores them (run `openglacier scrub now`)",
            wanted,
        )

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

from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from openglacier.config import mask_secrets
from openglacier.ports import MetadataStore
from openglacier.storage.blobs.opening import BlobStoreOpenError

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


def check_recorded(store: MetadataStore, url: str) -> str | None:
    """The recorded URL (None if none yet); raises `BlobStoreMismatchError` if
    `url` is another store. Reads only: a refused process creates nothing."""
    with store.transaction(readonly=True) as tx:
        recorded = tx.recorded_blob_url()
    if recorded is not None and recorded != canonical_blob_url(url):
        raise mismatch(recorded, url)
    return recorded


def record(store: MetadataStore, url: str, now: datetime) -> None:
    """Record `url` if no URL is recorded (the first start, once its blob store
    opened). Of processes starting at once with different URLs, the first
    insert wins and the others are refused here."""
    canonical = canonical_blob_url(url)
    with store.transaction() as tx:
        recorded = tx.record_blob_url(canonical, now)
    if recorded != canonical:
        raise mismatch(recorded, url)

"""Storage URLs -> adapters.

sqlite:///path/to/metadata.db | postgresql://user@host/db   metadata
file:///path/to/blobs                                      blobs
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from openglacier.config import ConfigError, mask_secrets
from openglacier.ports import BlobStore, MetadataStore
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from openglacier.storage.metadata.store import open_metadata_store


def open_metadata(url: str) -> MetadataStore:
    if not url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
        shown = mask_secrets(url)
        raise ConfigError(f"metadata_url {shown!r}: use sqlite:///FILE or postgresql://...")
    return open_metadata_store(url)


def open_blobs(url: str) -> BlobStore:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return FilesystemBlobStore(Path(unquote(parsed.path)))
    raise ConfigError(f"blob_url {mask_secrets(url)!r}: use file:///DIRECTORY")

"""Storage URLs -> adapters.

sqlite:///path/to/metadata.db | postgresql://user@host/db   metadata
file:///path/to/blobs                                      blobs
s3+http(s)://HOST:PORT/BUCKET[/PREFIX]                     blobs (S3-compatible)

Blob stores encode new blobs as `codec_config(settings)` says (--compression,
--encryption-key-file; storage/blobs/format.py lists the codecs).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from openglacier.config import ConfigError, Settings, mask_secrets
from openglacier.config_checks import parse_compression
from openglacier.keyring import KeyringError, load_keyring
from openglacier.ports import BlobStore, MetadataStore
from openglacier.storage.blobs.codecs import CodecConfig
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from openglacier.storage.blobs.opening import BlobStoreOpenError
from openglacier.storage.metadata.store import open_metadata_store

if TYPE_CHECKING:
    from openglacier.storage.blobs.s3_client import S3Credentials


def open_metadata(url: str) -> MetadataStore:
    if not url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
        shown = mask_secrets(url)
        raise ConfigError(f"metadata_url {shown!r}: use sqlite:///FILE or postgresql://...")
    return open_metadata_store(url)


class KeyFileError(BlobStoreOpenError):
    """The encryption key file cannot be used (keyring.py's one-line message)."""


def codec_config(settings: Settings | None) -> CodecConfig:
    """How blob stores encode new blobs: zstd per chunk if `compression` is set,
    AES-256-GCM with the keyring's current key if `encryption_key_file` is, else
    codec 1 (checked raw). The keyring also reads blobs of older keys. A key
    file that cannot be used raises a one-line `KeyFileError`; call this before
    creating anything, so a start that fails leaves nothing behind."""
    if settings is None:
        return CodecConfig()
    try:
        level = parse_compression(settings.compression)
    except ValueError as exc:
        raise ConfigError(f"setting 'compression': {exc} (--compression)") from None
    if not settings.encryption_key_file:
        return CodecConfig(level)
    path = settings.encryption_key_file
    try:
        return CodecConfig(level, load_keyring(Path(path)))
    except KeyringError as exc:
        raise KeyFileError(str(exc)) from None
    except ValueError as exc:  # the current key's id cannot go into a blob
        raise KeyFileError(f"key file {path}: {exc} (--encryption-key-file)") from None


def open_blobs(
    url: str,
    settings: Settings | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    codecs: CodecConfig | None = None,
) -> BlobStore:
    """The blob store at `url`, encoding as `codecs` (default: `codec_config(settings)`).
    An s3 store takes its keys and region from `settings` (blob_access_key_id...),
    else from boto3's own chain (the standard AWS variables, ~/.aws, roles); the
    region from settings, else AWS_REGION. An s3 store that cannot be used, or a
    key file that cannot be read, raises a one-line `BlobStoreOpenError`."""
    parsed = urlparse(url)
    if codecs is None:
        codecs = codec_config(settings)
    if parsed.scheme == "file":
        return FilesystemBlobStore(Path(unquote(parsed.path)), codecs)
    if parsed.scheme in ("s3+http", "s3+https"):
        # boto3 on demand: embedded (file://) deployments never pay its import.
        from openglacier.storage.blobs.s3 import S3BlobStore  # noqa: PLC0415
        from openglacier.storage.blobs.s3_client import S3Location  # noqa: PLC0415

        try:
            location = S3Location.parse(url)
        except ValueError as exc:
            raise ConfigError(f"blob_url {mask_secrets(url)!r}: {exc}") from None
        return S3BlobStore(location, blob_credentials(settings, environ), codecs=codecs)
    raise ConfigError(
        f"blob_url {mask_secrets(url)!r}: use file:///DIRECTORY or s3+http://HOST:PORT/BUCKET"
    )


def blob_credentials(
    settings: Settings | None, environ: Mapping[str, str] | None = None
) -> S3Credentials:
    """Keys from the settings; empty ones leave boto3 its own chain, which reads
    AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY first (then ~/.aws, instance roles)."""
    from openglacier.storage.blobs.s3_client import S3Credentials  # noqa: PLC0415

    env = os.environ if environ is None else environ
    if settings is None:
        return S3Credentials(region=env.get("AWS_REGION", "") or env.get("AWS_DEFAULT_REGION", ""))
    region = settings.blob_region or env.get("AWS_REGION", "") or env.get("AWS_DEFAULT_REGION", "")
    return S3Credentials(settings.blob_access_key_id, settings.blob_secret_access_key, region)

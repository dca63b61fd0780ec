"""The start-up error of a blob store, importable without the store's client library."""

from __future__ import annotations

from openglacier.errors import StorageError


class BlobStoreOpenError(StorageError):
    """The blob store cannot be used at start (endpoint down, bad credentials,
    bucket missing and not creatable): one line saying what and what to do
    (cli/startup.py prints it as is)."""

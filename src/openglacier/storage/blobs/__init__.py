"""Blob-store adapters (design 4 "BlobStore") and what every adapter shares.

Shared contract, on top of `openglacier.ports.BlobStore` (the contract suite in
`tests/contract/test_blob_contract.py` runs it over every adapter):

- Keys are ours (`ids.new_blob_key`), validated by the single rule in
  `check_key`: lowercase hex, 16 to 128 characters. Anything else is a
  programming error and raises `ValueError`; a key is never a user string, so it
  never needs escaping and can never name a path outside the store.
- `open()` of a key that is not committed raises `BlobNotFoundError`.
- Committing a writer whose key already holds a blob raises
  `BlobAlreadyExistsError` and leaves the existing blob untouched. Keys are fresh
  random ids, so this only ever signals a bug, never a race to be retried.
- Using a writer after `commit()` or `abort()` (or after a failed `write()`)
  raises `BlobWriterClosedError`; `abort()` itself stays idempotent.
- Stored bytes that fail the adapter's format checks raise
  `openglacier.errors.IntegrityError`; other I/O failures raise
  `openglacier.errors.StorageError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar

from openglacier.ports import BlobInfo, BlobStore

__all__ = [
    "BlobAlreadyExistsError",
    "BlobNotFoundError",
    "BlobWriterClosedError",
    "ClosingReader",
    "check_key",
    "is_valid_key",
    "put_blob",
]

_KEY_RE = re.compile(r"\A[0-9a-f]{16,128}\Z")


class BlobNotFoundError(FileNotFoundError):
    """No committed blob under this key."""


class BlobAlreadyExistsError(FileExistsError):
    """A blob is already committed under this key (keys are never reused)."""


class BlobWriterClosedError(ValueError):
    """The writer was committed, aborted or broken by a failed write."""


class _Closable(Protocol):
    def close(self) -> None: ...


H = TypeVar("H", bound=_Closable)


class ClosingReader(Iterator[bytes], Generic[H]):
    """What every store's `BlobReader` shares around closing: it holds one
    closable thing (a file, a GET's stream, another store's reader) in `_held`;
    `close()` releases it (idempotent), a reader dropped unclosed releases it
    when collected, and `with reader:` closes it. Subclasses implement
    `__next__`, set `checked`, and may extend `_release` (buffers to drop)."""

    checked: bool = False
    _held: H | None = None  # the class default: a reader whose __init__ failed holds nothing

    def _release(self) -> None:
        """Drop what the reader holds besides `_held`; runs at every close()."""

    def close(self) -> None:
        held, self._held = self._held, None
        self._release()
        if held is not None:
            held.close()

    def __del__(self) -> None:
        if self._held is not None:
            self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def is_valid_key(key: object) -> bool:
    """The one key rule shared by every adapter (also used to filter listings)."""
    return isinstance(key, str) and _KEY_RE.match(key) is not None


def check_key(key: str) -> str:
    """Return `key` unchanged, or raise `ValueError` if it breaks the key rule."""
    if not is_valid_key(key):
        raise ValueError(f"invalid blob key {key!r}: expected 16-128 lowercase hex digits")
    return key


def put_blob(
    store: BlobStore, key: str, chunks: Iterable[bytes | bytearray | memoryview]
) -> BlobInfo:
    """Write `chunks` under `key` and commit; on any failure nothing is left behind.

    `BaseException` on purpose: a cancelled request (anyio cancellation,
    KeyboardInterrupt) must not leave a temp file or half-written object.
    """
    writer = store.create(key)
    try:
        for chunk in chunks:
            writer.write(chunk)
        return writer.commit()
    except BaseException:
        writer.abort()
        raise

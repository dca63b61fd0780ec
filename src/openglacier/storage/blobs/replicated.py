"""Replicated blob store: every blob in two stores (``--replica-blob-url``).

`ReplicatedBlobStore(primary, replica)` is a `BlobStore` over two others (any
adapters: file + file, file + s3, s3 + s3) and the `ports.BlobCopies` the
scrubber repairs through.

Writing. `create()` returns a writer that hands every payload byte to a writer
of each store as it arrives (a tee: memory stays what the two writers use).
`commit()` commits the primary, then the replica, and returns only when both
are durable: an acknowledged blob always has two copies. If either commit
fails, the other copy is removed (aborted, or deleted if already committed)
and the error raised, so the caller's metadata never names a blob with one
copy. A crash between the two commits leaves the blob in the primary only,
and no row names it (blob first, metadata second): an orphan, which the orphan
collector finds because `scan()` lists the union of both stores' keys, and
removes from both because `delete()` deletes from both.

Reading. `open()` reads the primary. A primary copy that is missing, fails the
store's checks at open (header, length) or whose store fails, is read from the
replica instead; a primary reader that fails mid-stream (`IntegrityError`, a
store error) is replaced by a replica reader at the current payload position,
and the read goes on. Each switch logs one WARNING naming the blob, the store
that failed and why. The switch goes either way, as long as the read makes
progress: a blob whose copies are damaged in different chunks still reads
whole; when both copies fail at the same position, the read raises, the
`IntegrityError` if either failure was one. `stat()` falls back the same way.

`checked` (ports.BlobReader) is true only when every copy the read may use
is checked: when the primary reader is checked, the replica is probed at open
(its header only, an empty range) and the read is checked only if the
replica's reader would be too, so a switch mid-stream never hands unchecked
bytes to a caller that skipped hashing them. A replica that cannot be probed
is not switched to.

Repair. `restore(key, source)` replaces the copy in the other store with a
copy of `copies[source]`: it opens the source first (nothing is touched if it
cannot be read), deletes the other copy (stores never commit over an existing
key), then streams the source into a new blob there. Interrupted anywhere, the
blob keeps at least the source copy, and a rerun finishes the job.

Listing. `scan()` merges both stores' pages in key order; a key in both is
listed once, with the later of its two modification times (a blob is as young
as its youngest copy, so the orphan collector's age bound holds for both).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from openglacier.errors import IntegrityError, StorageError
from openglacier.ports import BlobEntry, BlobInfo, BlobReader, BlobStore, BlobWriter
from openglacier.storage.blobs import (
    BlobNotFoundError,
    BlobWriterClosedError,
    ClosingReader,
    check_key,
)
from openglacier.storage.blobs.opening import BlobStoreOpenError

if TYPE_CHECKING:
    from openglacier.config import Settings
    from openglacier.storage.blobs.codecs import CodecConfig

__all__ = ["ReplicatedBlobReader", "ReplicatedBlobStore", "ReplicatedBlobWriter", "open_replicated"]

log = logging.getLogger(__name__)

PRIMARY, REPLICA = 0, 1
_NAMES = ("primary", "replica")
_KEYS_PAGE = 1000
# What a read falls back on. A ValueError (bad key or range) is the caller's
# mistake, the same for both copies, and is raised as is.
_FALLBACK = (BlobNotFoundError, IntegrityError, StorageError)


def _worst(errors: list[Exception]) -> Exception:
    """The error to raise when no copy could be read: damage first (it must be
    reported as such), then a store failure (retryable), else not found."""
    for kind in (IntegrityError, StorageError):
        for exc in errors:
            if isinstance(exc, kind):
                return exc
    return errors[-1]


def describe(store: BlobStore) -> str:
    """A printable name for a store in log lines (its URL where it has one)."""
    location = getattr(store, "location", None)
    if location is not None:
        return str(location.url)
    root = getattr(store, "root", None)
    if root is not None:
        return f"file://{root}"
    return type(store).__name__


class ReplicatedBlobStore:
    """`BlobStore` and `BlobCopies` over a primary and a replica store; see the
    module docstring."""

    def __init__(
        self, primary: BlobStore, replica: BlobStore, labels: tuple[str, str] | None = None
    ) -> None:
        self._stores = (primary, replica)
        self.labels = labels or (describe(primary), describe(replica))
        # How new blobs are encoded: as the primary does (both stores are opened
        # with the same codec configuration).
        self.codecs = getattr(primary, "codecs", None)

    @property
    def copies(self) -> tuple[BlobStore, BlobStore]:
        return self._stores

    def warn(self, key: str, index: int, exc: BaseException, what: str) -> None:
        log.warning(
            "blob %s: the %s copy (%s) failed: %s; %s",
            key,
            _NAMES[index],
            self.labels[index],
            exc,
            what,
        )

    # --- writing ------------------------------------------------------------
    def create(self, key: str) -> ReplicatedBlobWriter:
        primary = self._stores[PRIMARY].create(key)
        try:
            replica = self._stores[REPLICA].create(key)
        except BaseException:
            primary.abort()
            raise
        return ReplicatedBlobWriter(self, key, primary, replica)

    # --- reading ------------------------------------------------------------
    def open(self, key: str, start: int = 0, end: int | None = None) -> ReplicatedBlobReader:
        check_key(key)
        errors: list[Exception] = []
        for index in (PRIMARY, REPLICA):
            try:
                reader = self._stores[index].open(key, start, end)
            except _FALLBACK as exc:
                errors.append(exc)
                continue
            if errors:  # the replica, alone: the primary failed at open
                self.warn(key, PRIMARY, errors[0], "reading the replica copy")
            # The other copy may only be switched to if it failed nothing yet.
            usable = {index} if errors else {PRIMARY, REPLICA}
            checked = bool(reader.checked)
            if checked and REPLICA in usable and index == PRIMARY:
                checked = self._replica_checked(key, start, usable)
            return ReplicatedBlobReader(
                self, key, (start, end), reader, index=index, usable=usable, checked=checked
            )
        raise _worst(errors)

    def _replica_checked(self, key: str, start: int, usable: set[int]) -> bool:
        """Whether the replica's reader would be checked too (header read only);
        a replica that cannot be probed is never switched to."""
        try:
            probe = self._stores[REPLICA].open(key, start, start)
        except (*_FALLBACK, ValueError) as exc:
            log.debug("blob %s: replica probe failed (%s); reading the primary only", key, exc)
            usable.discard(REPLICA)
            return True  # only the (checked) primary will be read
        try:
            return bool(probe.checked)
        finally:
            probe.close()

    def stat(self, key: str) -> BlobInfo | None:
        errors: list[Exception] = []
        for index in (PRIMARY, REPLICA):
            try:
                info = self._stores[index].stat(key)
            except (IntegrityError, StorageError) as exc:
                errors.append(exc)
                continue
            if info is not None:
                if errors:
                    self.warn(key, PRIMARY, errors[0], "using the replica copy")
                return info
        if errors:
            raise _worst(errors)
        return None

    def keys(self) -> Iterator[str]:
        """Keys in either store, in key order, listed a page at a time."""
        after: str | None = None
        while page := self.scan(after, _KEYS_PAGE):
            yield from (entry.key for entry in page)
            after = page[-1].key

    def scan(self, after: str | None, limit: int) -> list[BlobEntry]:
        """The union of both stores' blobs after `after`, first `limit` in key order.

        Each store's page holds its first `limit` keys after `after`, so the
        first `limit` keys of the merged pages are the union's: a key of either
        store that sorts before the last one kept is in that store's page."""
        merged: dict[str, BlobEntry] = {}
        for store in self._stores:
            for entry in store.scan(after, limit):
                known = merged.get(entry.key)
                if known is None or entry.modified_at > known.modified_at:
                    merged[entry.key] = entry
        return [merged[key] for key in sorted(merged)[:limit]]

    # --- deleting, housekeeping --------------------------------------------
    def delete(self, key: str) -> None:
        """Delete both copies; both are attempted, the first failure is raised
        (the deletion queue keeps the key and retries)."""
        self._each(lambda store: store.delete(key))

    def sweep_temp(self, older_than: float | None = None) -> int:
        """Both stores' crash leftovers (temp files, multipart uploads)."""
        counts: list[int] = []

        def sweep(store: BlobStore) -> None:
            method: Callable[..., int] | None = getattr(store, "sweep_temp", None)
            if method is not None:
                counts.append(method(older_than=older_than))

        self._each(sweep)
        return sum(counts)

    def close(self) -> None:
        self._each(lambda store: store.close())

    def _each(self, action: Callable[[BlobStore], None]) -> None:
        failure: BaseException | None = None
        for store in self._stores:
            try:
                action(store)
            except BaseException as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    # --- repair (ports.BlobCopies) -----------------------------------------
    def restore(self, key: str, source: int) -> None:
        """Replace the copy of `key` in the other store with a copy of the
        source's (which the caller verified). Idempotent; safe to interrupt."""
        if source not in (PRIMARY, REPLICA):
            raise ValueError(f"source must be 0 (primary) or 1 (replica), not {source!r}")
        origin, target = self._stores[source], self._stores[1 - source]
        reader = origin.open(key)  # a source that cannot be read touches nothing
        try:
            target.delete(key)
            writer = target.create(key)
            try:
                for chunk in reader:
                    writer.write(chunk)
                info = writer.commit()
            except BaseException:
                writer.abort()
                raise
        finally:
            reader.close()
        log.warning(
            "blob %s: restored the %s copy (%s) from the %s copy, %d bytes",
            key,
            _NAMES[1 - source],
            self.labels[1 - source],
            _NAMES[source],
            info.size,
        )


class ReplicatedBlobWriter:
    """One blob being written to both stores; see `ReplicatedBlobStore.create`."""

    def __init__(
        self, store: ReplicatedBlobStore, key: str, primary: BlobWriter, replica: BlobWriter
    ) -> None:
        self.key = key
        self._store = store
        self._writers = (primary, replica)
        self._open = True
        self._committed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._open:
            raise BlobWriterClosedError(f"writer for blob {self.key} is closed")
        try:
            for writer in self._writers:
                writer.write(data)
        except BaseException:
            self._open = False  # one copy may hold bytes the other lacks: abort only
            raise

    def commit(self) -> BlobInfo:
        if not self._open:
            raise BlobWriterClosedError(f"writer for blob {self.key} is closed")
        self._open = False
        primary, replica = self._writers
        try:
            info = primary.commit()
        except BaseException:
            # Not ours to delete: a failed commit leaves nothing (or, on a key
            # collision, another writer's blob) under the key.
            replica.abort()
            raise
        try:
            replica.commit()
        except BaseException:
            self._drop_primary()
            raise
        self._committed = True
        return info

    def _drop_primary(self) -> None:
        """The replica failed: the primary copy, committed a moment ago and named
        by no row, goes too (or, if that fails, stays an orphan to collect)."""
        try:
            self._store.copies[PRIMARY].delete(self.key)
        except Exception as exc:  # the commit's own error is the one to raise
            log.warning(
                "blob %s: could not delete the primary copy after the replica's commit "
                "failed (%s); the orphan collector will remove it",
                self.key,
                exc,
            )

    def abort(self) -> None:
        """Discard both; idempotent, and a no-op after a successful commit."""
        self._open = False
        if self._committed:
            return
        failure: BaseException | None = None
        for writer in self._writers:
            try:
                writer.abort()
            except BaseException as exc:
                failure = failure or exc
        if failure is not None:
            raise failure


class ReplicatedBlobReader(ClosingReader[BlobReader]):
    """Payload bytes of one blob from whichever copy reads; see the module docstring."""

    def __init__(
        self,
        store: ReplicatedBlobStore,
        key: str,
        span: tuple[int, int | None],
        reader: BlobReader,
        *,
        index: int,
        usable: set[int],
        checked: bool,
    ) -> None:
        self.checked = checked
        self._store = store
        self._key = key
        self._pos, self._end = span
        self._held = reader  # the copy being read (closed and replaced on a switch)
        self._index = index
        self._usable = usable
        self._failed_at: dict[int, int] = {}  # copy -> payload position it last failed at
        self._errors: list[Exception] = []

    def __next__(self) -> bytes:
        while True:
            if self._held is None:
                raise StopIteration
            try:
                chunk = next(self._held)
            except StopIteration:
                self.close()
                raise
            except _FALLBACK as exc:
                self._switch(exc)
                continue
            self._pos += len(chunk)
            return chunk

    def _switch(self, exc: Exception) -> None:
        """Go on from the other copy at the current position, or raise."""
        failed, other = self._index, 1 - self._index
        self._failed_at[failed] = self._pos
        self._errors.append(exc)
        self.close()
        # The other copy already failed here (no progress since): both are bad.
        if other not in self._usable or self._failed_at.get(other) == self._pos:
            raise _worst(self._errors) from exc
        try:
            reader = self._store.copies[other].open(self._key, self._pos, self._end)
        except _FALLBACK as second:
            self._errors.append(second)
            raise _worst(self._errors) from exc
        except ValueError:  # the other copy ends before this position: damaged too
            raise exc from None
        if self.checked and not reader.checked:
            # The caller may rely on `checked` and skip hashing: never hand it
            # unchecked bytes (the copy changed since the probe at open).
            reader.close()
            raise IntegrityError(
                f"blob {self._key}: the {_NAMES[failed]} copy failed ({exc}) and the "
                f"{_NAMES[other]} copy is not checked"
            ) from exc
        self._store.warn(
            self._key, failed, exc, f"reading the {_NAMES[other]} copy from byte {self._pos}"
        )
        self._held, self._index = reader, other


def open_replicated(
    primary_url: str,
    replica_url: str,
    settings: Settings | None = None,
    codecs: CodecConfig | None = None,
) -> ReplicatedBlobStore:
    """The deployment's blob store when --replica-blob-url is set: both stores
    opened (the primary first; neither is left open if the other fails), with
    their canonical URLs as the names log lines give them."""
    # Imported here: the factory may import this module to wire it in.
    from openglacier.config import ConfigError  # noqa: PLC0415
    from openglacier.storage.blob_url import canonical_blob_url  # noqa: PLC0415
    from openglacier.storage.factory import open_blobs  # noqa: PLC0415

    labels = (canonical_blob_url(primary_url), canonical_blob_url(replica_url))
    if labels[0] == labels[1]:
        raise ConfigError(
            f"replica_blob_url {labels[1]} is the blob store itself: name another store "
            "(--replica-blob-url)"
        )
    primary = open_blobs(primary_url, settings, codecs=codecs)
    try:
        replica = open_blobs(replica_url, settings, codecs=codecs)
    except BlobStoreOpenError as exc:
        primary.close()
        # The store's one line names its URL; the flag to fix is the replica's.
        text = str(exc).replace("--blob-url", "--replica-blob-url")
        raise BlobStoreOpenError(f"replica {text}") from None
    except BaseException:
        primary.close()
        raise
    return ReplicatedBlobStore(primary, replica, labels)

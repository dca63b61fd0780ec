"""Filesystem blob store: the embedded default behind ``file://`` (design 1.4, 4).

Layout under ``root``::

    objects/<k[0:2]>/<k[2:4]>/<key>   committed blobs (format.py), never modified
    tmp/<key>.<pid>@<host>.<random>.tmp   blobs being written, and crash leftovers

Contract (on top of `openglacier.ports.BlobStore` and the shared rules in
`openglacier.storage.blobs`):

- Write path (design 1.3 "blob first, metadata second"): `create()` opens a
  fresh temp file (``O_EXCL``, mode 0600); `commit()` fills in the header,
  ``fsync``\\ s the file, hard-links it under its final name, ``fsync``\\ s the
  final directory (and every fan-out directory it had to create, plus that
  directory's parent), then drops the temp name. Only when `commit()` returns
  is the blob visible, and from then on it survives ``kill -9`` and power loss.
  A `commit()` that raises leaves nothing under the key.
- Temp files of writers that never committed (crash, or a writer dropped
  without `abort()`) stay in ``tmp/`` until `sweep_temp()` removes them. Every
  process calls it at start. Several processes (API nodes, workers) may share
  one store, so a start only removes the files of writers that are gone: the
  temp name records the writing process (pid and a host tag), and a file goes
  when that process no longer runs on this host, or when it is older than
  `older_than` whoever wrote it.
- `open()` checks the header, the chunk index and the file length eagerly,
  so a missing blob raises `BlobNotFoundError` and a damaged one (or one
  under a key id the keyring lacks: `MissingKeyError`) at call time, not at
  the first ``next()``. Every chunk is checked before it is yielded
  (codecs/stream.py `PayloadReader`; codec-0 blobs, unchecked, are read as
  is). The returned reader holds the file open: a blob deleted while it is
  being read is still read to the end (POSIX semantics), which is what lets
  the deletion queue run while downloads are in flight.
- `scan()` pages through committed blobs in key order with their mtimes (the
  orphan collector's listing, fanout.py); `keys()` is built on it.
- `delete()` unlinks and ``fsync``\\ s the directory. Fan-out directories are
  never removed: removing one could race a concurrent commit into it.
- Errors: `BlobNotFoundError` (missing key), `BlobAlreadyExistsError` (commit
  over an existing key), `BlobWriterClosedError` (writer already finished),
  `IntegrityError` (bad header or index, truncation, a chunk failing its
  check), `ValueError` (invalid key or range), `StorageError` (any other OS
  error, e.g. a full disk).

New blobs are encoded as the store's `CodecConfig` says (format.py; codec 1,
checked raw, by default). Throughput (issue 5 measures it against raw
``fsync`` speed): codec 0 and 1 payload bytes go from the caller's buffer to
``os.write`` without copying (codecs 2-4: their frames), except that writes
smaller than `_DIRECT_WRITE_MIN` are gathered into one large write; reads are
one ``os.pread`` per frame, i.e. per 1 MiB chunk (a tree-hash leaf, spec 3.1).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from openglacier.errors import IntegrityError, StorageError
from openglacier.metrics import metered_blob_call
from openglacier.ports import BlobEntry, BlobInfo
from openglacier.storage.blobs import (
    BlobAlreadyExistsError,
    BlobNotFoundError,
    BlobWriterClosedError,
    check_key,
)
from openglacier.storage.blobs.codecs import CodecConfig
from openglacier.storage.blobs.codecs.stream import (
    BlobLayout,
    PayloadEncoder,
    PayloadReader,
    load_layout,
)
from openglacier.storage.blobs.fanout import scan_fanout
from openglacier.storage.blobs.format import HEADER_LEN, BlobHeader

__all__ = ["FilesystemBlobStore", "FilesystemBlobWriter"]

log = logging.getLogger(__name__)

_DIRECT_WRITE_MIN = 256 << 10  # smaller writes are gathered in a buffer first
_GATHER_MAX = 1 << 20  # the gathered buffer is written once it reaches this size
_TMP_SUFFIX = ".tmp"
_KEYS_PAGE = 1000
# Names this host in temp-file names (no dots: the name is split on them).
_HOST_TAG = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:12]


def _writer_gone(name: str) -> bool:
    """True if the temp file's writer was a process of this host that has ended.

    Unknown owners (other hosts, older names) are never judged gone: only age
    removes their files, so a live writer elsewhere is never disturbed.
    """
    parts = name.split(".")
    if len(parts) != 4:
        return False
    pid_text, _, host = parts[1].partition("@")
    if host != _HOST_TAG or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, owned by another user
    return False


# Filesystems without hard links (some FUSE, SMB and FAT mounts) answer link() so.
_NO_LINK_ERRNOS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP})


@contextmanager
def _os_errors(what: str) -> Iterator[None]:
    """Translate OS errors at the adapter boundary (design 2), keeping our own."""
    try:
        yield
    except (BlobNotFoundError, BlobAlreadyExistsError):
        raise
    except OSError as exc:
        raise StorageError(f"{what}: {exc}") from exc


def _fsync_dir(path: str) -> None:
    """Make directory entries (create, rename, unlink) durable; the file's own
    fsync does not cover its name."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs(path: str) -> None:
    """mkdir -p, fsyncing every directory created and its parent."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return
    except FileNotFoundError:
        _make_dirs(os.path.dirname(path))
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            return
    _fsync_dir(path)
    _fsync_dir(os.path.dirname(path))


def _write_all(fd: int, view: memoryview) -> None:
    # os.write may write less than asked (signals, pipes, > 2 GiB on Linux).
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _unlink_quietly(path: str) -> None:
    """Best-effort cleanup; a leftover temp file is swept at the next start."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)


def _pread_exact(fd: int, offset: int, end: int, key: str) -> bytes:
    """File bytes [offset, end); IntegrityError if the file ends first."""
    data = os.pread(fd, end - offset, offset)
    while len(data) < end - offset:  # regular files only read short at end of file
        more = os.pread(fd, end - offset - len(data), offset + len(data))
        if not more:
            raise IntegrityError(f"blob {key}: file shrank while being read")
        data += more
    return data


def _layout(fd: int, key: str) -> BlobLayout:
    """The checked header and index (storage/blobs/codecs/stream.py)."""
    size = os.fstat(fd).st_size
    head = os.pread(fd, HEADER_LEN, 0)
    return load_layout(key, head, size, lambda offset, end: _pread_exact(fd, offset, end, key))


class _PreadSource:
    """A blob file's bytes from `offset` on, for PayloadReader; owns `fd`."""

    def __init__(self, fd: int, offset: int, key: str) -> None:
        self._fd, self._offset, self._key = fd, offset, key

    def read(self, n: int) -> bytes:
        with _os_errors(f"reading blob {self._key}"):
            data = _pread_exact(self._fd, self._offset, self._offset + n, self._key)
        self._offset += n
        return data

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


class FilesystemBlobStore:
    """`BlobStore` on a local POSIX filesystem; see the module docstring."""

    def __init__(self, root: Path | str, codecs: CodecConfig | None = None) -> None:
        self.root = Path(root)
        self.codecs = codecs or CodecConfig()
        self._objects = os.path.join(self.root, "objects")
        self._tmp = os.path.join(self.root, "tmp")
        # Fan-out directories known to exist durably; creating them under the
        # lock means no thread links into a directory whose entry is not yet
        # fsynced by the thread that created it. A directory found already
        # there is trusted without another fsync: only a process killed between
        # its mkdir and fsync, followed by power loss before the filesystem's
        # next journal commit, could lose it, and fsyncing every pre-existing
        # directory on first use would cost two extra fsyncs per commit for the
        # first 65536 commits after each start.
        self._ready_dirs: set[str] = set()
        self._dir_lock = threading.Lock()
        with _os_errors(f"initialising blob store at {self.root}"):
            _make_dirs(self._objects)
            _make_dirs(self._tmp)

    def _dir_of(self, key: str) -> str:
        check_key(key)
        return os.path.join(self._objects, key[0:2], key[2:4])

    def _path_of(self, key: str) -> str:
        return os.path.join(self._dir_of(key), key)

    # --- writing ------------------------------------------------------------
    def create(self, key: str) -> FilesystemBlobWriter:
        check_key(key)
        owner = f"{os.getpid()}@{_HOST_TAG}"
        tmp = os.path.join(self._tmp, f"{key}.{owner}.{secrets.token_hex(8)}{_TMP_SUFFIX}")
        with _os_errors(f"creating temp file for blob {key}"):
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                # Header placeholder (length 0, rewritten at commit) so payload
                # offsets are final from the first write on.
                _write_all(fd, memoryview(BlobHeader(0).pack()))
            except BaseException:
                os.close(fd)
                _unlink_quietly(tmp)
                raise
        return FilesystemBlobWriter(self, key, tmp, fd)

    def _prepare_dir(self, key: str) -> str:
        final_dir = self._dir_of(key)
        if final_dir not in self._ready_dirs:
            with self._dir_lock:
                _make_dirs(final_dir)
                self._ready_dirs.add(final_dir)
        return final_dir

    def _publish(self, tmp: str, key: str) -> None:
        """Give the fsynced temp file its final name, durably, never replacing a blob."""
        final_dir = self._prepare_dir(key)
        final = os.path.join(final_dir, key)
        # link() then unlink(), not rename(): link fails atomically with EEXIST
        # when the name is taken, whereas rename silently replaces the target,
        # and checking for existence before renaming is racy. Keys are fresh,
        # so a collision is a bug that must not destroy an existing blob.
        try:
            os.link(tmp, final)
        except FileExistsError:
            raise BlobAlreadyExistsError(errno.EEXIST, "blob already exists", key) from None
        except OSError as exc:
            if exc.errno not in _NO_LINK_ERRNOS:
                raise
            self._rename_checked(tmp, final, key)
        try:
            _fsync_dir(final_dir)
        except BaseException:
            _unlink_quietly(final)  # a failed commit leaves nothing visible
            raise
        _unlink_quietly(tmp)

    @staticmethod
    def _rename_checked(tmp: str, final: str, key: str) -> None:
        # Fallback without hard links: the check-then-rename window only matters
        # for two writers of one key, which fresh random keys rule out.
        if os.path.lexists(final):
            raise BlobAlreadyExistsError(errno.EEXIST, "blob already exists", key)
        os.rename(tmp, final)

    # --- reading ------------------------------------------------------------
    @metered_blob_call("file", "get")
    def open(self, key: str, start: int = 0, end: int | None = None) -> PayloadReader:
        path = self._path_of(key)
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid range [{start}, {end}) for blob {key}")
        with _os_errors(f"opening blob {key}"):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise BlobNotFoundError(errno.ENOENT, "no such blob", key) from None
            try:
                layout = _layout(fd, key)
                size = layout.header.payload_length
                if start > size:
                    raise ValueError(f"range start {start} beyond blob {key} of {size} bytes")
            except BaseException:
                os.close(fd)
                raise
        stop = size if end is None else min(end, size)
        source = None
        if stop > start:
            source = _PreadSource(fd, layout.file_span(start, stop)[0], key)
        else:
            os.close(fd)
        try:
            return PayloadReader(layout, self.codecs.keyring, start, stop, source)
        except BaseException:  # MissingKeyError: the blob's key is not configured
            if source is not None:
                source.close()
            raise

    @metered_blob_call("file", "stat")
    def stat(self, key: str) -> BlobInfo | None:
        path = self._path_of(key)
        with _os_errors(f"reading blob {key}"):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return None
            try:
                return _layout(fd, key).info
            finally:
                os.close(fd)

    def keys(self) -> Iterator[str]:
        """Committed keys, in key order, listed a page at a time."""
        after: str | None = None
        while page := self.scan(after, _KEYS_PAGE):
            yield from (entry.key for entry in page)
            after = page[-1].key

    @metered_blob_call("file", "scan")
    def scan(self, after: str | None, limit: int) -> list[BlobEntry]:
        """Committed blobs after `after` in key order, with their mtimes (fanout.py)."""
        if limit < 1:
            raise ValueError(f"scan limit must be positive, not {limit}")
        start = check_key(after) if after is not None else ""
        with _os_errors("listing blobs"):
            return scan_fanout(self._objects, start, limit)

    # --- deleting -----------------------------------------------------------
    @metered_blob_call("file", "delete")
    def delete(self, key: str) -> None:
        final_dir = self._dir_of(key)
        with _os_errors(f"deleting blob {key}"):
            try:
                os.unlink(os.path.join(final_dir, key))
            except FileNotFoundError:
                return
            _fsync_dir(final_dir)

    def sweep_temp(self, older_than: float | None = None) -> int:
        """Remove temp files left by writers that never finished; returns the count.

        A file goes if its writer was a process of this host that has ended, or
        (with `older_than`, seconds) if it was not modified for that long. With
        neither bound (`older_than=None`) every temp file goes: only for a store
        no other process uses. File mtimes are wall-clock by nature, so this
        compares with `time.time()` rather than the injected Clock (design 1.5).
        """
        cutoff = time.time() - older_than if older_than is not None else None
        removed = 0
        with _os_errors("sweeping temp files"), os.scandir(self._tmp) as entries:
            for entry in entries:
                try:
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    stale = cutoff is None or entry.stat(follow_symlinks=False).st_mtime <= cutoff
                except FileNotFoundError:
                    continue  # committed or aborted since the listing: not a leftover
                if not (stale or _writer_gone(entry.name)):
                    continue
                try:
                    os.unlink(entry.path)
                except FileNotFoundError:
                    continue
                removed += 1
            if removed:
                _fsync_dir(self._tmp)
        return removed

    def close(self) -> None:
        """Nothing to release: every operation opens and closes its own files."""


class FilesystemBlobWriter:
    """One blob being written; see `FilesystemBlobStore.create`."""

    def __init__(self, store: FilesystemBlobStore, key: str, tmp: str, fd: int) -> None:
        self.key = key
        self._store = store
        self._tmp = tmp
        self._fd = fd
        self._gathered = bytearray()
        self._encoder = PayloadEncoder(store.codecs, key, self._put)
        self._open = True
        self._committed = False

    def __del__(self) -> None:
        # Dropped without commit or abort: release the descriptor, but leave the
        # temp file, like a crash would, for sweep_temp.
        if getattr(self, "_fd", -1) >= 0:
            os.close(self._fd)
            self._fd = -1

    def _check_open(self) -> None:
        if not self._open:
            raise BlobWriterClosedError(f"writer for blob {self.key} is closed")

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._check_open()
        try:
            with _os_errors(f"writing blob {self.key}"):
                self._encoder.write(memoryview(data).cast("B"))
        except BaseException:
            # The file may hold part of this write: only abort() is allowed now.
            self._open = False
            raise

    def _put(self, data: bytes | bytearray | memoryview) -> None:
        """The next body bytes (payload or frames) at the end of the file."""
        view = memoryview(data).cast("B")
        if len(view) >= _DIRECT_WRITE_MIN:
            self._flush_gathered()
            _write_all(self._fd, view)
        else:
            self._gathered += view
            if len(self._gathered) >= _GATHER_MAX:
                self._flush_gathered()

    def _flush_gathered(self) -> None:
        if self._gathered:
            _write_all(self._fd, memoryview(self._gathered))
            self._gathered.clear()

    @metered_blob_call("file", "put")
    def commit(self) -> BlobInfo:
        self._check_open()
        self._open = False
        try:
            with _os_errors(f"committing blob {self.key}"):
                header, index = self._encoder.finish()
                self._put(index)
                self._flush_gathered()
                # Length and index offset are only known now (format.py): rewrite
                # the header in place.
                os.pwrite(self._fd, header.pack(), 0)
                os.fsync(self._fd)
                self._close_fd()
                self._store._publish(self._tmp, self.key)
        except BaseException:
            self._discard()
            raise
        self._committed = True
        return BlobInfo(self.key, header.payload_length, header.codec, self._encoder.key_id)

    def abort(self) -> None:
        """Discard the temp file; idempotent, and a no-op after a successful commit."""
        self._open = False
        if not self._committed:
            self._discard()

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def _discard(self) -> None:
        try:
            self._close_fd()
        except OSError as exc:
            log.warning("closing temp file of blob %s: %s", self.key, exc)
        self._gathered.clear()
        self._encoder.discard()
        _unlink_quietly(self._tmp)

"""The files an upload names: files as given, directories walked recursively.

Symbolic links to files are followed (the file's bytes are what a backup
wants); links to directories are not, so a link loop cannot make the walk
endless. Anything that is not a regular file (sockets, FIFOs, devices) is
reported and left out: reading a FIFO would block the upload.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class LocalFile:
    path: Path  # absolute, symlinks of the argument itself resolved
    relpath: str  # relative to the argument's parent: "photos/2024/a.jpg" for "photos"
    size: int
    mtime_ns: int

    @property
    def key(self) -> str:
        """The path the catalogue records."""
        return str(self.path)


@dataclass(frozen=True)
class Unusable:
    """An argument or entry that cannot be uploaded, and why (one line)."""

    path: str
    reason: str


def collect(arguments: list[str]) -> Iterator[LocalFile | Unusable]:
    """The regular files the arguments name, in a stable order (sorted per
    directory), each at most once."""
    seen: set[Path] = set()
    for argument in arguments:
        root = Path(argument).expanduser()
        try:
            resolved = root.resolve(strict=True)
            info = resolved.stat()
        except OSError as exc:
            yield Unusable(argument, exc.strerror or str(exc))
            continue
        if stat.S_ISDIR(info.st_mode):
            entries = _walk(resolved, resolved.parent)
        else:
            entries = iter([_entry(resolved, resolved.name)])
        for item in entries:
            if isinstance(item, LocalFile):
                if item.path in seen:
                    continue
                seen.add(item.path)
            yield item


def _walk(directory: Path, base: Path) -> Iterator[LocalFile | Unusable]:
    errors: list[OSError] = []
    for top, dirs, files in os.walk(directory, onerror=errors.append):
        dirs.sort()
        for name in sorted(files):
            path = Path(top) / name
            yield _entry(path, path.relative_to(base).as_posix())
        while errors:
            exc = errors.pop()
            yield Unusable(str(exc.filename or top), exc.strerror or str(exc))


def _entry(path: Path, relpath: str) -> LocalFile | Unusable:
    try:
        info = path.stat()  # follows a symlink to a file
    except OSError as exc:
        return Unusable(str(path), exc.strerror or str(exc))
    if not stat.S_ISREG(info.st_mode):
        return Unusable(str(path), "not a regular file")
    return LocalFile(path.absolute(), relpath, info.st_size, info.st_mtime_ns)


def sha256_of(path: Path) -> str:
    """SHA-256 of the file's bytes (to tell an unchanged file from one whose size
    and mtime happen to match)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()

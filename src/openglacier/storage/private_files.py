"""The data dir is private: the metadata store holds every access key's secret.

The data dir is made 0700 and the files the server writes in it 0600, whatever
the umask (a mode passed to open/mkdir is only ever narrowed by the umask, and a
umask such as 0277 could narrow it below what the server needs, so the mode is
set explicitly after creation). SQLite creates its -wal and -shm files with the
main database file's permission bits, so creating that file 0600 before SQLite
opens it covers them too.

Files left readable by an older version or a careless copy are fixed at start,
with one WARNING line naming them. Only the data dir and its direct entries are
checked: once the data dir is 0700 nothing below it can be reached by another
user, and walking millions of blob files at every start would cost minutes.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("openglacier.storage")

DIR_MODE = 0o700
FILE_MODE = 0o600
_OTHERS = 0o077  # group and other permission bits


def make_private_dir(path: Path) -> None:
    """mkdir -p `path`; the directory itself 0700 if this call creates it (parents
    keep the operator's modes: they may be shared directories like /srv)."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        return  # another process made it meanwhile; `tighten` checks its mode
    os.chmod(path, DIR_MODE)


def create_private_file(path: Path) -> None:
    """Create `path` empty and 0600 unless it exists (then `tighten` checks it)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def tighten(data_dir: Path, also: Iterable[Path] = ()) -> list[str]:
    """Remove group and other access from the data dir, its direct entries and
    `also` (e.g. a SQLite file kept elsewhere); one WARNING line names what changed.
    Symbolic links are left alone (chmod would follow them). Returns the changes."""
    candidates = [data_dir, *(_entries(data_dir)), *also]
    changed = []
    for path in candidates:
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISLNK(info.st_mode) or not mode & _OTHERS:
            continue
        os.chmod(path, mode & ~_OTHERS)
        changed.append(f"{path} ({mode:04o} -> {mode & ~_OTHERS:04o})")
    if changed:
        log.warning(
            "tightened permissions (group/other access removed; they hold secrets): %s",
            ", ".join(changed),
        )
    return changed


def _entries(directory: Path) -> list[Path]:
    try:
        return list(directory.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []

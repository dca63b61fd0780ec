"""Listing the filesystem store's fan-out tree (``objects/<k[0:2]>/<k[2:4]>/<key>``)
in key order, a page at a time.

Fan-out directory names are the keys' first characters, so walking the tree
with every level sorted yields keys in key order, and a page that starts after
a key skips the directories before it by name: each page lists at most the two
top levels and the leaf directories it returns from, however many blobs there are.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from openglacier.ports import BlobEntry
from openglacier.storage.blobs import is_valid_key


def scan_fanout(objects: str, start: str, limit: int) -> list[BlobEntry]:
    """Up to `limit` blobs whose keys sort after `start` ("" for all), with mtimes.

    A blob deleted while being listed is left out; OSError is the caller's to
    translate.
    """
    found: list[BlobEntry] = []
    for first in sorted_names(objects):
        if first < start[:2]:
            continue
        top = os.path.join(objects, first)
        for second in sorted_names(top):
            if first + second < start[:4]:
                continue
            _scan_leaf(os.path.join(top, second), first + second, start, found, limit)
            if len(found) >= limit:
                return found
    return found


def _scan_leaf(path: str, prefix: str, start: str, found: list[BlobEntry], limit: int) -> None:
    for name in sorted_names(path):
        # Anything else there is not ours (editor backups, lost+found).
        if name <= start or not (name.startswith(prefix) and is_valid_key(name)):
            continue
        try:
            mtime = os.stat(os.path.join(path, name)).st_mtime
        except FileNotFoundError:
            continue
        found.append(BlobEntry(name, datetime.fromtimestamp(mtime, UTC)))
        if len(found) >= limit:
            return


def sorted_names(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []

"""The state of a download in progress, next to its partial file.

`FILE.part` holds the bytes; `FILE.part.state` is an append-only log of JSON
lines: `{"meta": {...}}` lines (later members win: endpoint, vault, archive id,
job id, size, tree hash, range size) and `{"range": [first, last, tree_hash]}`
for each range written. Appending one short line per finished range keeps the
log linear in the number of ranges; a line torn by a kill is ignored (its range
is downloaded again). Nothing is fsynced per range: the whole file's tree hash
is checked before it is presented as good, which catches anything a crash lost.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Range = tuple[int, int]  # inclusive byte offsets in the job's output


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def state_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part.state")


@dataclass
class Sidecar:
    path: Path
    meta: dict[str, Any] = field(default_factory=dict)
    done: dict[Range, str | None] = field(default_factory=dict)  # range -> its tree hash

    @classmethod
    def load(cls, dest: Path) -> Sidecar:
        sidecar = cls(state_path(dest))
        try:
            text = sidecar.path.read_text()
        except FileNotFoundError:
            return sidecar
        for line in text.splitlines():
            try:
                record = json.loads(line)
                if "meta" in record:
                    sidecar.meta.update(record["meta"])
                elif "range" in record:
                    first, last, digest = record["range"]
                    sidecar.done[(int(first), int(last))] = digest
            except (ValueError, TypeError, KeyError):
                continue  # a line torn by a kill
        return sidecar

    def update_meta(self, **meta: Any) -> None:
        self.meta.update(meta)
        self._append({"meta": meta})

    def reset(self, **meta: Any) -> None:
        """Forget every finished range (the partial file no longer matches)."""
        self.meta = dict(meta)
        self.done = {}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"meta": self.meta}) + "\n")
        os.replace(tmp, self.path)

    def add_range(self, first: int, last: int, digest: str | None) -> None:
        self.done[(first, last)] = digest
        self._append({"range": [first, last, digest]})

    def forget(self, ranges: list[Range]) -> None:
        for r in ranges:
            self.done.pop(r, None)
        self.reset_keeping()

    def reset_keeping(self) -> None:
        """Rewrite the log as it now stands (after ranges were forgotten)."""
        done = dict(self.done)
        self.reset(**self.meta)
        for (first, last), digest in sorted(done.items()):
            self.add_range(first, last, digest)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def _append(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")

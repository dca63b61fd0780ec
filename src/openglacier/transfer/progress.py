"""How a transfer shows itself: a rich progress bar per file and overall on a
terminal, a line per file otherwise, one JSON object per file with `--json`.

Reporters are called from the reader and from the request threads; rich's
Progress is thread-safe, the line reporters print whole lines under a lock.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import asdict, dataclass
from typing import Protocol

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    TaskID,
)

from openglacier.progress import byte_progress
from openglacier.transfer.files import LocalFile


@dataclass(frozen=True)
class Outcome:
    """What became of one file: uploaded, skipped or failed."""

    path: str  # as the user named it (relative to the argument's parent)
    status: str  # "uploaded" | "skipped" | "failed"
    size: int
    archive_id: str | None = None
    tree_hash: str | None = None
    reason: str = ""  # why skipped or failed; for uploads, a note such as "resumed"


class Reporter(Protocol):
    def begin(self, total_bytes: int) -> None: ...
    def file_started(self, item: LocalFile, resumed_bytes: int = 0) -> None: ...
    def advance(self, item: LocalFile, nbytes: int) -> None: ...
    def file_done(self, item: LocalFile | None, outcome: Outcome) -> None: ...
    def note(self, message: str) -> None: ...
    def end(self) -> None: ...


def _line(outcome: Outcome) -> str:
    size = decimal(outcome.size)
    if outcome.status == "uploaded":
        extra = f", {outcome.reason}" if outcome.reason else ""
        return f"uploaded {outcome.path} ({size}{extra}) as {outcome.archive_id}"
    return f"{outcome.status} {outcome.path}: {outcome.reason}"


class LineReporter:
    """One line per file on stdout (failures on stderr); `quiet` keeps only failures."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self._lock = threading.Lock()

    def begin(self, total_bytes: int) -> None:
        pass

    def file_started(self, item: LocalFile, resumed_bytes: int = 0) -> None:
        pass

    def advance(self, item: LocalFile, nbytes: int) -> None:
        pass

    def file_done(self, item: LocalFile | None, outcome: Outcome) -> None:
        failed = outcome.status == "failed"
        if self.quiet and not failed:
            return
        with self._lock:
            print(_line(outcome), file=sys.stderr if failed else sys.stdout, flush=True)

    def note(self, message: str) -> None:
        if not self.quiet:
            with self._lock:
                print(message, file=sys.stderr, flush=True)

    def end(self) -> None:
        pass


class JsonReporter(LineReporter):
    """One JSON object per file on stdout (failures included, with their reason)."""

    def file_done(self, item: LocalFile | None, outcome: Outcome) -> None:
        with self._lock:
            print(json.dumps(asdict(outcome)), flush=True)
            if outcome.status == "failed":
                print(_line(outcome), file=sys.stderr, flush=True)


class RichReporter:
    """An overall bar and a bar per file in flight; finished files become lines."""

    def __init__(self, console: Console) -> None:
        self._progress = byte_progress(
            console,
            "{task.description}",
            markup=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._overall: TaskID | None = None
        self._total = 0
        self._tasks: dict[str, tuple[TaskID, list[int]]] = {}  # key -> (task, [bytes left])
        self._lock = threading.Lock()

    def begin(self, total_bytes: int) -> None:
        self._progress.start()
        self._total = total_bytes
        self._overall = self._progress.add_task("total", total=total_bytes)

    def file_started(self, item: LocalFile, resumed_bytes: int = 0) -> None:
        task = self._progress.add_task(
            _short(item.relpath), total=item.size, completed=resumed_bytes
        )
        with self._lock:
            self._tasks[item.key] = (task, [item.size - resumed_bytes])
        if self._overall is not None and resumed_bytes:
            self._progress.advance(self._overall, resumed_bytes)

    def advance(self, item: LocalFile, nbytes: int) -> None:
        with self._lock:
            task, left = self._tasks.get(item.key, (None, [0]))
            left[0] -= nbytes
        if task is not None:
            self._progress.advance(task, nbytes)
        if self._overall is not None:
            self._progress.advance(self._overall, nbytes)

    def file_done(self, item: LocalFile | None, outcome: Outcome) -> None:
        with self._lock:
            # Files skipped or refused before they started have no bar: all of
            # their bytes are done (or, failed, will not come).
            task, left = self._tasks.pop(item.key if item else "", (None, [outcome.size]))
            if outcome.status == "failed":  # its bytes will not come: the total shrinks
                self._total -= max(0, left[0])
        if task is not None:
            self._progress.remove_task(task)
        if self._overall is not None:
            if outcome.status == "failed":
                self._progress.update(self._overall, total=max(0, self._total))
            else:
                self._progress.advance(self._overall, max(0, left[0]))
        self._progress.console.print(_line(outcome), markup=False, highlight=False, soft_wrap=True)

    def note(self, message: str) -> None:
        self._progress.console.print(message, markup=False, highlight=False, soft_wrap=True)

    def end(self) -> None:
        self._progress.stop()


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def reporter_for(*, quiet: bool, as_json: bool) -> Reporter:
    """Bars only when a person watches (stdout and stderr both terminals)."""
    if as_json:
        return JsonReporter(quiet=quiet)
    if quiet:
        return LineReporter(quiet=True)
    console = Console(file=sys.stdout)
    if console.is_terminal and sys.stderr.isatty():
        return RichReporter(console)
    return LineReporter()

"""Group commit on SQLite: one process's write transactions share a commit.

Every write on SQLite queues on one writer lock (writer_lock.py). Each
transaction used to pay its own connection checkout, BEGIN IMMEDIATE and
COMMIT with an fsync, on a worker thread whose every statement waited for the
GIL: InitiateJob held the lock about 2 ms for two statements, and the lock was
busy 75-90 % of the time under load (docs/performance.md). Here one writer
thread per store takes the writes that have queued meanwhile (up to
`MAX_GROUP`), runs each inside its own savepoint of one transaction and
commits once:

- the writes run in queue order, each seeing the ones before it, exactly as
  if they had run one after another; a write that raises is rolled back to
  its savepoint and its caller gets the exception, the others are unaffected;
- no result is handed back before the commit: a commit that fails fails every
  write of the group (none is acknowledged), and a crash before it loses only
  writes nobody was told about;
- a write whose statement fails in the database itself (StorageError) may have
  ended the transaction, so the group stops there: that write gets its error,
  the ones before it are rolled back with the transaction, and they and the
  ones after it are queued again at the front;
- a write cancelled before it started is skipped.

Transactions opened with `store.transaction()` directly (the job runner's
batches, CLI commands) queue on the writer lock as before, and so does each
group: the writer thread opens its transaction the same way.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from openglacier.errors import StorageError
from openglacier.ports import MetadataTx

# Writes per commit: large enough that a burst shares a few commits, small
# enough that one group holds the writer lock for milliseconds, not seconds.
MAX_GROUP = 64


@dataclass
class _Write:
    fn: Callable[[MetadataTx], Any]
    future: Future[Any] = field(default_factory=Future)
    started: bool = False  # its future is running (a write queued again)

    def start(self) -> bool:
        """False: cancelled before it started, so it is not run."""
        if not self.started:
            self.started = self.future.set_running_or_notify_cancel()
        return self.started


@dataclass
class _Outcome:
    write: _Write
    value: Any = None
    error: BaseException | None = None


class _GroupAbandoned(Exception):
    """A write's statement failed in the database: the transaction may be gone."""


class GroupCommitter:
    def __init__(self, open_tx: Callable[[], AbstractContextManager[MetadataTx]]) -> None:
        self._open_tx = open_tx
        self._mutex = threading.Lock()
        self._queued = threading.Condition(self._mutex)
        self._queue: deque[_Write] = deque()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, fn: Callable[[MetadataTx], Any]) -> Future[Any]:
        write = _Write(fn)
        with self._mutex:
            if self._closed:
                raise StorageError("metadata store is closed")
            self._queue.append(write)
            self._ensure_thread()
            self._queued.notify()
        return write.future

    def _ensure_thread(self) -> None:
        # Started on first use; not alive in a forked child, which starts its own.
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._serve, name="openglacier-metadata-writer", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Commit what is queued, then stop the writer thread."""
        with self._mutex:
            self._closed = True
            self._queued.notify()
            thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join()

    def _serve(self) -> None:
        while True:
            with self._mutex:
                while not self._queue and not self._closed:
                    self._queued.wait()
                if not self._queue:
                    return
                group = [self._queue.popleft() for _ in range(min(MAX_GROUP, len(self._queue)))]
            self._commit([w for w in group if w.start()])

    def _commit(self, group: list[_Write]) -> None:
        if not group:
            return
        outcomes: list[_Outcome] = []
        try:
            with self._open_tx() as tx:
                for write in group:
                    outcomes.append(_run_one(tx, write))
        except _GroupAbandoned as abandoned:
            group[len(outcomes)].future.set_exception(abandoned.__cause__ or abandoned)
            self._requeue(group[: len(outcomes)] + group[len(outcomes) + 1 :])
            return
        except BaseException as exc:  # BEGIN or COMMIT failed: nothing of the group is stored
            for write in group:
                write.future.set_exception(exc)
            return
        for outcome in outcomes:
            if outcome.error is None:
                outcome.write.future.set_result(outcome.value)
            else:
                outcome.write.future.set_exception(outcome.error)

    def _requeue(self, writes: list[_Write]) -> None:
        with self._mutex:
            self._queue.extendleft(reversed(writes))
            self._queued.notify()


def _run_one(tx: MetadataTx, write: _Write) -> _Outcome:
    try:
        with tx.savepoint():
            return _Outcome(write, write.fn(tx))
    except StorageError as exc:
        raise _GroupAbandoned from exc
    except Exception as exc:
        return _Outcome(write, error=exc)

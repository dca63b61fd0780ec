"""One SQLite writer at a time, queued outside SQLite.

SQLite admits one write transaction at a time; the others wait in its busy
handler, which polls with sleeps growing to 100 ms. Under 16 concurrent
InitiateJob calls, writers spent most of their time asleep while the lock was
free (docs/performance.md). Writers queue here instead:

- threads of one process in arrival order (`FifoLock`: the lock is handed to
  the longest waiter, so a job runner's transaction is not overtaken
  indefinitely by a stream of request transactions);
- processes sharing the database (`serve --processes N`, CLI commands, a
  `worker`) on an advisory `flock` of `<database>-writer.lock`, polled in steps of
  at most 2 ms.

Both waits give up after the busy timeout with a StorageError, as SQLite would.
A process that dies holding the flock releases it with its file descriptors.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from openglacier.errors import StorageError

_MAX_POLL = 0.0005


class FifoLock:
    """A lock granted in arrival order, by hand-over: `release` passes it
    straight to the oldest waiter (one wake-up, no stampede).

    A plain `threading.Lock` lets whichever thread runs first take it: under a
    burst of 16 InitiateJob calls, the job runner's claim and completion
    transactions waited up to 5 s behind later arrivals (docs/performance.md).
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Lock] = deque()

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        if turn.acquire(timeout=timeout):
            return True  # handed over by release()
        with self._mutex:
            if turn in self._waiters:
                self._waiters.remove(turn)
                return False
        return True  # handed over just after the wait timed out: ours now

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().release()  # stays held, by the next in line
            else:
                self._held = False


class SqliteWriterLock:
    def __init__(self, database: str, timeout: float) -> None:
        self.path = f"{database}-writer.lock"
        self.timeout = timeout
        self._thread_lock = FifoLock()
        self._fd: int | None = None

    @contextmanager
    def held(self) -> Iterator[None]:
        deadline = time.monotonic() + self.timeout
        if not self._thread_lock.acquire(timeout=self.timeout):
            raise _timed_out()
        try:
            fd = self._file()
            _flock(fd, deadline)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def _file(self) -> int:
        # Opened lazily under the thread lock; kept open: reopening per
        # transaction would cost a syscall pair for nothing.
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._fd

    def close(self) -> None:
        if not self._thread_lock.acquire(timeout=self.timeout):
            raise _timed_out()
        try:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        finally:
            self._thread_lock.release()


def _flock(fd: int, deadline: float) -> None:
    delay = 0.0001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise _timed_out() from None
            time.sleep(delay)
            delay = min(delay * 2, _MAX_POLL)


def _timed_out() -> StorageError:
    return StorageError("metadata transaction failed (timed out waiting for the writer lock)")

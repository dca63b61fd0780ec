"""SQLite writers queue on a lock file before BEGIN IMMEDIATE (writer_lock.py).

Two `SqliteWriterLock`s on one database hold separate open file descriptions,
so they exclude each other exactly as two processes would.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from openglacier.errors import StorageError
from openglacier.storage.metadata.writer_lock import FifoLock, SqliteWriterLock


def test_a_second_holder_waits_then_times_out(tmp_path: Path) -> None:
    database = str(tmp_path / "metadata.db")
    first = SqliteWriterLock(database, timeout=5)
    second = SqliteWriterLock(database, timeout=0.05)
    with (
        first.held(),
        pytest.raises(StorageError, match="timed out waiting for the writer lock"),
        second.held(),
    ):
        pass
    with second.held():  # free again once the first let go
        assert Path(database + "-writer.lock").exists()
    first.close()
    second.close()


def test_waiter_gets_the_lock_when_released(tmp_path: Path) -> None:
    database = str(tmp_path / "metadata.db")
    holder = SqliteWriterLock(database, timeout=5)
    waiter = SqliteWriterLock(database, timeout=5)
    order: list[str] = []
    entered = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with holder.held():
            order.append("holder in")
            entered.set()
            release.wait(5)
            order.append("holder out")

    thread = threading.Thread(target=hold)
    thread.start()
    entered.wait(5)
    threading.Timer(0.05, release.set).start()
    with waiter.held():
        order.append("waiter in")
    thread.join(5)
    assert order == ["holder in", "holder out", "waiter in"]


def test_threads_of_one_process_take_turns(tmp_path: Path) -> None:
    lock = SqliteWriterLock(str(tmp_path / "metadata.db"), timeout=5)
    inside = 0
    most = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        for _ in range(50):
            with lock.held():
                with guard:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.0002)  # widens the window another holder would overlap in
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert most == 1


def _queued(lock: FifoLock) -> int:
    return len(lock._waiters)  # the test waits for each waiter to be in line


def test_threads_get_the_lock_in_arrival_order() -> None:
    """A burst of request transactions must not overtake a waiting job runner
    indefinitely: the lock goes to the oldest waiter."""
    lock = FifoLock()
    assert lock.acquire(timeout=1)
    order: list[int] = []

    def wait_turn(n: int) -> None:
        assert lock.acquire(timeout=10)
        order.append(n)
        lock.release()

    threads = []
    for n in range(6):
        thread = threading.Thread(target=wait_turn, args=(n,))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 5
        while _queued(lock) < n + 1 and time.monotonic() < deadline:
            time.sleep(0.001)  # until this thread is in line, so arrival order is known
    lock.release()
    for thread in threads:
        thread.join(10)
    assert order == list(range(6))


def test_a_waiter_that_gives_up_leaves_the_line() -> None:
    lock = FifoLock()
    assert lock.acquire(timeout=1)
    assert not lock.acquire(timeout=0.01)  # timed out: no longer in line
    assert _queued(lock) == 0
    lock.release()
    assert lock.acquire(timeout=0.01)  # free: the one that gave up did not take it
    lock.release()

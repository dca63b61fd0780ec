"""A bounded pool of request threads for parallel transfers.

`submit` blocks while `parallel` tasks are queued or running, so the reader
never holds more than `parallel + 1` parts in memory. The threads are daemons:
after Ctrl-C the command exits at once instead of waiting for requests in
flight (whatever the endpoint accepted by then, the next run finds with
ListParts; the catalogue commits every step, so nothing is half-written).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

Task = Callable[[], None]


class Workers:
    def __init__(self, parallel: int) -> None:
        self._slots = threading.Semaphore(parallel)
        self._queue: queue.SimpleQueue[Task] = queue.SimpleQueue()
        self._busy = 0
        self._idle = threading.Condition()
        for n in range(parallel):
            threading.Thread(target=self._run, name=f"transfer-{n}", daemon=True).start()

    def submit(self, task: Task) -> None:
        """Queue `task` once a slot is free. The task handles its own errors (the
        uploader's tasks record every failure as the file's outcome)."""
        self._slots.acquire()
        with self._idle:
            self._busy += 1
        self._queue.put(task)

    def wait(self) -> None:
        """Until every submitted task has finished."""
        with self._idle:
            while self._busy:
                self._idle.wait()

    def _run(self) -> None:
        while True:
            task = self._queue.get()
            try:
                task()
            finally:
                self._slots.release()
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

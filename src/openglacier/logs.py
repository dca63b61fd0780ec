"""One logging set-up for `serve` (every API process), `worker` and the CLI commands
that log (`scrub now`, `blobs migrate`, `blobs rewrite`).

Every line says when (ISO 8601 UTC, milliseconds), the level, the logger and the
message; a line made while a request is served also carries its request id, the
`x-amzn-RequestId` its client got. The id travels in a ContextVar set by the app
(api/app.py) for the request's task, so lines of the domain and the stores carry
it as well, on the event loop and on worker threads (anyio copies the context
into them). uvicorn's own loggers propagate to the root, so its lines come out
through the same formatter.

Two formats (docs/operations.md, Logs):

    text  2026-12-04T21:15:20.123Z INFO openglacier.access GET /-/vaults/v 200 ... request_id=...
    json  {"time": "...", "level": "INFO", "logger": "...", "message": "...", "request_id": "..."}

The standard library, not structlog: measured per access line (the cost every
request pays, CPU time, best of 9 x 20,000 lines to /dev/null), stdlib with
these formatters took 5.3 us (text) and 8.3 us (json); structlog 26.1 writing
straight to the file (no stdlib bridge, which uvicorn's lines would need) took
19.8 us (ConsoleRenderer) and 8.4 us (JSONRenderer). No dependency either.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any, TextIO

REQUEST_ID: ContextVar[str | None] = ContextVar("openglacier_request_id", default=None)
FORMATS = ("text", "json")
# Structured fields of a record (`extra={"fields": {...}}`): top-level keys of a
# JSON line; a text line has them in its message already.
FIELDS = "fields"
# Made once: json.dumps with any option builds an encoder per call.
_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode


class _Clock:
    """`time` of a record, ISO 8601 UTC with milliseconds; the part up to the
    seconds is made once per second (strftime is most of a line's cost)."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def stamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._prefix}.{int((created - second) * 1000):03d}Z"


def request_id_of(record: logging.LogRecord) -> str | None:
    """The record's own `request_id` (extra=...), else the request being served."""
    given: str | None = record.__dict__.get("request_id")
    return given if given is not None else REQUEST_ID.get()


class TextFormatter(logging.Formatter):
    """`TIME LEVEL LOGGER MESSAGE[ request_id=ID]`, a traceback on the lines after."""

    def __init__(self) -> None:
        super().__init__()
        self._clock = _Clock()

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{self._clock.stamp(record.created)} {record.levelname} {record.name} "
            f"{record.getMessage()}"
        )
        request_id = request_id_of(record)
        if request_id is not None:
            line += f" request_id={request_id}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id (when
    serving a request), the record's fields, and `exception` (its traceback)."""

    def __init__(self) -> None:
        super().__init__()
        self._clock = _Clock()

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self._clock.stamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_of(record)
        if request_id is not None:
            line["request_id"] = request_id
        fields = record.__dict__.get(FIELDS)
        if fields:
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return _encode(line)


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is when a line is written, so a rich progress
    display that redirects stderr (scrub now, blobs migrate) prints log lines
    above its bar instead of through it."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass  # always the current sys.stderr


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure(level: str = "info", log_format: str = "text", *, only_ours: bool = False) -> None:
    """Route every logger of the process through one stderr handler.

    Replaces the root's handlers (this process is ours: serve, worker, a CLI
    command), so calling it again, as each API process does, is harmless.
    `only_ours`: other libraries' lines only from WARNING (CLI commands with a
    progress display), ours at `level`.
    """
    handler = StderrHandler()
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    number = logging.getLevelName(level.upper())
    root.setLevel(max(number, logging.WARNING) if only_ours else number)
    logging.getLogger("openglacier").setLevel(number)
    # Alembic says "Context impl ..." and "Will assume ..." at every start, and
    # those would come before a refused start's one line: only at debug.
    alembic = logging.INFO if number <= logging.DEBUG else max(logging.WARNING, number)
    logging.getLogger("alembic").setLevel(alembic)
    # Ours replaces uvicorn's access log (api/metering.py); its other lines stay.
    logging.getLogger("uvicorn.access").disabled = True
    _skip_unused_lookups()


def _skip_unused_lookups() -> None:
    """No line shows the caller's file and line, thread or process: a record
    without them is ~1.6 us cheaper (of ~10 us per access line, measured), the
    logging HOWTO's "Optimization" settings."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False

"""The log formatters (openglacier.logs): fields of a line, the request id from the
context (also on a worker thread), tracebacks kept on one JSON line."""

from __future__ import annotations

import json
import logging
import re
import sys

import anyio
import anyio.to_thread

from openglacier.logs import FIELDS, REQUEST_ID, JsonFormatter, TextFormatter

TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("openglacier.test", logging.WARNING, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_text_line_has_time_level_logger_message_and_request_id() -> None:
    token = REQUEST_ID.set("RID-1")
    try:
        line = TextFormatter().format(record("hello %s", "world"))
    finally:
        REQUEST_ID.reset(token)
    assert re.fullmatch(rf"{TIME} WARNING openglacier\.test hello world request_id=RID-1", line)
    assert " request_id=" not in TextFormatter().format(record())  # outside a request


def test_json_line_has_the_fields_and_an_explicit_request_id_wins() -> None:
    token = REQUEST_ID.set("from-context")
    try:
        line = JsonFormatter().format(
            record("%d bytes", 5, request_id="explicit", **{FIELDS: {"bytes_in": 5}})
        )
    finally:
        REQUEST_ID.reset(token)
    parsed = json.loads(line)
    assert re.fullmatch(TIME, parsed.pop("time"))
    assert parsed == {
        "level": "WARNING",
        "logger": "openglacier.test",
        "message": "5 bytes",
        "request_id": "explicit",
        "bytes_in": 5,
    }


def test_a_traceback_stays_on_one_json_line() -> None:
    try:
        raise ValueError("broken\nacross lines")
    except ValueError:
        failed = record("failed", exc_info=sys.exc_info())
    line = JsonFormatter().format(failed)
    assert "\n" not in line
    assert "ValueError: broken" in json.loads(line)["exception"]


def test_the_request_id_reaches_worker_threads() -> None:
    """Domain and store code runs on anyio worker threads; their lines carry the id."""

    async def serve() -> str:
        REQUEST_ID.set("RID-thread")
        return await anyio.to_thread.run_sync(lambda: JsonFormatter().format(record()))

    assert json.loads(anyio.run(serve))["request_id"] == "RID-thread"

"""Glacier Select jobs (spec 7): request validation and execution.

Execution streams the archive's CSV into a temporary on-disk SQLite database
(batched inserts, constant memory), runs the query that `select_sql.py`
checked and rendered, and writes the output the way Glacier writes to S3:

    {prefix}/{job id}/job.txt               the job description, written first
    {prefix}/{job id}/results/00000001.csv  the rows (one result object)
    {prefix}/{job id}/result_manifest.txt   the result object keys, on success
    {prefix}/{job id}/errors/00000001.txt   the error, on failure
    {prefix}/{job id}/error_manifest.txt    the error object keys, on failure

Results go to a single object, streamed from the query cursor.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openglacier.domain.select_sql import ParsedQuery, parse_query, render
from openglacier.errors import (
    InvalidParameterValueException,
    MissingParameterValueException,
    SerializationException,
)
from openglacier.ports import OutputSink
from openglacier.streams import buffered

log = logging.getLogger("openglacier.select")

MAX_LOCATION = 512  # bytes of prefix + job path (spec 7.1)
BATCH = 5000
ENCRYPTION_TYPES = ("AES256", "aws:kms")
HEADER_INFO = ("USE", "IGNORE", "NONE")
QUOTE_FIELDS = ("ALWAYS", "ASNEEDED")
RECORD_DELIMITERS = ("\n", "\r", "\r\n")
CSV_MEMBERS_IN = (
    "FileHeaderInfo",
    "Comments",
    "QuoteEscapeCharacter",
    "RecordDelimiter",
    "FieldDelimiter",
    "QuoteCharacter",
)
CSV_MEMBERS_OUT = (
    "QuoteFields",
    "QuoteEscapeCharacter",
    "RecordDelimiter",
    "FieldDelimiter",
    "QuoteCharacter",
)


@dataclass(frozen=True)
class CsvInput:
    header_info: str = "NONE"
    comments: str | None = None
    quote_escape: str = '"'
    record_delimiter: str = "\n"
    field_delimiter: str = ","
    quote: str = '"'


@dataclass(frozen=True)
class CsvOutput:
    quote_fields: str = "ASNEEDED"
    quote_escape: str = '"'
    record_delimiter: str = "\n"
    field_delimiter: str = ","
    quote: str = '"'


@dataclass(frozen=True)
class SelectRequest:
    parameters: dict[str, Any]  # as sent (echoed in DescribeJob)
    output_location: dict[str, Any]  # as sent
    bucket: str
    prefix: str
    query: ParsedQuery = field(repr=False, compare=False)
    csv_in: CsvInput = CsvInput()
    csv_out: CsvOutput = CsvOutput()


@dataclass(frozen=True)
class SelectOutcome:
    succeeded: bool
    message: str


# --- validation (InitiateJob) -----------------------------------------------------------


def _object(value: Any, member: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SerializationException(f"Member {member} must be an object.")
    return {k: v for k, v in value.items() if v is not None}


def _text(container: dict[str, Any], key: str, member: str, *, required: bool = False) -> str:
    value = container.get(key)
    if value is None:
        if required:
            raise MissingParameterValueException(f"Required parameter missing: {member}")
        return ""
    if not isinstance(value, str):
        raise SerializationException(f"Member {member} must be a string.")
    return value


def _char(container: dict[str, Any], key: str, member: str, default: str) -> str:
    value = _text(container, key, member) or default
    if len(value) != 1 and not (key == "RecordDelimiter" and value in RECORD_DELIMITERS):
        raise InvalidParameterValueException(f"Invalid {member}: it must be one character.")
    if key == "RecordDelimiter" and value not in RECORD_DELIMITERS:
        raise InvalidParameterValueException(
            f"Invalid {member}: only newline, carriage return or CRLF record delimiters "
            "are supported."
        )
    if key == "FieldDelimiter" and not (value in "\n\r" or 32 <= ord(value) <= 126):
        raise InvalidParameterValueException(f"Invalid {member}: {value!r}.")
    return value


def _serialization(params: dict[str, Any], key: str) -> dict[str, Any]:
    value = params.get(key)
    if value is None:
        return {}
    outer = _object(value, f"SelectParameters.{key}")
    unknown = [k for k in outer if k.lower() != "csv"]
    if unknown:
        raise InvalidParameterValueException(
            f"Invalid SelectParameters.{key}: only CSV is supported (got {unknown[0]})."
        )
    inner: Any = next(iter(outer.values()), {})
    return _object(inner, f"SelectParameters.{key}.csv")


def _csv_input(params: dict[str, Any]) -> CsvInput:
    raw = _serialization(params, "InputSerialization")
    member = "SelectParameters.InputSerialization.csv."
    header = (_text(raw, "FileHeaderInfo", member + "FileHeaderInfo") or "NONE").upper()
    if header not in HEADER_INFO:
        raise InvalidParameterValueException(
            f"Invalid {member}FileHeaderInfo: valid values are USE, IGNORE, NONE."
        )
    comments = _text(raw, "Comments", member + "Comments") or None
    if comments is not None and len(comments) != 1:
        raise InvalidParameterValueException(f"Invalid {member}Comments: one character.")
    quote = _char(raw, "QuoteCharacter", member + "QuoteCharacter", '"')
    return CsvInput(
        header_info=header,
        comments=comments,
        # Unset, the escape is the quote character itself (a doubled quote).
        quote_escape=_char(raw, "QuoteEscapeCharacter", member + "QuoteEscapeCharacter", quote),
        record_delimiter=_char(raw, "RecordDelimiter", member + "RecordDelimiter", "\n"),
        field_delimiter=_char(raw, "FieldDelimiter", member + "FieldDelimiter", ","),
        quote=quote,
    )


def _csv_output(params: dict[str, Any]) -> CsvOutput:
    raw = _serialization(params, "OutputSerialization")
    member = "SelectParameters.OutputSerialization.csv."
    quote_fields = (_text(raw, "QuoteFields", member + "QuoteFields") or "ASNEEDED").upper()
    if quote_fields not in QUOTE_FIELDS:
        raise InvalidParameterValueException(
            f"Invalid {member}QuoteFields: valid values are ALWAYS, ASNEEDED."
        )
    quote = _char(raw, "QuoteCharacter", member + "QuoteCharacter", '"')
    return CsvOutput(
        quote_fields=quote_fields,
        quote_escape=_char(raw, "QuoteEscapeCharacter", member + "QuoteEscapeCharacter", quote),
        record_delimiter=_char(raw, "RecordDelimiter", member + "RecordDelimiter", "\n"),
        field_delimiter=_char(raw, "FieldDelimiter", member + "FieldDelimiter", ","),
        quote=quote,
    )


def _s3_location(output_location: Any) -> tuple[dict[str, Any], str, str]:
    if output_location is None:
        raise MissingParameterValueException("Required parameter missing: OutputLocation")
    location = _object(output_location, "OutputLocation")
    if location.get("S3") is None:
        raise MissingParameterValueException("Required parameter missing: OutputLocation.S3")
    s3 = _object(location["S3"], "OutputLocation.S3")
    bucket = _text(s3, "BucketName", "OutputLocation.S3.BucketName", required=True)
    prefix = _text(s3, "Prefix", "OutputLocation.S3.Prefix", required=True)
    if not bucket:
        raise MissingParameterValueException("Required parameter missing: BucketName")
    encryption = s3.get("Encryption")
    if encryption is not None:
        kind = _text(_object(encryption, "OutputLocation.S3.Encryption"), "EncryptionType", "")
        if kind and kind not in ENCRYPTION_TYPES:
            raise InvalidParameterValueException(
                f"Invalid EncryptionType: {kind}. Valid values are: AES256, aws:kms."
            )
    return location, bucket, prefix


def parse_select_job(select_parameters: Any, output_location: Any) -> SelectRequest:
    location, bucket, prefix = _s3_location(output_location)
    if select_parameters is None:
        raise MissingParameterValueException("Required parameter missing: SelectParameters")
    params = _object(select_parameters, "SelectParameters")
    kind = _text(params, "ExpressionType", "SelectParameters.ExpressionType", required=True)
    if kind != "SQL":
        raise InvalidParameterValueException(
            f"Invalid SelectParameters.ExpressionType: {kind}. The only valid value is SQL."
        )
    expression = _text(params, "Expression", "SelectParameters.Expression", required=True)
    query = parse_query(expression)
    # The job id is 92 characters; Glacier reserves the rest of S3's key length.
    if len(_path(prefix, "J" * 92).encode()) > MAX_LOCATION:
        raise InvalidParameterValueException(
            f"Invalid OutputLocation.S3.Prefix: the output path may not exceed {MAX_LOCATION} "
            "bytes."
        )
    return SelectRequest(
        parameters=select_parameters,
        output_location=location,
        bucket=bucket,
        prefix=prefix,
        query=query,
        csv_in=_csv_input(params),
        csv_out=_csv_output(params),
    )


def _path(prefix: str, job_id: str) -> str:
    return f"{prefix.rstrip('/')}/{job_id}/" if prefix else f"{job_id}/"


def job_output_path(request: SelectRequest, job_id: str) -> str:
    return _path(request.prefix, job_id)


# --- execution (runner) -------------------------------------------------------------------


def _reader(request: SelectRequest, data: Iterable[bytes]) -> Iterator[list[str]]:
    spec = request.csv_in
    text = io.TextIOWrapper(buffered(data), encoding="utf-8", newline="")
    same = spec.quote_escape == spec.quote
    rows = csv.reader(
        text,
        delimiter=spec.field_delimiter,
        quotechar=spec.quote,
        escapechar=None if same else spec.quote_escape,
        doublequote=same,
        strict=True,
    )
    for row in rows:
        if spec.comments and row and row[0].startswith(spec.comments):
            continue
        yield row


def _utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _load(db: sqlite3.Connection, rows: Iterator[list[str]]) -> int:
    """Insert every row into archive(c1..cN), widening the table as rows need."""
    width = 0
    batch: list[list[str | None]] = []

    def flush() -> None:
        if batch:
            marks = ",".join("?" * width)
            padded = [r + [None] * (width - len(r)) for r in batch]
            db.executemany(f"INSERT INTO archive VALUES ({marks})", padded)  # noqa: S608
            batch.clear()

    db.execute("CREATE TABLE archive (c1)")
    width = 1
    for row in rows:
        if len(row) > width:
            flush()
            for i in range(width + 1, len(row) + 1):
                db.execute(f"ALTER TABLE archive ADD COLUMN c{i}")
            width = len(row)
        batch.append(list(row))
        if len(batch) >= BATCH:
            flush()
    flush()
    return width


def _writer_options(spec: CsvOutput) -> dict[str, Any]:
    same = spec.quote_escape == spec.quote
    return {
        "delimiter": spec.field_delimiter,
        "quotechar": spec.quote,
        "escapechar": None if same else spec.quote_escape,
        "doublequote": same,
        "lineterminator": spec.record_delimiter,
        "quoting": csv.QUOTE_ALL if spec.quote_fields == "ALWAYS" else csv.QUOTE_MINIMAL,
    }


def _csv_chunks(cursor: sqlite3.Cursor, spec: CsvOutput) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, **_writer_options(spec))
    while rows := cursor.fetchmany(BATCH):
        writer.writerows(["" if v is None else v for v in row] for row in rows)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()


def run_select(
    request: SelectRequest,
    job_id: str,
    job_description: dict[str, Any],
    data: Iterable[bytes],
    sink: OutputSink,
) -> SelectOutcome:
    base = (request.prefix.rstrip("/") + "/" if request.prefix else "") + job_id + "/"
    sink.put(request.bucket, base + "job.txt", [json.dumps(job_description).encode()], "text/plain")
    with tempfile.TemporaryDirectory(prefix="og-select-") as tmp:
        # The sink may pull result chunks from its own transfer thread; reads
        # are sequential, so sharing the connection across threads is safe.
        db = sqlite3.connect(Path(tmp) / "select.db", check_same_thread=False)
        try:
            return _execute(request, base, data, sink, db)
        finally:
            db.close()


def _execute(
    request: SelectRequest,
    base: str,
    data: Iterable[bytes],
    sink: OutputSink,
    db: sqlite3.Connection,
) -> SelectOutcome:
    db.create_function("UTCNOW", 0, _utcnow)
    db.create_function("TO_STRING", 1, lambda v: None if v is None else str(v))
    db.create_function("TO_TIMESTAMP", 1, lambda v: v)
    try:
        rows = _reader(request, data)
        header = next(rows, None) if request.csv_in.header_info != "NONE" else None
        width = _load(db, rows)
        names = header if request.csv_in.header_info == "USE" else None
        sql, _ = render(request.query, names, width)
        cursor = db.execute(sql)
        key = base + "results/00000001.csv"
        sink.put(request.bucket, key, _csv_chunks(cursor, request.csv_out), "text/csv")
    except (csv.Error, sqlite3.Error, UnicodeDecodeError, InvalidParameterValueException) as exc:
        message = f"Select failed: {exc}"
        error_key = base + "errors/00000001.txt"
        sink.put(request.bucket, error_key, [message.encode()], "text/plain")
        sink.put(request.bucket, base + "error_manifest.txt", [error_key.encode()], "text/plain")
        log.warning("select %s: %s", base, message)
        return SelectOutcome(False, message)
    sink.put(request.bucket, base + "result_manifest.txt", [key.encode()], "text/plain")
    return SelectOutcome(True, "Succeeded")

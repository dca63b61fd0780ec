"""Glacier Select jobs (spec 7): request validation and execution.

Execution streams the archive through `csv.reader` in batches of at most `BATCH`
records (and about `BATCH_CHARS` characters); `evaluate.BatchEvaluator` runs
the query that `sql.py` checked and translated over each batch in an
in-memory SQLite table holding only that batch, and the result CSV streams to
the sink as it is produced: memory stays constant and nothing is spooled to
disk, whatever the archive's size. The output is laid out the way Glacier
writes to S3 (spec 7.3):

    {prefix}/{job id}/job.txt               the job description, written first
    {prefix}/{job id}/results/00000001.csv  the rows (one result object)
    {prefix}/{job id}/result_manifest.txt   the result object key, on success
    {prefix}/{job id}/errors/00000001.txt   the error, on failure
    {prefix}/{job id}/error_manifest.txt    the error object key, on failure

A query that fails part-way leaves no result object: the sink discards an object
whose chunks raise (a directory sink removes its temp file, an S3 upload aborts).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from openglacier.domain.select.evaluate import BatchEvaluator, SelectRuntimeError
from openglacier.domain.select.sql import Query, compile_query, parse_query
from openglacier.errors import (
    InvalidParameterValueException,
    MissingParameterValueException,
    SerializationException,
)
from openglacier.ports import OutputSink
from openglacier.streams import buffered

log = logging.getLogger("openglacier.select")

MAX_LOCATION = 512  # bytes of prefix + job path (spec 7.1)
BATCH = 5000  # records evaluated together
BATCH_CHARS = 8 << 20  # ... or fewer, when they are long
CHUNK_CHARS = 1 << 20  # result bytes handed to the sink at a time
MAX_RECORD = 1 << 20  # characters per record (spec 7.2: 1 MB)
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
    query: Query = field(repr=False, compare=False)
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
    csv_in, csv_out = _csv_input(params), _csv_output(params)
    query = parse_query(expression, header_names=csv_in.header_info == "USE")
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
        csv_in=csv_in,
        csv_out=csv_out,
    )


def _path(prefix: str, job_id: str) -> str:
    return f"{prefix.rstrip('/')}/{job_id}/" if prefix else f"{job_id}/"


def job_output_path(request: SelectRequest, job_id: str) -> str:
    return _path(request.prefix, job_id)


# --- execution (runner) -------------------------------------------------------------------


class _Lines:
    """The archive's text, line by line, for `csv.reader`. Comment lines are dropped
    only where a record starts (never inside a quoted field); a line longer than the
    record limit fails the job instead of filling memory; `chars` counts what was read."""

    def __init__(self, data: Iterable[bytes], comments: str | None) -> None:
        # utf-8-sig: a byte-order mark at the start is not part of the first field.
        self._text = io.TextIOWrapper(buffered(data), encoding="utf-8-sig", newline="")
        self._comments = comments
        self.record_start = True
        self.chars = 0

    def __iter__(self) -> Iterator[str]:
        while line := self._text.readline(MAX_RECORD + 1):
            if len(line) > MAX_RECORD:
                raise SelectRuntimeError(
                    "OverMaxRecordSize", f"A record is longer than {MAX_RECORD} characters."
                )
            if self.record_start and self._comments and line.startswith(self._comments):
                continue
            self.record_start = False
            self.chars += len(line)
            yield line


class _Records:
    """The archive's CSV records, in batches of bounded size."""

    def __init__(self, spec: CsvInput, data: Iterable[bytes]) -> None:
        same = spec.quote_escape == spec.quote
        self._lines = _Lines(data, spec.comments)
        self._reader = csv.reader(
            self._lines,
            delimiter=spec.field_delimiter,
            quotechar=spec.quote,
            escapechar=None if same else spec.quote_escape,
            doublequote=same,
            strict=True,
        )
        self.count = 0  # records read, header included

    def next(self) -> list[str] | None:
        try:
            while (row := next(self._reader, None)) is not None:
                self._lines.record_start = True
                self.count += 1
                if row:  # blank lines are not records
                    return row
            return None
        except csv.Error as exc:
            raise SelectRuntimeError(
                "CSVParsingError", f"Malformed CSV at record {self.count + 1}: {exc}."
            ) from None
        except UnicodeDecodeError as exc:
            raise SelectRuntimeError(
                "InvalidTextEncoding", f"The archive is not UTF-8 text: {exc.reason}."
            ) from None

    def batches(self) -> Iterator[list[list[str]]]:
        batch: list[list[str]] = []
        start = self._lines.chars
        while (row := self.next()) is not None:
            batch.append(row)
            if len(batch) >= BATCH or self._lines.chars - start >= BATCH_CHARS:
                yield batch
                batch, start = [], self._lines.chars
        if batch:
            yield batch


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


def _result_chunks(
    records: _Records, evaluator: BatchEvaluator, spec: CsvOutput
) -> Iterator[bytes]:
    """The result CSV, produced as the sink reads it (constant memory)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, **_writer_options(spec))
    for batch in records.batches():
        writer.writerows(evaluator.evaluate(batch))
        if buffer.tell() >= CHUNK_CHARS:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def run_select(
    request: SelectRequest,
    job_id: str,
    job_description: dict[str, Any],
    data: Iterable[bytes],
    sink: OutputSink,
    *,
    now: datetime | None = None,
) -> SelectOutcome:
    """Run the job (blocking); `now` is what UTCNOW() returns (default: the clock).

    Data and query problems fail the job (errors/ and error_manifest.txt are
    written, the outcome says why); a sink failure raises `StorageError`, whose
    message names the object it could not write.
    """
    base = job_output_path(request, job_id)
    sink.put(request.bucket, base + "job.txt", [json.dumps(job_description).encode()], "text/plain")
    if csv.field_size_limit() < MAX_RECORD:
        csv.field_size_limit(MAX_RECORD)  # process-wide; the default is 128 KiB
    try:
        key = _write_results(request, base, data, sink, now or datetime.now(UTC))
    except SelectRuntimeError as exc:
        message = f"Select failed: {exc}"
        error_key = base + "errors/00000001.txt"
        sink.put(request.bucket, error_key, [message.encode()], "text/plain")
        sink.put(request.bucket, base + "error_manifest.txt", [error_key.encode()], "text/plain")
        log.info("select %s: %s", base, message)
        return SelectOutcome(False, message)
    sink.put(request.bucket, base + "result_manifest.txt", [key.encode()], "text/plain")
    return SelectOutcome(True, "Succeeded")


def _write_results(
    request: SelectRequest, base: str, data: Iterable[bytes], sink: OutputSink, now: datetime
) -> str:
    records = _Records(request.csv_in, data)
    header = records.next() if request.csv_in.header_info != "NONE" else None
    names = (header or []) if request.csv_in.header_info == "USE" else None
    evaluator = BatchEvaluator(compile_query(request.query, names, now))
    try:
        key = base + "results/00000001.csv"
        sink.put(
            request.bucket, key, _result_chunks(records, evaluator, request.csv_out), "text/csv"
        )
    finally:
        evaluator.close()
    return key

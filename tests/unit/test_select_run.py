"""Glacier Select jobs end to end on a directory sink (spec 7.1, 7.3): CSV input and
output options, batches, and failures that must leave errors/ and no results."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from openglacier.domain.select import jobs as select
from openglacier.domain.select.jobs import parse_select_job, run_select
from openglacier.errors import InvalidParameterValueException
from openglacier.storage.outputs import DirectorySink

JOB = "R" * 92
BASE = f"p/{JOB}/"
RESULT = BASE + "results/00000001.csv"


def run(
    tmp_path: Path,
    expression: str,
    data: bytes,
    *,
    chunk: int = 5,
    csv_in: dict[str, Any] | None = None,
    csv_out: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> tuple[select.SelectOutcome, dict[str, bytes]]:
    parameters: dict[str, Any] = {"ExpressionType": "SQL", "Expression": expression}
    if csv_in is not None:
        parameters["InputSerialization"] = {"csv": csv_in}
    if csv_out is not None:
        parameters["OutputSerialization"] = {"csv": csv_out}
    request = parse_select_job(parameters, {"S3": {"BucketName": "b", "Prefix": "p"}})
    chunks = (data[i : i + chunk] for i in range(0, len(data), chunk))
    outcome = run_select(request, JOB, {"JobId": JOB}, chunks, DirectorySink(tmp_path), now=now)
    root = tmp_path / "b"
    files = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    return outcome, files


def test_output_quoting_as_needed_and_always(tmp_path: Path) -> None:
    data = b'plain,"has,comma","has ""quote""","multi\nline"\n'
    outcome, files = run(tmp_path / "a", "SELECT * FROM archive", data)
    assert outcome.succeeded
    assert files[RESULT] == data
    outcome, files = run(tmp_path / "b", "SELECT _1, _3 FROM archive", data, csv_out={
        "QuoteFields": "always", "QuoteCharacter": "'", "QuoteEscapeCharacter": "\\",
        "FieldDelimiter": ";", "RecordDelimiter": "\r",
    })  # fmt: skip
    assert outcome.succeeded
    assert files[RESULT] == b"'plain';'has \"quote\"'\r"
    outcome, files = run(
        tmp_path / "c",
        "SELECT _1 || '''s' FROM archive",
        data,
        csv_out={"QuoteCharacter": "'", "QuoteEscapeCharacter": "\\"},
    )
    # With an escape character distinct from the quote, csv escapes instead of quoting;
    # a reader with the same settings reads the same value back.
    assert files[RESULT] == b"plain\\'s\n"


def test_input_options(tmp_path: Path) -> None:
    data = (
        b"\xef\xbb\xbfname|note\r\n"  # byte-order mark, CRLF records
        b"# skipped comment\r\n"
        b'a|"say \\"hi\\""\r\n'
        b'b|"two\r\n# not a comment: inside quotes"\r\n'
    )
    outcome, files = run(
        tmp_path,
        "SELECT note FROM archive WHERE name <> 'x'",
        data,
        csv_in={
            "FileHeaderInfo": "Use",
            "FieldDelimiter": "|",
            "QuoteEscapeCharacter": "\\",
            "Comments": "#",
            "RecordDelimiter": "\r\n",
        },
    )
    assert outcome.succeeded, outcome.message
    assert files[RESULT] == b'"say ""hi"""\n"two\r\n# not a comment: inside quotes"\n'


def test_header_names_need_use_at_initiation() -> None:
    with pytest.raises(InvalidParameterValueException, match="FileHeaderInfo USE"):
        parse_select_job(
            {
                "ExpressionType": "SQL",
                "Expression": "SELECT name FROM archive",
                "InputSerialization": {"csv": {"FileHeaderInfo": "IGNORE"}},
            },
            {"S3": {"BucketName": "b", "Prefix": "p"}},
        )


def test_unterminated_string_is_a_400_not_a_500() -> None:
    with pytest.raises(InvalidParameterValueException, match="syntax error"):
        parse_select_job(
            {"ExpressionType": "SQL", "Expression": "SELECT 'abc FROM archive"},
            {"S3": {"BucketName": "b", "Prefix": "p"}},
        )


def test_batches_keep_order_and_selection(tmp_path: Path) -> None:
    rows = 3 * select.BATCH + 17
    data = b"".join(b"%d,%s\n" % (i, b"hit" if i % 997 == 0 else b"miss") for i in range(rows))
    outcome, files = run(tmp_path, "SELECT * FROM archive WHERE _2 = 'hit'", data, chunk=65536)
    assert outcome.succeeded
    assert files[RESULT] == b"".join(b"%d,hit\n" % i for i in range(0, rows, 997))


def test_utcnow_is_the_given_time(tmp_path: Path) -> None:
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    outcome, files = run(tmp_path, "SELECT UTCNOW() FROM archive", b"x\n", now=now)
    assert outcome.succeeded
    assert files[RESULT] == b"2030-01-02T03:04:05Z\n"


@pytest.mark.parametrize(
    ("expression", "data", "code"),
    [
        # The bad value comes after several batches of good ones.
        (
            "SELECT _1 FROM archive WHERE CAST(_1 AS INT) >= 0",
            b"".join(b"%d\n" % i for i in range(2 * select.BATCH)) + b"oops\n",
            "CastFailed",
        ),
        ("SELECT * FROM archive", b"ok\n\xff\xfe\n", "InvalidTextEncoding"),
        ("SELECT * FROM archive", b'a,"unterminated\n', "CSVParsingError"),
        ("SELECT * FROM archive", b'a,"x"y\n', "CSVParsingError"),
        ("SELECT * FROM archive", b"a\n" + b"x" * (select.MAX_RECORD + 1), "OverMaxRecordSize"),
        ("SELECT 1 / CAST(_1 AS INT) FROM archive", b"1\n0\n", "DivisionByZero"),
    ],
)
def test_failures_write_errors_and_no_results(
    tmp_path: Path, expression: str, data: bytes, code: str
) -> None:
    outcome, files = run(tmp_path, expression, data, chunk=4096)
    assert not outcome.succeeded
    assert outcome.message.startswith(f"Select failed: {code}: ")
    # No result object, not even a partial one or its temp file (spec 7.3).
    assert set(files) == {
        BASE + "job.txt",
        BASE + "errors/00000001.txt",
        BASE + "error_manifest.txt",
    }
    assert files[BASE + "errors/00000001.txt"] == outcome.message.encode()
    assert files[BASE + "error_manifest.txt"] == (BASE + "errors/00000001.txt").encode()


def test_empty_archive_succeeds_with_an_empty_result(tmp_path: Path) -> None:
    outcome, files = run(tmp_path, "SELECT * FROM archive", b"", csv_in={"FileHeaderInfo": "USE"})
    assert outcome.succeeded
    assert files[RESULT] == b""
    assert files[BASE + "result_manifest.txt"] == RESULT.encode()

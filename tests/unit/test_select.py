"""Glacier Select (spec 7): request validation with exact errors, the SQL subset,
CSV input/output options, and the output layout, on a directory sink."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from openglacier.domain.select.jobs import job_output_path, parse_select_job, run_select
from openglacier.errors import (
    GlacierError,
    InvalidParameterValueException,
    MissingParameterValueException,
    SerializationException,
)
from openglacier.storage.outputs import DirectorySink, open_output_sink

JOB = "J" * 92
LOCATION = {"S3": {"BucketName": "out", "Prefix": "select"}}
PEOPLE = b"name,age,city\nalice,34,Paris\nbob,27,Oslo\ncarol,41,Paris\ndave,,Rome\n"


def params(expression: str, **members: Any) -> dict[str, Any]:
    return {"ExpressionType": "SQL", "Expression": expression, **members}


def header_use() -> dict[str, Any]:
    return {"csv": {"FileHeaderInfo": "USE"}}


def run(
    tmp_path: Path,
    expression: str,
    data: bytes = PEOPLE,
    *,
    chunk: int = 7,
    **members: Any,
) -> tuple[bool, str, dict[str, bytes]]:
    request = parse_select_job(params(expression, **members), LOCATION)
    sink = DirectorySink(tmp_path)
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    outcome = run_select(request, JOB, {"JobId": JOB}, chunks, sink)
    root = tmp_path / "out"
    files = {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".tmp")
    }
    return outcome.succeeded, outcome.message, files


def result_rows(files: dict[str, bytes]) -> list[list[str]]:
    body = files[f"select/{JOB}/results/00000001.csv"].decode()
    return list(csv.reader(io.StringIO(body)))


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("select_parameters", "location", "error"),
    [
        (params("SELECT * FROM archive"), None, MissingParameterValueException),
        (params("SELECT * FROM archive"), {}, MissingParameterValueException),
        (params("SELECT * FROM archive"), {"S3": {"Prefix": "p"}}, MissingParameterValueException),
        (
            params("SELECT * FROM archive"),
            {"S3": {"BucketName": "b"}},
            MissingParameterValueException,
        ),
        (params("SELECT * FROM archive"), {"S3": "b"}, SerializationException),
        (None, LOCATION, MissingParameterValueException),
        ({"Expression": "SELECT * FROM archive"}, LOCATION, MissingParameterValueException),
        ({"ExpressionType": "SQL"}, LOCATION, MissingParameterValueException),
        ({"ExpressionType": "XPATH", "Expression": "x"}, LOCATION, InvalidParameterValueException),
        (
            params("SELECT * FROM archive", InputSerialization={"json": {}}),
            LOCATION,
            InvalidParameterValueException,
        ),
        (
            params(
                "SELECT * FROM archive", InputSerialization={"csv": {"FileHeaderInfo": "MAYBE"}}
            ),
            LOCATION,
            InvalidParameterValueException,
        ),
        (
            params("SELECT * FROM archive", InputSerialization={"csv": {"FieldDelimiter": "::"}}),
            LOCATION,
            InvalidParameterValueException,
        ),
        (
            params("SELECT * FROM archive", OutputSerialization={"csv": {"QuoteFields": "NEVER"}}),
            LOCATION,
            InvalidParameterValueException,
        ),
        (
            params("SELECT * FROM archive"),
            {"S3": {"BucketName": "b", "Prefix": "p" * 420}},
            InvalidParameterValueException,
        ),
        (
            params("SELECT * FROM archive"),
            {"S3": {"BucketName": "b", "Prefix": "p", "Encryption": {"EncryptionType": "SSE-C"}}},
            InvalidParameterValueException,
        ),
        (params("S" * 128_001), LOCATION, InvalidParameterValueException),
        (params("SELEKT * FROM archive"), LOCATION, InvalidParameterValueException),
        (params("SELECT _1 FROM archive LIMIT 3"), LOCATION, InvalidParameterValueException),
        (params("SELECT COUNT(*) FROM archive"), LOCATION, InvalidParameterValueException),
        (params("SELECT _1 FROM archive GROUP BY _1"), LOCATION, InvalidParameterValueException),
        (params("SELECT _1 FROM archive ORDER BY _1"), LOCATION, InvalidParameterValueException),
        (params("SELECT DISTINCT _1 FROM archive"), LOCATION, InvalidParameterValueException),
        (
            params("SELECT a._1 FROM archive a JOIN archive b ON a._1 = b._1"),
            LOCATION,
            InvalidParameterValueException,
        ),
        (
            params("SELECT _1 FROM archive WHERE _1 IN (SELECT _2 FROM archive)"),
            LOCATION,
            InvalidParameterValueException,
        ),
        (
            params("SELECT _1 FROM archive UNION SELECT _2 FROM archive"),
            LOCATION,
            InvalidParameterValueException,
        ),
        (params("SELECT _1 FROM s3object"), LOCATION, InvalidParameterValueException),
        (params("SELECT SHA2(_1) FROM archive"), LOCATION, InvalidParameterValueException),
        (params("SELECT x._1 FROM archive a"), LOCATION, InvalidParameterValueException),
    ],
)
def test_rejected_at_initiation(
    select_parameters: Any, location: Any, error: type[GlacierError]
) -> None:
    with pytest.raises(error):
        parse_select_job(select_parameters, location)


def test_output_path_and_echo() -> None:
    given = params("select _1 from ARCHIVE", InputSerialization={"csv": {"FileHeaderInfo": "use"}})
    request = parse_select_job(given, LOCATION)
    assert request.parameters == given  # echoed as sent (spec 7.1)
    assert request.csv_in.header_info == "USE"
    assert job_output_path(request, JOB) == f"select/{JOB}/"
    slash = parse_select_job(given, {"S3": {"BucketName": "b", "Prefix": "a/b/"}})
    assert job_output_path(slash, JOB) == f"a/b/{JOB}/"


# --- execution ----------------------------------------------------------------------------


def test_select_star_writes_the_layout(tmp_path: Path) -> None:
    ok, message, files = run(tmp_path, "SELECT * FROM archive")
    assert (ok, message) == (True, "Succeeded")
    assert set(files) == {
        f"select/{JOB}/job.txt",
        f"select/{JOB}/results/00000001.csv",
        f"select/{JOB}/result_manifest.txt",
    }
    assert files[f"select/{JOB}/job.txt"] == b'{"JobId": "' + JOB.encode() + b'"}'
    assert (
        files[f"select/{JOB}/result_manifest.txt"] == f"select/{JOB}/results/00000001.csv".encode()
    )
    assert result_rows(files) == [
        ["name", "age", "city"],
        ["alice", "34", "Paris"],
        ["bob", "27", "Oslo"],
        ["carol", "41", "Paris"],
        ["dave", "", "Rome"],
    ]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("SELECT _1 FROM archive WHERE _3 = 'Paris'", [["alice"], ["carol"]]),
        (
            "SELECT s._1, s._3 FROM archive s WHERE s._3 <> 'Paris'",
            [["bob", "Oslo"], ["dave", "Rome"]],
        ),
        ("SELECT name FROM archive WHERE CAST(age AS INT) > 30", [["alice"], ["carol"]]),
        ("SELECT \"city\" FROM archive WHERE NAME = 'bob'", [["Oslo"]]),
        ("SELECT name FROM archive WHERE CAST(age AS INT) BETWEEN 27 AND 34", [["alice"], ["bob"]]),
        ("SELECT name FROM archive WHERE city IN ('Oslo', 'Rome')", [["bob"], ["dave"]]),
        ("SELECT name FROM archive WHERE name LIKE '%o%'", [["bob"], ["carol"]]),
        ("SELECT name FROM archive WHERE NULLIF(age, '') IS NULL", [["dave"]]),
        (
            "SELECT UPPER(name), CHAR_LENGTH(city) FROM archive WHERE name = 'alice'",
            [["ALICE", "5"]],
        ),
        (
            "SELECT COALESCE(NULLIF(age, ''), 'unknown') FROM archive WHERE name = 'dave'",
            [["unknown"]],
        ),
        ("SELECT CAST(age AS INT) + 1 AS next FROM archive WHERE name = 'bob'", [["28"]]),
        ("SELECT name FROM archive WHERE NOT (city = 'Paris' OR city = 'Oslo')", [["dave"]]),
        (
            "SELECT SUBSTRING(name, 2, 3), LOWER(TRIM('  X  ')) FROM object WHERE name = 'carol'",
            [["aro", "x"]],
        ),
    ],
)
def test_queries_with_header(tmp_path: Path, expression: str, expected: list[list[str]]) -> None:
    ok, message, files = run(tmp_path, expression, InputSerialization=header_use())
    assert ok, message
    assert result_rows(files) == expected


def test_header_ignore_and_positions(tmp_path: Path) -> None:
    ok, _, files = run(
        tmp_path,
        "SELECT _2 FROM archive WHERE _1 = 'bob'",
        InputSerialization={"csv": {"FileHeaderInfo": "IGNORE"}},
    )
    assert ok
    assert result_rows(files) == [["27"]]


def test_input_options(tmp_path: Path) -> None:
    data = b"# a comment\nx;'semi;colon';1\ny;'it''s';2\n"
    ok, message, files = run(
        tmp_path,
        "SELECT _2, _3 FROM archive",
        data,
        InputSerialization={"csv": {"FieldDelimiter": ";", "QuoteCharacter": "'", "Comments": "#"}},
    )
    assert ok, message
    assert result_rows(files) == [["semi;colon", "1"], ["it's", "2"]]


def test_output_options(tmp_path: Path) -> None:
    ok, _, files = run(
        tmp_path,
        "SELECT _1, _3 FROM archive WHERE _1 = 'alice'",
        OutputSerialization={
            "csv": {"QuoteFields": "ALWAYS", "FieldDelimiter": "|", "RecordDelimiter": "\r\n"}
        },
    )
    assert ok
    assert files[f"select/{JOB}/results/00000001.csv"] == b'"alice"|"Paris"\r\n'


def test_rows_of_different_widths_read_missing_columns_as_null(tmp_path: Path) -> None:
    ok, _, files = run(tmp_path, "SELECT _1 FROM archive WHERE _3 IS NULL", b"a,1\nb,2,3\nc\n")
    assert ok
    assert result_rows(files) == [["a"], ["c"]]


def test_runtime_errors_are_written_and_fail_the_job(tmp_path: Path) -> None:
    ok, message, files = run(
        tmp_path,
        "SELECT nosuch FROM archive",
        InputSerialization=header_use(),
    )
    assert not ok
    assert "MissingHeaderName" in message
    assert set(files) == {
        f"select/{JOB}/job.txt",
        f"select/{JOB}/errors/00000001.txt",
        f"select/{JOB}/error_manifest.txt",
    }
    assert b"MissingHeaderName" in files[f"select/{JOB}/errors/00000001.txt"]
    assert files[f"select/{JOB}/error_manifest.txt"] == f"select/{JOB}/errors/00000001.txt".encode()


def test_malformed_csv_fails_the_job(tmp_path: Path) -> None:
    ok, _, files = run(tmp_path, "SELECT * FROM archive", b'a,"unterminated\n')
    assert not ok
    assert f"select/{JOB}/error_manifest.txt" in files
    assert f"select/{JOB}/result_manifest.txt" not in files


def test_large_input_streams(tmp_path: Path) -> None:
    rows = 200_000
    data = b"".join(b"%d,row-%d,%d\n" % (i, i, i % 7) for i in range(rows))
    ok, _, files = run(tmp_path, "SELECT _1 FROM archive WHERE _3 = '3'", data, chunk=1 << 20)
    assert ok
    assert len(result_rows(files)) == len([i for i in range(rows) if i % 7 == 3])


def test_output_sink_urls(tmp_path: Path) -> None:
    sink = open_output_sink(f"file://{tmp_path}", "", "", "us-east-1")
    sink.put("b", "k/x.txt", [b"a", b"b"], "text/plain")
    assert (tmp_path / "b" / "k" / "x.txt").read_bytes() == b"ab"
    with pytest.raises(ValueError, match="not configured"):
        open_output_sink("", "", "", "us-east-1")
    with pytest.raises(ValueError, match="s3"):
        open_output_sink("ftp://x", "", "", "us-east-1")

"""Glacier Select SQL (spec 7.2): what is rejected up front, and what the accepted
subset computes, evaluated by `select/evaluate.py`'s `BatchEvaluator` over in-memory rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from openglacier.domain.select.evaluate import BatchEvaluator, SelectRuntimeError
from openglacier.domain.select.sql import compile_query, parse_query
from openglacier.errors import InvalidParameterValueException

NOW = datetime(2024, 2, 29, 12, 30, 15, 250000, tzinfo=UTC)
ROWS = [
    ["Alice", "34", "Paris", "2020-01-31T10:00Z"],
    ["bob", "7", "Oslo", "2021-06-30T23:30:00.5+02:00"],
    ["carol", "", "paris", ""],
    ["dave", "-12.5"],
]
HEADER = ["Name", "Age", "City", "Seen"]


def evaluate(
    expression: str, rows: list[list[str]] = ROWS, header: list[str] | None = None
) -> list[list[Any]]:
    query = parse_query(expression, header_names=header is not None)
    evaluator = BatchEvaluator(compile_query(query, header, NOW))
    try:
        return [list(row) for row in evaluator.evaluate(rows)]
    finally:
        evaluator.close()


def column(expression: str, rows: list[list[str]] = ROWS) -> list[Any]:
    return [row[0] for row in evaluate(expression, rows)]


def rejected(expression: str, *, header_names: bool = False) -> str:
    with pytest.raises(InvalidParameterValueException) as info:
        parse_query(expression, header_names=header_names)
    assert info.value.message.startswith("Invalid SelectParameters.Expression: ")
    return info.value.message


# --- rejected at InitiateJob ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("SELECT 'abc FROM archive", "syntax error"),
        ("SELECT * FROM archive WHERE", "syntax error"),
        ("SELEKT * FROM archive", "syntax error"),
        ("", "exactly one SELECT"),
        ("SELECT * FROM archive; SELECT * FROM archive", "exactly one SELECT"),
        ("DELETE FROM archive", "only SELECT"),
        ("SELECT * FROM archive LIMIT 5", "LIMIT"),
        ("SELECT * FROM archive OFFSET 5", "OFFSET"),
        ("SELECT DISTINCT _1 FROM archive", "DISTINCT"),
        ("SELECT _1 FROM archive GROUP BY _1", "GROUP BY"),
        ("SELECT _1 FROM archive ORDER BY _1", "ORDER BY"),
        ("SELECT _1 FROM archive HAVING _1 = 'a'", "HAVING"),
        ("SELECT a._1 FROM archive a JOIN archive b ON a._1 = b._1", "JOIN"),
        ("SELECT a._1 FROM archive a, object b", "JOIN"),
        ("SELECT _1 FROM archive UNION SELECT _2 FROM archive", "UNION"),
        ("SELECT _1 FROM archive INTERSECT SELECT _2 FROM archive", "INTERSECT"),
        ("SELECT COUNT(*) FROM archive", "aggregate functions (COUNT)"),
        ("SELECT SUM(_1) FROM archive", "aggregate functions (SUM)"),
        ("SELECT MAX(_1) FROM archive", "aggregate functions (MAX)"),
        ("SELECT * FROM archive WHERE _1 IN (SELECT _2 FROM archive)", "subqueries"),
        ("SELECT * FROM (SELECT * FROM archive)", "subqueries"),
        ("SELECT * FROM archive WHERE EXISTS (SELECT 1)", "subqueries"),
        ("SELECT ABS(_1) FROM archive", "function ABS"),
        ("SELECT TO_STRING(UTCNOW(), 'y') FROM archive", "function TO_STRING"),
        ("SELECT * FROM s3object", "ARCHIVE or OBJECT"),
        ("SELECT * FROM db.archive", "ARCHIVE or OBJECT"),
        ("SELECT 1", "FROM ARCHIVE"),
        ("SELECT *, _1 FROM archive", "cannot be combined"),
        ("SELECT x._1 FROM archive a", "unknown qualifier"),
        ("SELECT archive._1 FROM archive a", "unknown qualifier"),
        ("SELECT a.b._1 FROM archive a", "nested paths"),
        ("SELECT name FROM archive", "needs FileHeaderInfo USE"),
        ("SELECT _1 FROM archive WHERE _1", "WHERE needs a boolean"),
        ("SELECT _1 FROM archive WHERE _1 = 'a' AND 'b'", "AND needs a boolean"),
        ("SELECT CAST(_1 AS BOOL) = 1 FROM archive", "incompatible types"),
        ("SELECT UTCNOW() > 5 FROM archive", "incompatible types"),
        ("SELECT TRUE + 1 FROM archive", "needs a number"),
        ("SELECT _1 FROM archive WHERE _1 LIKE 'a' ESCAPE '!!'", "ESCAPE"),
        ("SELECT _1 FROM archive WHERE _1 IS TRUE", "IS [NOT] NULL"),
        ("SELECT _1 FROM archive WHERE _1 ILIKE 'a'", "unsupported syntax"),
        ("SELECT _1 FROM archive WHERE _1 GLOB 'a*'", "unsupported syntax"),
        ("SELECT _0 FROM archive", "bad column position"),
        ("SELECT _9999999 FROM archive", "column limit"),
        ("SELECT CAST(_1 AS DATE) FROM archive", "CAST to DATE"),
        ("SELECT DATE_ADD(week, 1, UTCNOW()) FROM archive", "date part"),
        ("SELECT DATE_ADD(day, 1) FROM archive", "3 arguments"),
        ("SELECT S" + "_1" * 64_000 + " FROM archive", "longer than 128000"),
    ],
)
def test_rejected_up_front(expression: str, fragment: str) -> None:
    assert fragment in rejected(expression)


def test_accepted_forms() -> None:
    for expression in (
        "select * from ARCHIVE",
        "SELECT * FROM object o WHERE o._1 = 'x'",
        "SELECT a.* FROM archive AS a WHERE a._2 <> 'x'",
        'SELECT "select" FROM archive WHERE "from" = \'x\'',
        "SELECT _1 AS first, _2 second FROM archive;",
    ):
        parse_query(expression, header_names=True)


# --- projection and columns ------------------------------------------------------------------


def test_star_returns_records_as_read() -> None:
    rows = [["a", "1"], ["b"], ["c", "3", "extra"]]
    assert evaluate("SELECT * FROM archive", rows) == rows
    assert evaluate("SELECT s.* FROM archive s WHERE s._2 IS NULL", rows) == [["b"]]


def test_missing_columns_read_as_null() -> None:
    assert evaluate("SELECT _2, _9 FROM archive WHERE _1 = 'dave'") == [["-12.5", None]]
    assert column("SELECT _1 FROM archive WHERE _4 IS NOT NULL") == ["Alice", "bob", "carol"]


def test_header_names() -> None:
    assert evaluate("SELECT name, CITY FROM archive WHERE age = '7'", header=HEADER) == [
        ["bob", "Oslo"]
    ]
    assert evaluate('SELECT "Name" FROM archive a WHERE a."City" = \'paris\'', header=HEADER) == [
        ["carol"]
    ]
    assert evaluate("SELECT a.name, _2 FROM archive a WHERE a._3 = 'Oslo'", header=HEADER) == [
        ["bob", "7"]
    ]
    # A quoted name that is not in the header falls back to the position.
    assert evaluate("SELECT \"_3\" FROM archive WHERE name = 'bob'", header=HEADER) == [["Oslo"]]


@pytest.mark.parametrize(
    ("expression", "header", "code"),
    [
        ("SELECT nosuch FROM archive", HEADER, "MissingHeaderName"),
        ('SELECT "name" FROM archive', HEADER, "MissingHeaderName"),
        ("SELECT id FROM archive", ["id", "ID"], "AmbiguousFieldName"),
    ],
)
def test_header_name_errors_fail_the_job(expression: str, header: list[str], code: str) -> None:
    with pytest.raises(SelectRuntimeError) as info:
        compile_query(parse_query(expression, header_names=True), header, NOW)
    assert info.value.code == code


# --- operators ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "names"),
    [
        ("_3 = 'Paris'", ["Alice"]),
        ("_3 <> 'Paris'", ["bob", "carol"]),
        ("_3 != 'Paris'", ["bob", "carol"]),
        ("_1 < 'b'", ["Alice"]),  # code point order: upper case first
        ("_1 >= 'bob'", ["bob", "carol", "dave"]),
        ("_2 > 10", ["Alice"]),  # a string meeting a number is read as one
        ("_2 <= 7", ["bob", "dave"]),
        ("_2 = 34.0", ["Alice"]),
        ("CAST(_2 AS INT) BETWEEN 0 AND 10", ["bob"]),
        ("_2 NOT BETWEEN -20 AND 10", ["Alice"]),
        ("_2 IN (7, 34)", ["Alice", "bob"]),
        ("_3 NOT IN ('Paris', 'Oslo')", ["carol"]),
        ("_1 LIKE 'a%'", []),  # case-sensitive, unlike SQLite's default
        ("_1 LIKE '%o%'", ["bob", "carol"]),
        ("_1 LIKE '_ob'", ["bob"]),
        ("_1 NOT LIKE '%a%'", ["Alice", "bob"]),  # 'A' is not 'a'
        ("_3 IS NULL", ["dave"]),
        ("_3 IS NOT NULL AND NOT (_3 = 'Oslo' OR _3 = 'paris')", ["Alice"]),
        ("(_1 = 'bob' OR _1 = 'dave') AND _2 < 0", ["dave"]),
    ],
)
def test_where(where: str, names: list[str]) -> None:
    assert column(f"SELECT _1 FROM archive WHERE {where}") == names


def test_like_escape() -> None:
    rows = [["50%"], ["50 percent"], ["a_b"], ["axb"]]
    assert column("SELECT _1 FROM archive WHERE _1 LIKE '%!%' ESCAPE '!'", rows) == ["50%"]
    assert column("SELECT _1 FROM archive WHERE _1 LIKE 'a#_b' ESCAPE '#'", rows) == ["a_b"]


def test_arithmetic() -> None:
    row = [["7", "2", "2.5"]]
    assert evaluate(
        "SELECT _1 + _2, _1 - _2, _1 * _2, _1 / _2, _1 % _2, -_1, _1 * _3, -7 / 2, -7 % 2 "
        "FROM archive",
        row,
    ) == [["9", "5", "14", "3", "1", "-7", "17.5", "-3", "-1"]]
    assert evaluate("SELECT _1 / 2.0, 5.5 % 2, 1 + 2 * 3, (1 + 2) * 3 FROM archive", row) == [
        ["3.5", "1.5", "7", "9"]
    ]
    assert evaluate("SELECT _1 || '-' || _2, NULL + 1 FROM archive", row) == [["7-2", None]]


@pytest.mark.parametrize(
    ("expression", "code"),
    [
        ("SELECT 1 / 0 FROM archive", "DivisionByZero"),
        ("SELECT 1.5 % 0 FROM archive", "DivisionByZero"),
        ("SELECT _1 FROM archive WHERE _1 > 5", "CastFailed"),
        ("SELECT CAST(_1 AS INT) FROM archive", "CastFailed"),
        ("SELECT CAST(_1 AS BOOL) FROM archive", "CastFailed"),
        ("SELECT CAST(_1 AS TIMESTAMP) FROM archive", "CastFailed"),
        ("SELECT CAST('2021-02-30' AS TIMESTAMP) FROM archive", "CastFailed"),
        ("SELECT SUBSTRING(_1, 1, -1) FROM archive", "InvalidArgument"),
    ],
)
def test_runtime_errors(expression: str, code: str) -> None:
    with pytest.raises(SelectRuntimeError) as info:
        evaluate(expression, [["abc"]])
    assert info.value.code == code


# --- casts, NULL, functions -------------------------------------------------------------------


def test_casts() -> None:
    assert evaluate(
        "SELECT CAST(_1 AS INT), CAST(_1 AS INTEGER), CAST(_1 AS FLOAT), CAST(_1 AS DECIMAL), "
        "CAST(_1 AS NUMERIC), CAST(CAST(_1 AS FLOAT) AS STRING) FROM archive",
        [[" 12.75 "]],
    ) == [["12", "12", "12.75", "12.75", "12.75", "12.75"]]
    assert evaluate(
        "SELECT CAST(_1 AS BOOL), CAST(_2 AS BOOLEAN), CAST(0 AS BOOL), CAST(TRUE AS STRING), "
        "CAST(TRUE AS INT), CAST(_3 AS INT) + 1 FROM archive",
        [["TRUE", "false", "-3"]],
    ) == [["true", "false", "false", "true", "1", "-2"]]


def test_empty_fields_cast_to_null() -> None:
    assert evaluate(
        "SELECT CAST(_1 AS INT), CAST(_1 AS BOOL), CAST(_1 AS TIMESTAMP), _1 FROM archive",
        [["", "x"]],
    ) == [[None, None, None, ""]]
    assert column("SELECT _1 FROM archive WHERE CAST(_2 AS INT) > 0") == ["Alice", "bob"]


def test_timestamps() -> None:
    assert column("SELECT CAST(_4 AS TIMESTAMP) FROM archive WHERE _4 <> ''") == [
        "2020-01-31T10:00:00Z",
        "2021-06-30T21:30:00.5Z",  # normalised to UTC
    ]
    assert evaluate(
        "SELECT CAST('2007T' AS TIMESTAMP), TO_TIMESTAMP('2007-02-23'), UTCNOW(), "
        "CAST(UTCNOW() AS STRING) FROM archive",
        [["x"]],
    ) == [
        [
            "2007-01-01T00:00:00Z",
            "2007-02-23T00:00:00Z",
            "2024-02-29T12:30:15.25Z",
            "2024-02-29T12:30:15.25Z",
        ]
    ]
    # Timestamps compare as times, also against strings.
    assert column(
        "SELECT _1 FROM archive WHERE CAST(_4 AS TIMESTAMP) > '2021-06-30T22:00:00+01:00'"
    ) == ["bob"]


def test_date_functions() -> None:
    assert evaluate(
        "SELECT DATE_ADD(month, 1, _4), DATE_ADD(year, -1, _4), DATE_ADD(hour, 15, _4), "
        "DATE_DIFF(month, _4, '2020-03-30T'), DATE_DIFF(day, _4, UTCNOW()), "
        "EXTRACT(YEAR FROM _4), EXTRACT(month FROM _4), EXTRACT(TIMEZONE_HOUR FROM _4) "
        "FROM archive WHERE _1 = 'Alice'"
    ) == [
        [
            "2020-02-29T10:00:00Z",  # clamped to the end of the month
            "2019-01-31T10:00:00Z",
            "2020-02-01T01:00:00Z",
            "1",  # 2 months would be 2020-03-31: whole units only
            "1490",
            "2020",
            "1",
            "0",
        ]
    ]


def test_string_functions() -> None:
    assert evaluate(
        "SELECT CHAR_LENGTH(_1), CHARACTER_LENGTH(_2), UPPER(_1), LOWER(_2), "
        "TRIM(_3), TRIM(LEADING FROM _3), TRIM(TRAILING 'x' FROM _4), TRIM(BOTH 'xy' FROM _4) "
        "FROM archive",
        [["straße", "ÉCOLE", "  pad  ", "xyaxy"]],
    ) == [["6", "5", "STRASSE", "école", "pad", "pad  ", "xyaxy", "a"]]
    assert evaluate(
        "SELECT SUBSTRING(_1, 2), SUBSTRING(_1, 2, 3), SUBSTRING(_1 FROM 3 FOR 2), "
        "SUBSTRING(_1, 0, 3), SUBSTRING(_1, -4), SUBSTRING(_1, -4, 6), SUBSTRING(_1, 20) "
        "FROM archive",
        [["123456789"]],
    ) == [["23456789", "234", "34", "12", "123456789", "1", ""]]


def test_conditional_functions() -> None:
    assert evaluate(
        "SELECT COALESCE(_2, _3, 'none'), NULLIF(_1, 'x'), NULLIF(_2, 5), "
        "CASE WHEN _1 = 'x' THEN 'ex' WHEN _1 = 'y' THEN 'why' ELSE 'other' END, "
        "CASE _2 WHEN 5 THEN 'five' END FROM archive",
        [["x", "5"], ["y"]],
    ) == [["5", None, None, "ex", "five"], ["none", "y", None, "why", None]]


def test_booleans_print_as_words() -> None:
    assert evaluate("SELECT _1 = 'a', _1 IS NULL, TRUE, NULL FROM archive", [["a"], ["b"]]) == [
        ["true", "false", "true", None],
        ["false", "false", "true", None],
    ]

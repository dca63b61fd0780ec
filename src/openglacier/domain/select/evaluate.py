"""Glacier Select evaluation (spec 7.2, 7.3): the dialect's values at run time and
the batch evaluator.

`sql.py` translates a query into SQLite text over a table ``t(c0, c1, ...)``
that calls the ``_s3_*`` functions `install_functions` registers here.
`BatchEvaluator` loads one batch of CSV records into an in-memory table, runs the
statement and empties the table again, so memory is bounded by the batch.

A value that cannot be converted raises `SelectRuntimeError`, which fails the job
(spec 7.3) instead of becoming a silent 0 or NULL the way SQLite's own CAST would.
Timestamps travel through SQLite as fixed-width UTC text (`TS_FORMAT`), so that
text order is time order; `format_timestamp` prints them with the fraction trimmed.
"""

from __future__ import annotations

import calendar
import math
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from operator import itemgetter
from typing import Any

__all__ = ["UTC", "BatchEvaluator", "CompiledQuery", "SelectRuntimeError", "install_functions"]

TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_INT64 = (-(2**63), 2**63 - 1)
_INT_RE = re.compile(r"\A\s*[+-]?\d+\s*\Z")
_FLOAT_RE = re.compile(r"\A\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*\Z")
_POSITIONAL_RE = re.compile(r"\A_([1-9][0-9]{0,6})\Z")
# W3C date-time, as Ion writes it: 2007T, 2007-02T, 2007-02-23, 2007-02-23T12:14Z,
# 2007-02-23T12:14:33.079-08:00 (a time without an offset is taken as UTC).
_TS_RE = re.compile(
    r"\A(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?"
    r"(?:T(?:(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?\Z"
)
_CAST_FAILED = "Attempt to convert from one data type to another using CAST failed"


class SelectRuntimeError(Exception):
    """A data or query problem found while the job runs; the job fails with it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CompiledQuery:
    """SQLite text over ``t(c0, c1, ...)`` holding the input fields `positions`.

    `sql` is None for ``SELECT *`` without WHERE: records pass through unchanged.
    With `star`, the statement yields the rowid (1-based position in the batch) of
    each selected record, which is output as read.
    """

    sql: str | None
    params: dict[str, Any]
    positions: tuple[int, ...]
    star: bool
    formatters: tuple[Callable[[Any], str | None], ...] | None  # None: values are strings


def positional(name: str) -> int | None:
    """0-based index of a ``_N`` column name, else None."""
    match = _POSITIONAL_RE.match(name)
    return int(match.group(1)) - 1 if match else None


def _cast_failed(value: Any, target: str) -> SelectRuntimeError:
    shown = value if not isinstance(value, str) or len(value) <= 100 else value[:100] + "..."
    return SelectRuntimeError("CastFailed", f"{_CAST_FAILED}: {shown!r} is not a valid {target}.")


def _blank(value: Any) -> bool:
    """An empty CSV field converts to NULL rather than failing the whole job."""
    return isinstance(value, str) and not value.strip()


def parse_number(text: str) -> int | float | None:
    if _INT_RE.match(text):
        number = int(text)
        return number if _INT64[0] <= number <= _INT64[1] else float(number)
    if _FLOAT_RE.match(text):
        return float(text)
    return None


# --- conversions (registered as SQLite functions) -----------------------------------


def to_number(value: Any) -> int | float | None:
    """A string meeting a number is read as one (int or float)."""
    if value is None or isinstance(value, int | float):
        return value
    if _blank(value):
        return None
    number = parse_number(str(value))
    if number is None:
        raise _cast_failed(value, "number")
    return number


def cast_int(value: Any) -> int | None:
    number = to_number(value)
    if number is None or isinstance(number, int):
        return number
    if not math.isfinite(number) or not _INT64[0] <= number <= _INT64[1]:
        raise _cast_failed(value, "INT")
    return int(number)


def cast_float(value: Any) -> float | None:
    number = to_number(value)
    return None if number is None else float(number)


def cast_bool(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return int(value != 0)
    if _blank(value):
        return None
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return int(text == "true")
    raise _cast_failed(value, "BOOL")


def parse_timestamp(value: Any) -> datetime | None:
    if value is None or _blank(value):
        return None
    match = _TS_RE.match(str(value).strip())
    if match is None:
        raise _cast_failed(value, "TIMESTAMP")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        moment = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=UTC,
        )
    except ValueError:
        raise _cast_failed(value, "TIMESTAMP") from None
    if offset and offset != "Z":
        sign = -1 if offset[0] == "-" else 1
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        moment = moment.replace(tzinfo=timezone(sign * delta))
    return moment.astimezone(UTC)


def cast_timestamp(value: Any) -> str | None:
    moment = parse_timestamp(value)
    return None if moment is None else format_timestamp_key(moment)


def format_timestamp_key(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TS_FORMAT)


def format_timestamp(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    if len(text) == 27 and text.endswith("Z") and text[19] == ".":
        fraction = text[20:26].rstrip("0")
        return text[:19] + ("." + fraction if fraction else "") + "Z"
    return text


def format_float(value: float) -> str:
    return repr(value)


def to_string(value: Any, kind: str) -> str | None:
    """CAST(x AS STRING) of a value of static type `kind`."""
    if value is None:
        return None
    if kind == "bool":
        return "true" if value else "false"
    if kind == "timestamp":
        return format_timestamp(value)
    if isinstance(value, float):
        return format_float(value)
    return str(value)


def formatter(kind: str) -> Callable[[Any], str | None]:
    """How a projection of static type `kind` is printed in the CSV output."""
    if kind == "bool":
        return lambda v: None if v is None else ("true" if v else "false")
    if kind == "timestamp":
        return format_timestamp
    return lambda v: None if v is None else (format_float(v) if isinstance(v, float) else str(v))


# --- functions ---------------------------------------------------------------------------


def divide(left: Any, right: Any) -> int | float | None:
    if left is None or right is None:
        return None
    if right == 0:
        raise SelectRuntimeError("DivisionByZero", "Division by zero in the SQL expression.")
    if isinstance(left, int) and isinstance(right, int):
        quotient = abs(left) // abs(right)  # SQL: truncate toward zero
        return quotient if (left >= 0) == (right > 0) else -quotient
    return float(left) / float(right)


def modulo(left: Any, right: Any) -> int | float | None:
    if left is None or right is None:
        return None
    if right == 0:
        raise SelectRuntimeError("DivisionByZero", "Division by zero in the SQL expression.")
    if isinstance(left, int) and isinstance(right, int):
        remainder = abs(left) % abs(right)  # the sign of the dividend, as in SQL
        return remainder if left >= 0 else -remainder
    return math.fmod(left, right)


def substring(text: Any, start: Any, length: Any = None) -> str | None:
    """SQL SUBSTRING: 1-based; positions before 1 count towards the length."""
    if text is None or start is None:
        return None
    value = str(text)
    first = cast_int(start) or 0
    begin = max(first, 1)
    if length is None:
        return value[begin - 1 :]
    count = cast_int(length) or 0
    if count < 0:
        raise SelectRuntimeError("InvalidArgument", "SUBSTRING length must not be negative.")
    end = first + count
    return value[begin - 1 : end - 1] if end > begin else ""


def lower(text: Any) -> str | None:
    return None if text is None else str(text).lower()


def upper(text: Any) -> str | None:
    return None if text is None else str(text).upper()


def _add_months(moment: datetime, months: int) -> datetime:
    total = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(total, 12)
    if not 1 <= year <= 9999:
        raise SelectRuntimeError("InvalidArgument", "DATE_ADD result is out of range.")
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def date_add(part: str, amount: Any, value: Any) -> str | None:
    moment = parse_timestamp(value)
    if moment is None or amount is None:
        return None
    count = cast_int(amount) or 0
    try:
        if part in ("year", "month"):
            moment = _add_months(moment, count * (12 if part == "year" else 1))
        else:
            moment += timedelta(**{part + "s": count})
    except OverflowError:
        raise SelectRuntimeError("InvalidArgument", "DATE_ADD result is out of range.") from None
    return format_timestamp_key(moment)


def date_diff(part: str, first: Any, second: Any) -> int | None:
    start, end = parse_timestamp(first), parse_timestamp(second)
    if start is None or end is None:
        return None
    if part in ("year", "month"):
        months = (end.year - start.year) * 12 + end.month - start.month
        # Whole units only: step back when the last unit is not complete.
        if months > 0 and _add_months(start, months) > end:
            months -= 1
        elif months < 0 and _add_months(start, months) < end:
            months += 1
        return int(months / 12) if part == "year" else months  # toward zero
    seconds = {"day": 86400, "hour": 3600, "minute": 60, "second": 1}[part]
    return int((end - start).total_seconds() / seconds)


def extract(part: str, value: Any) -> int | None:
    moment = parse_timestamp(value)
    if moment is None:
        return None
    if part.startswith("timezone_"):
        return 0  # timestamps are normalised to UTC
    return int(getattr(moment, part))


# --- registration ------------------------------------------------------------------------


class FunctionErrors:
    """The last `SelectRuntimeError` a function raised (SQLite only reports that a
    user function failed, not why)."""

    def __init__(self) -> None:
        self.last: SelectRuntimeError | None = None

    def take(self) -> SelectRuntimeError | None:
        error, self.last = self.last, None
        return error


_FUNCTIONS: dict[str, tuple[int, Callable[..., Any]]] = {
    "_s3_num": (1, to_number),
    "_s3_int": (1, cast_int),
    "_s3_float": (1, cast_float),
    "_s3_bool": (1, cast_bool),
    "_s3_ts": (1, cast_timestamp),
    "_s3_str": (2, to_string),
    "_s3_div": (2, divide),
    "_s3_mod": (2, modulo),
    "_s3_substr": (-1, substring),
    "_s3_lower": (1, lower),
    "_s3_upper": (1, upper),
    "_s3_date_add": (3, date_add),
    "_s3_date_diff": (3, date_diff),
    "_s3_extract": (2, extract),
}


def install_functions(conn: sqlite3.Connection) -> FunctionErrors:
    """Register the ``_s3_*`` functions and S3's case-sensitive LIKE on `conn`."""
    errors = FunctionErrors()

    def guarded(function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            try:
                return function(*args)
            except SelectRuntimeError as exc:
                errors.last = exc
                raise
            except (ArithmeticError, ValueError, TypeError) as exc:
                errors.last = SelectRuntimeError("InvalidArgument", str(exc))
                raise

        return call

    for name, (arity, function) in _FUNCTIONS.items():
        conn.create_function(name, arity, guarded(function), deterministic=True)
    conn.execute("PRAGMA case_sensitive_like = ON")
    if conn.execute("SELECT 'a' LIKE 'A'").fetchone()[0]:  # pragma: no cover - old builds
        raise RuntimeError("this SQLite build ignores case_sensitive_like")
    return errors


# --- batches -------------------------------------------------------------------


class BatchEvaluator:
    """Evaluates a compiled query over batches of records in an in-memory SQLite
    table that holds one batch at a time (memory is bounded by the batch)."""

    def __init__(self, query: CompiledQuery) -> None:
        self.query = query
        # An S3 sink reads the result stream, and so runs this, on its transfer
        # thread; uses are strictly sequential, so the connection may move threads.
        self._conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self._errors = install_functions(self._conn)
        width = max(len(query.positions), 1)
        columns = ", ".join(f"c{i}" for i in range(width))
        self._conn.execute(f"CREATE TABLE t ({columns})")
        marks = ", ".join("?" * width)
        self._insert = f"INSERT INTO t ({columns}) VALUES ({marks})"  # noqa: S608
        self._need = max(query.positions, default=-1) + 1
        self._get: Callable[[Sequence[str | None]], Any] | None = (
            itemgetter(*query.positions) if query.positions else None
        )

    def close(self) -> None:
        self._conn.close()

    def evaluate(self, rows: list[list[str]]) -> Sequence[Sequence[Any]]:
        """The output records of `rows` (fields: str, or None for an empty value)."""
        query = self.query
        if query.sql is None:
            return rows
        self._load(rows)
        try:
            result = self._conn.execute(query.sql, query.params).fetchall()
        except sqlite3.Error as exc:
            error = self._errors.take()
            raise error or SelectRuntimeError("EvaluatorError", str(exc)) from exc
        finally:
            self._conn.execute("DELETE FROM t")
        if query.star:
            return [rows[rowid - 1] for (rowid,) in result]
        if query.formatters is None:
            return result
        formatters = query.formatters
        return [[f(v) for f, v in zip(formatters, row, strict=True)] for row in result]

    def _load(self, rows: list[list[str]]) -> None:
        get, need = self._get, self._need
        if get is None:
            data: Any = [(None,)] * len(rows)
        else:
            padded: Iterator[Sequence[str | None]] = (
                r if len(r) >= need else [*r, *[None] * (need - len(r))] for r in rows
            )
            single = len(self.query.positions) == 1
            data = ((get(r),) for r in padded) if single else map(get, padded)
        self._conn.executemany(self._insert, data)

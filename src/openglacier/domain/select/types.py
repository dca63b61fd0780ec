"""The static types of Glacier Select expressions and the tables that use them.

Shared by the translator (`sql.py`) and its node handlers (`nodes.py`).
"""

from __future__ import annotations

from enum import Enum

from sqlglot import exp

from openglacier.errors import InvalidParameterValueException

_DATE_PARTS = frozenset({"year", "month", "day", "hour", "minute", "second"})
_EXTRACT_PARTS = _DATE_PARTS | {"timezone_hour", "timezone_minute"}


class T(Enum):
    """Static types of translated expressions."""

    STRING = "string"
    INT = "int"
    FLOAT = "float"
    NUMBER = "number"  # int or float, decided by the data
    BOOL = "bool"
    TIMESTAMP = "timestamp"
    NULL = "null"
    ANY = "any"


_NUMERIC = frozenset({T.INT, T.FLOAT, T.NUMBER})
_LOOSE = frozenset({T.STRING, T.ANY})  # converted to the other side's type
_CAST_TYPES = {
    exp.DataType.Type.INT: ("_s3_int", T.INT),
    exp.DataType.Type.BIGINT: ("_s3_int", T.INT),
    exp.DataType.Type.FLOAT: ("_s3_float", T.FLOAT),
    exp.DataType.Type.DOUBLE: ("_s3_float", T.FLOAT),
    exp.DataType.Type.DECIMAL: ("_s3_float", T.FLOAT),
    exp.DataType.Type.TEXT: ("_s3_str", T.STRING),
    exp.DataType.Type.VARCHAR: ("_s3_str", T.STRING),
    exp.DataType.Type.BOOLEAN: ("_s3_bool", T.BOOL),
    exp.DataType.Type.TIMESTAMP: ("_s3_ts", T.TIMESTAMP),
}
_COMPARISONS: dict[type[exp.Expression], str] = {
    exp.EQ: "=",
    exp.NEQ: "<>",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.LT: "<",
    exp.LTE: "<=",
}
_ARITHMETIC: dict[type[exp.Expression], str] = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*"}


def _invalid(message: str) -> InvalidParameterValueException:
    return InvalidParameterValueException(f"Invalid SelectParameters.Expression: {message}")

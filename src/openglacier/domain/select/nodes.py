"""Node handlers of the Glacier Select translator: one function per accepted
SQL construct, each returning SQLite text and the expression's static type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from openglacier.domain.select.types import (
    _CAST_TYPES,
    _EXTRACT_PARTS,
    _NUMERIC,
    T,
    _invalid,
)
from openglacier.errors import InvalidParameterValueException

if TYPE_CHECKING:
    from openglacier.domain.select.sql import _Translator


def _numeric_result(left: T, right: T) -> T:
    if left is T.INT and right is T.INT:
        return T.INT
    if T.FLOAT in (left, right):
        return T.FLOAT
    return T.NUMBER


def _part(node: exp.Expression, allowed: frozenset[str], what: str) -> str:
    name = node.name.lower() if isinstance(node, (exp.Column, exp.Var)) else ""
    if name not in allowed:
        raise _invalid(f"{what} needs a date part ({', '.join(sorted(allowed))})")
    return name


def _unsupported(node: exp.Expression) -> InvalidParameterValueException:
    if isinstance(node, exp.AggFunc):
        return _invalid(f"aggregate functions ({node.sql_name()}) are not supported")
    if isinstance(node, exp.Window):
        return _invalid("window functions are not supported")
    if isinstance(node, exp.Func):
        return _invalid(f"function {node.sql_name()} is not supported")
    if isinstance(node, exp.Star):
        return _invalid("* is only allowed alone in the SELECT list")
    return _invalid(f"unsupported syntax {node.sql()[:200]!r}")


# --- node handlers -------------------------------------------------------------


def _boolean(tr: _Translator, node: exp.Expression) -> tuple[str, T]:
    op = "AND" if isinstance(node, exp.And) else "OR"
    left = tr.condition(node.this, op)
    right = tr.condition(node.expression, op)
    return f"({left} {op} {right})", T.BOOL


def _not(tr: _Translator, node: exp.Expression) -> tuple[str, T]:
    return f"(NOT {tr.condition(node.this, 'NOT')})", T.BOOL


def _is(tr: _Translator, node: exp.Expression) -> tuple[str, T]:
    if not isinstance(node.expression, exp.Null):
        raise _invalid("only IS [NOT] NULL is supported")
    return f"({tr.expr(node.this)[0]} IS NULL)", T.BOOL


def _like(tr: _Translator, node: exp.Expression) -> tuple[str, T]:
    escape = None
    if isinstance(node, exp.Escape):
        escape_node = node.expression
        if not (isinstance(escape_node, exp.Literal) and len(escape_node.name) == 1):
            raise _invalid("ESCAPE needs a single-character string")
        escape, node = escape_node.name, node.this
        if not isinstance(node, exp.Like):
            raise _invalid("ESCAPE belongs to LIKE")
    text = f"{tr.string(node.this)} LIKE {tr.string(node.expression)}"
    if escape is not None:
        text += f" ESCAPE {tr.param(escape)}"
    return (f"(NOT ({text}))" if node.args.get("negate") else f"({text})"), T.BOOL


def _between(tr: _Translator, node: exp.Expression) -> tuple[str, T]:
    operands = [tr.expr(node.this), tr.expr(node.args["low"]), tr.expr(node.args["high"])]
    value, low, high = tr.coerce(operands, "BETWEEN")
    return f"({value} BETWEEN {low} AND {high})", T.BOOL


def _in(tr: _Translator, node: exp.Expression) -> tuple[str, T]:
    if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
        raise _invalid("IN needs a list of values")
    operands = [tr.expr(node.this), *(tr.expr(item) for item in node.expressions)]
    value, *items = tr.coerce(operands, "IN")
    return f"({value} IN ({', '.join(items)}))", T.BOOL


def _division(tr: _Translator, node: exp.Expression) -> tuple[str, T]:
    return tr.arithmetic(node, "/" if isinstance(node, exp.Div) else "%")


def _negate(tr: _Translator, node: exp.Expression) -> tuple[str, T]:
    sql, kind = tr.numeric(node.this, "-")
    return f"(-{sql})", kind


def _concat(tr: _Translator, node: exp.Expression) -> tuple[str, T]:
    return f"({tr.string(node.this)} || {tr.string(node.expression)})", T.STRING


def _paren(tr: _Translator, node: exp.Expression) -> tuple[str, T]:
    sql, kind = tr.expr(node.this)
    return f"({sql})", kind


def _cast(tr: _Translator, node: exp.Expression) -> tuple[str, T]:
    target = node.args["to"]
    function, kind = _CAST_TYPES.get(target.this, (None, T.ANY))
    if function is None:
        raise _invalid(f"CAST to {target.sql()} is not supported")
    sql, source = tr.expr(node.this)
    if kind is T.STRING:
        return (sql if source in (T.STRING, T.NULL) else f"_s3_str({sql}, '{source.value}')"), kind
    return f"{function}({sql})", kind


def _length(tr: _Translator, node: exp.Expression) -> tuple[str, T]:
    return f"length({tr.string(node.this)})", T.INT


def _case_fold(tr: _Translator, node: exp.Expression) -> tuple[str, T]:
    function = "_s3_lower" if isinstance(node, exp.Lower) else "_s3_upper"
    return f"{function}({tr.string(node.this)})", T.STRING


def _substring(tr: _Translator, node: exp.Expression) -> tuple[str, T]:
    args = [tr.string(node.this), tr.numeric(node.args["start"], "SUBSTRING")[0]]
    if node.args.get("length") is not None:
        args.append(tr.numeric(node.args["length"], "SUBSTRING")[0])
    return f"_s3_substr({', '.join(args)})", T.STRING


def _trim(tr: _Translator, node: exp.Expression) -> tuple[str, T]:
    position = str(node.args.get("position") or "BOTH").upper()
    function = {"LEADING": "ltrim", "TRAILING": "rtrim"}.get(position, "trim")
    args = [tr.string(node.this)]
    if node.args.get("expression") is not None:
        args.append(tr.string(node.expression))
    return f"{function}({', '.join(args)})", T.STRING


def _common(types: list[T]) -> T:
    kinds = {t for t in types if t is not T.NULL}
    if len(kinds) == 1:
        return kinds.pop()
    if not kinds:
        return T.NULL
    return T.NUMBER if kinds <= _NUMERIC else T.ANY


def _coalesce(tr: _Translator, node: exp.Expression) -> tuple[str, T]:
    typed = [tr.expr(node.this), *(tr.expr(e) for e in node.expressions)]
    if len(typed) == 1:
        return typed[0]
    return f"coalesce({', '.join(sql for sql, _ in typed)})", _common([t for _, t in typed])


def _nullif(tr: _Translator, node: exp.Expression) -> tuple[str, T]:
    typed = [tr.expr(node.this), tr.expr(node.expression)]
    left, right = tr.coerce(typed, "NULLIF")
    return f"nullif({left}, {right})", typed[0][1]


def _case(tr: _Translator, node: exp.Expression) -> tuple[str, T]:
    ifs = node.args.get("ifs") or []
    default = node.args.get("default")
    results = [tr.expr(branch.args["true"]) for branch in ifs]
    if default is not None:
        results.append(tr.expr(default))
    if node.this is not None:
        subject, *whens = tr.coerce(
            [tr.expr(node.this), *(tr.expr(branch.this) for branch in ifs)], "CASE"
        )
        head = f"CASE {subject}"
    else:
        whens = [tr.condition(branch.this, "CASE WHEN") for branch in ifs]
        head = "CASE"
    parts = [head, *(f"WHEN {w} THEN {r[0]}" for w, r in zip(whens, results, strict=False))]
    if default is not None:
        parts.append(f"ELSE {results[-1][0]}")
    return " ".join([*parts, "END"]), _common([t for _, t in results])


def _extract(tr: _Translator, node: exp.Expression) -> tuple[str, T]:
    part = tr.param(_part(node.this, _EXTRACT_PARTS, "EXTRACT"))
    return f"_s3_extract({part}, {tr.timestamp(node.expression, 'EXTRACT')})", T.INT


Handler = Callable[["_Translator", Any], tuple[str, T]]

# Columns, literals and function calls are the translator's own methods.
_HANDLERS: dict[type[exp.Expression], Handler] = {
    exp.Boolean: lambda tr, node: (tr.param(1 if node.this else 0), T.BOOL),
    exp.Null: lambda tr, node: ("NULL", T.NULL),
    exp.Paren: _paren,
    exp.And: _boolean,
    exp.Or: _boolean,
    exp.Not: _not,
    exp.Is: _is,
    exp.Like: _like,
    exp.Escape: _like,
    exp.Between: _between,
    exp.In: _in,
    exp.Div: _division,
    exp.Mod: _division,
    exp.Neg: _negate,
    exp.DPipe: _concat,
    exp.Cast: _cast,
    exp.Length: _length,
    exp.Lower: _case_fold,
    exp.Upper: _case_fold,
    exp.Substring: _substring,
    exp.Trim: _trim,
    exp.Coalesce: _coalesce,
    exp.Nullif: _nullif,
    exp.Case: _case,
    exp.Extract: _extract,
}

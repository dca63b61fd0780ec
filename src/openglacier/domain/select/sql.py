"""Glacier Select SQL (spec 7.2): sqlglot parses, this module checks and translates
the query to SQLite, and SQLite (the standard library's) evaluates it.

Only ``SELECT list FROM ARCHIVE|OBJECT [[AS] alias] [WHERE cond]`` is accepted;
everything spec 7.2 lists as unsupported (LIMIT, aggregates, GROUP BY, joins,
subqueries, DISTINCT, UNION, ORDER BY, ...) and anything this module does not know
is rejected up front with `InvalidParameterValueException`. The translation is a
whitelist: each sqlglot node kind it accepts is re-emitted as SQLite text, string
and number literals become bound parameters, so nothing of the user's text reaches
SQLite verbatim.

Types (S3 Select rule: CSV fields are strings unless CAST): every expression gets a
static type. Where a string meets a number, boolean or timestamp (comparison,
BETWEEN, IN, arithmetic, CASE operand), the string side is converted at run time,
and a string that does not convert fails the job with ``CastFailed`` (an empty
field converts to NULL: one blank cell should not fail an hours-long job). Strings
compare by code point; LIKE is case-sensitive. DECIMAL is computed as a 64-bit
float. Timestamps are held as fixed-width UTC text (so they order correctly) and
printed without trailing zero fractions; time-zone offsets are normalised to UTC,
so EXTRACT(TIMEZONE_HOUR/MINUTE) is always 0. TO_STRING is not supported.

Header names (FileHeaderInfo USE) are known only when the job runs, so `parse_query`
checks everything else and `compile_query` resolves names against the header:
unquoted names match case-insensitively, double-quoted ones exactly; no match
(``MissingHeaderName``) or several (``AmbiguousFieldName``) fail the job. ``_N``
is always field N (1-based); ``"_N"`` is a header name if the header has it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlglot
from sqlglot import exp, parser
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError

from openglacier.domain.select import evaluate as values
from openglacier.domain.select.evaluate import CompiledQuery, SelectRuntimeError
from openglacier.domain.select.nodes import _HANDLERS, Handler, _numeric_result, _part, _unsupported
from openglacier.domain.select.types import (
    _ARITHMETIC,
    _COMPARISONS,
    _DATE_PARTS,
    _LOOSE,
    _NUMERIC,
    T,
    _invalid,
)

__all__ = [
    "CompiledQuery",
    "Query",
    "SelectRuntimeError",
    "compile_query",
    "parse_query",
]

MAX_EXPRESSION = 128_000  # characters (spec 7.1, 9 #23)
MAX_COLUMNS = 1_048_576  # spec 7.2 limit per record
TABLE_NAMES = frozenset({"archive", "object"})
# sqlglot clause keys of a Select and how the user wrote them.
_CLAUSES = {
    "distinct": "DISTINCT",
    "limit": "LIMIT",
    "offset": "OFFSET",
    "group": "GROUP BY",
    "having": "HAVING",
    "order": "ORDER BY",
    "joins": "JOIN",
    "laterals": "LATERAL",
    "with": "WITH",
    "with_": "WITH",
}


def _anonymous(name: str) -> Callable[[list[exp.Expression]], exp.Expression]:
    return lambda args: exp.Anonymous(this=name, expressions=args)


class _S3SelectDialect(Dialect):
    """sqlglot's default dialect, except that S3 Select's own date functions keep
    their arguments as written (sqlglot would read ``DATE_ADD(part, n, ts)`` with
    another argument order)."""

    class Parser(parser.Parser):
        FUNCTIONS = {
            **parser.Parser.FUNCTIONS,
            **{
                name: _anonymous(name)
                for name in ("DATE_ADD", "DATE_DIFF", "TO_STRING", "TO_TIMESTAMP", "UTCNOW")
            },
        }


Resolver = Callable[[str, bool], int]  # (name, quoted) -> 0-based field index


_PARSE_TIME = datetime(2000, 1, 1, tzinfo=values.UTC)  # UTCNOW while checking


@dataclass(frozen=True)
class Query:
    """A parsed and checked query; header names are not resolved yet."""

    tree: exp.Select
    qualifiers: frozenset[str]  # lower-cased names that may prefix a column


def parse_query(expression: str, *, header_names: bool) -> Query:
    """Parse and check `expression`; `header_names`: FileHeaderInfo is USE."""
    if len(expression) > MAX_EXPRESSION:
        raise _invalid(f"longer than {MAX_EXPRESSION} characters")
    try:
        statements = sqlglot.parse(expression, dialect=_S3SelectDialect)
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" at line {first.get('line', '?')}, column {first.get('col', '?')}"
        near = first.get("highlight") or ""
        raise _invalid(f"syntax error{where}" + (f" near '{near}'" if near else "")) from None
    except TokenError:
        raise _invalid("syntax error (unterminated string or identifier)") from None
    statements = [s for s in statements if s is not None]
    if len(statements) != 1:
        raise _invalid("exactly one SELECT statement is required")
    tree = statements[0]
    if isinstance(tree, exp.Union | exp.Intersect | exp.Except):
        raise _invalid(f"{type(tree).__name__.upper()} is not supported by Glacier Select")
    if not isinstance(tree, exp.Select):
        raise _invalid("only SELECT statements are supported")
    query = Query(tree, _check_clauses(tree))

    def no_header(name: str, quoted: bool) -> int:
        if not header_names:
            raise _invalid(
                f"column name {name!r} needs FileHeaderInfo USE; use _1, _2, ... otherwise"
            )
        return 0

    _translate(query, no_header, _PARSE_TIME)
    return query


def compile_query(query: Query, header: Sequence[str] | None, now: datetime) -> CompiledQuery:
    """Resolve header names (raises `SelectRuntimeError`) and emit the SQLite text."""
    exact: dict[str, list[int]] = {}
    folded: dict[str, list[int]] = {}
    for index, name in enumerate(header or ()):
        exact.setdefault(name, []).append(index)
        folded.setdefault(name.lower(), []).append(index)

    def resolve(name: str, quoted: bool) -> int:
        found = exact.get(name, []) if quoted else folded.get(name.lower(), [])
        if quoted and not found and (position := values.positional(name)) is not None:
            return position
        if not found:
            raise SelectRuntimeError("MissingHeaderName", f"No header column named {name!r}.")
        if len(found) > 1:
            raise SelectRuntimeError(
                "AmbiguousFieldName", f"More than one header column is named {name!r}."
            )
        return found[0]

    return _translate(query, resolve, now)


def _check_clauses(tree: exp.Select) -> frozenset[str]:
    for key, value in tree.args.items():
        if value and key not in ("expressions", "from", "from_", "where"):
            name = _CLAUSES.get(key, key.upper())
            raise _invalid(f"{name} is not supported by Glacier Select")
    for node in tree.walk():
        if node is not tree and isinstance(node, (exp.Query, exp.Subquery, exp.Exists)):
            raise _invalid("subqueries are not supported by Glacier Select")
    source = tree.args.get("from") or tree.args.get("from_")
    table = source.this if isinstance(source, exp.From) else None
    if not isinstance(table, exp.Table):
        raise _invalid("FROM ARCHIVE (or FROM OBJECT) is required")
    name = table.this
    if not isinstance(name, exp.Identifier) or name.this.lower() not in TABLE_NAMES:
        raise _invalid(f"FROM must name ARCHIVE or OBJECT, not {table.sql()!r}")
    if table.args.get("db") or table.args.get("catalog"):
        raise _invalid(f"FROM must name ARCHIVE or OBJECT, not {table.sql()!r}")
    alias = table.args.get("alias")
    if alias is None:
        return frozenset({name.this.lower()})
    if alias.args.get("columns"):
        raise _invalid("column aliases in FROM are not supported")
    return frozenset({alias.name.lower()})


def _translate(query: Query, resolve: Resolver, now: datetime) -> CompiledQuery:
    tr = _Translator(query.qualifiers, resolve, values.format_timestamp_key(now))
    projections = query.tree.expressions
    stars = [p for p in projections if _is_star(p, query.qualifiers)]
    if stars and len(projections) > 1:
        raise _invalid("SELECT * cannot be combined with other expressions")
    where = query.tree.args.get("where")
    condition = tr.condition(where.this, "WHERE") if where is not None else None
    if stars:
        columns = ["rowid"]
        formatters: tuple[Callable[[Any], str | None], ...] | None = None
    else:
        typed = [tr.expr(p.this if isinstance(p, exp.Alias) else p) for p in projections]
        columns = [sql for sql, _ in typed]
        types = [t for _, t in typed]
        formatters = None if all(t is T.STRING for t in types) else _formatters(types)
    positions = tuple(sorted(tr.columns, key=tr.columns.__getitem__))
    if stars and condition is None:
        return CompiledQuery(None, {}, positions, True, None)
    # Our own translation: user text reaches SQLite only as bound parameters.
    sql = f"SELECT {', '.join(columns)} FROM t"  # noqa: S608
    if condition is not None:
        sql += f" WHERE {condition}"
    return CompiledQuery(sql + " ORDER BY rowid", tr.params, positions, bool(stars), formatters)


def _is_star(node: exp.Expression, qualifiers: frozenset[str]) -> bool:
    if isinstance(node, exp.Star):
        return True
    if isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
        if node.table.lower() not in qualifiers or node.args.get("db"):
            raise _invalid(f"unknown qualifier in {node.sql()!r}")
        return True
    return False


def _formatters(types: list[T]) -> tuple[Callable[[Any], str | None], ...]:
    return tuple(values.formatter(t.value) for t in types)


class _Translator:
    """Emits SQLite text for one query; collects its parameters and input fields."""

    def __init__(self, qualifiers: frozenset[str], resolve: Resolver, now: str) -> None:
        self.qualifiers = qualifiers
        self.resolve = resolve
        self.now = now
        self.params: dict[str, Any] = {}
        self.columns: dict[int, int] = {}  # input field index -> table column number

    def param(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def condition(self, node: exp.Expression, where: str) -> str:
        sql, kind = self.expr(node)
        if kind not in (T.BOOL, T.ANY, T.NULL):
            raise _invalid(f"{where} needs a boolean expression, not {node.sql()!r}")
        return sql

    def expr(self, node: exp.Expression) -> tuple[str, T]:
        handler = _TRANSLATOR_HANDLERS.get(type(node))
        if handler is not None:
            return handler(self, node)
        kind = type(node)
        if kind in _COMPARISONS:
            return self.compare(node, _COMPARISONS[kind])
        if kind in _ARITHMETIC:
            return self.arithmetic(node, _ARITHMETIC[kind])
        raise _unsupported(node)

    def coerce(self, operands: list[tuple[str, T]], what: str) -> list[str]:
        """Convert loosely typed operands to the one strict type among them."""
        strict = {t for _, t in operands} - _LOOSE - {T.NULL}
        if not strict:
            return [sql for sql, _ in operands]
        if strict <= _NUMERIC:
            function = "_s3_num"
        elif strict == {T.BOOL}:
            function = "_s3_bool"
        elif strict == {T.TIMESTAMP}:
            function = "_s3_ts"
        else:
            names = ", ".join(sorted(t.value for t in strict))
            raise _invalid(f"incompatible types ({names}) in {what}")
        return [f"{function}({sql})" if t in _LOOSE else sql for sql, t in operands]

    def compare(self, node: exp.Expression, op: str) -> tuple[str, T]:
        left, right = self.coerce([self.expr(node.this), self.expr(node.expression)], op)
        return f"({left} {op} {right})", T.BOOL

    def numeric(self, node: exp.Expression, what: str) -> tuple[str, T]:
        sql, kind = self.expr(node)
        if kind in _LOOSE:
            return f"_s3_num({sql})", T.NUMBER
        if kind not in _NUMERIC and kind is not T.NULL:
            raise _invalid(f"{what} needs a number, not {node.sql()!r}")
        return sql, kind

    def arithmetic(self, node: exp.Expression, op: str) -> tuple[str, T]:
        left, lt = self.numeric(node.this, op)
        right, rt = self.numeric(node.expression, op)
        if op in ("/", "%"):
            function = "_s3_div" if op == "/" else "_s3_mod"
            return f"{function}({left}, {right})", _numeric_result(lt, rt)
        return f"({left} {op} {right})", _numeric_result(lt, rt)

    def column(self, node: exp.Column) -> tuple[str, T]:
        if isinstance(node.this, exp.Star):
            raise _invalid("* is only allowed alone in the SELECT list")
        if node.args.get("db") or node.args.get("catalog"):
            raise _invalid(f"nested paths are not supported for CSV: {node.sql()!r}")
        if node.table and node.table.lower() not in self.qualifiers:
            raise _invalid(f"unknown qualifier {node.table!r} in {node.sql()!r}")
        ident = node.this
        quoted = bool(ident.args.get("quoted"))
        name = ident.name
        position = None if quoted else values.positional(name)
        if position is None:
            if not quoted and name.startswith("_") and name[1:].isdigit():
                raise _invalid(f"bad column position {name!r}")
            position = self.resolve(name, quoted)
        if position >= MAX_COLUMNS:
            raise _invalid(f"column {name!r} is beyond the {MAX_COLUMNS} column limit")
        number = self.columns.setdefault(position, len(self.columns))
        return f"c{number}", T.STRING

    def literal(self, node: exp.Literal) -> tuple[str, T]:
        if node.is_string:
            return self.param(node.this), T.STRING
        number = values.parse_number(node.this)
        if number is None:
            raise _invalid(f"bad number {node.this!r}")
        return self.param(number), T.INT if isinstance(number, int) else T.FLOAT

    def function(self, node: exp.Anonymous) -> tuple[str, T]:
        name = str(node.this).upper()
        args = node.expressions
        arity = {"UTCNOW": 0, "TO_TIMESTAMP": 1, "DATE_ADD": 3, "DATE_DIFF": 3}
        if name not in arity:
            raise _invalid(f"function {name} is not supported")
        if len(args) != arity[name]:
            raise _invalid(f"{name} takes {arity[name]} arguments")
        if name == "UTCNOW":
            return self.param(self.now), T.TIMESTAMP
        if name == "TO_TIMESTAMP":
            return self.timestamp(args[0], name), T.TIMESTAMP
        part = self.param(_part(args[0], _DATE_PARTS, name))
        if name == "DATE_ADD":
            amount, _ = self.numeric(args[1], name)
            return f"_s3_date_add({part}, {amount}, {self.timestamp(args[2], name)})", T.TIMESTAMP
        first, second = self.timestamp(args[1], name), self.timestamp(args[2], name)
        return f"_s3_date_diff({part}, {first}, {second})", T.INT

    def timestamp(self, node: exp.Expression, what: str) -> str:
        sql, kind = self.expr(node)
        if kind in _LOOSE:
            return f"_s3_ts({sql})"
        if kind not in (T.TIMESTAMP, T.NULL):
            raise _invalid(f"{what} needs a timestamp, not {node.sql()!r}")
        return sql

    def string(self, node: exp.Expression) -> str:
        sql, kind = self.expr(node)
        if kind in (T.STRING, T.NULL, T.ANY):
            return sql
        return f"_s3_str({sql}, '{kind.value}')"


_TRANSLATOR_HANDLERS: dict[type[exp.Expression], Handler] = {
    exp.Column: _Translator.column,
    exp.Literal: _Translator.literal,
    exp.Anonymous: _Translator.function,
    **_HANDLERS,
}

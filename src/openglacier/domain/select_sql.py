"""The Glacier Select SQL subset (spec 7.2), parsed by sqlglot, run by SQLite.

We do not write a SQL engine: sqlglot parses the expression and checks it against
the subset Glacier accepts (one SELECT with a select list, FROM ARCHIVE or
OBJECT with an optional alias, WHERE; no LIMIT, aggregates, GROUP BY, joins,
subqueries, DISTINCT, UNION or ORDER BY), then rewrites column references to
the columns of a table that `select.py` loads from the CSV archive, and renders
the query for SQLite, which evaluates it.

Columns are `_1`, `_2`, ... (or `alias._N`), or header names when the input's
FileHeaderInfo is USE: unquoted names match case-insensitively, double-quoted
ones exactly; an unknown or ambiguous name is an error. CSV values are strings,
as in S3 Select: compare numbers with CAST.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from openglacier.errors import InvalidParameterValueException

MAX_EXPRESSION = 128_000  # characters (spec 7.1, 9 #23)
SOURCES = ("archive", "object")
# Functions of spec 7.2 that SQLite evaluates natively (after sqlglot's rendering)
# or through the helpers `select.py` registers.
FUNCTIONS = {
    "coalesce",
    "nullif",
    "cast",
    "trycast",
    "lower",
    "upper",
    "substring",
    "trim",
    "length",
    "utcnow",
    "to_string",
    "to_timestamp",
}
UNSUPPORTED = (
    (exp.Join, "joins"),
    (exp.Group, "GROUP BY"),
    (exp.Order, "ORDER BY"),
    (exp.Limit, "LIMIT"),
    (exp.Distinct, "DISTINCT"),
    (exp.Having, "HAVING"),
    (exp.Window, "window functions"),
    (exp.AggFunc, "aggregate functions"),
    (exp.Union, "UNION"),
)


def invalid(message: str) -> InvalidParameterValueException:
    return InvalidParameterValueException(f"Invalid SelectParameters.Expression: {message}")


@dataclass(frozen=True)
class ParsedQuery:
    tree: exp.Select
    alias: str | None


def parse_query(expression: str) -> ParsedQuery:
    """Parse and check the subset; the column rewrite waits for the CSV header."""
    if len(expression) > MAX_EXPRESSION:
        raise invalid(f"longer than {MAX_EXPRESSION} characters.")
    try:
        statements = sqlglot.parse(expression)
    except ParseError as exc:
        raise invalid(f"syntax error: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Select):
        raise invalid("only one SELECT statement is supported.")
    tree = statements[0]
    for kind, name in UNSUPPORTED:
        if tree.find(kind) is not None:
            raise invalid(f"{name}: not supported by Glacier Select.")
    if any(s is not tree for s in tree.find_all(exp.Select)):
        raise invalid("subqueries: not supported by Glacier Select.")
    alias = _source_alias(tree)
    for column in tree.find_all(exp.Column):
        _check_qualifier(column, alias)
    for func in tree.find_all(exp.Func):
        function = _function_name(func)
        if function is not None and function not in FUNCTIONS:
            raise invalid(f"function {function.upper()} is not supported.")
    return ParsedQuery(tree, alias)


def _from_key(tree: exp.Select) -> str:
    # sqlglot names the FROM argument "from_" in recent releases, "from" before.
    return "from_" if "from_" in tree.args else "from"


def _source_alias(tree: exp.Select) -> str | None:
    source = tree.args.get(_from_key(tree))
    table = source.this if source is not None else None
    if not isinstance(table, exp.Table) or table.name.lower() not in SOURCES or table.db:
        raise invalid("the FROM clause must be FROM ARCHIVE or FROM OBJECT.")
    return table.alias or None


def _function_name(func: exp.Func) -> str | None:
    """Lower-case SQL name of a function call; None for operators (AND, =, ...)."""
    if isinstance(func, exp.Anonymous):
        return str(func.name).lower()
    if isinstance(func, exp.Connector | exp.Binary | exp.Unary | exp.Predicate):
        return None
    if isinstance(func, exp.Cast | exp.TryCast):
        return "cast"
    names = func.sql_names() if hasattr(func, "sql_names") else [func.key]
    return str(names[0]).lower() if names else None


def render(query: ParsedQuery, header: Sequence[str] | None, width: int) -> tuple[str, int]:
    """SQLite text of the query over table `archive(c1..cN)`, and its column count.

    `header`: column names when FileHeaderInfo is USE; `width`: the number of
    columns the data has (positions beyond it read as NULL, as in S3 Select).
    """
    tree = query.tree.copy()
    columns = max(width, len(header or ()), _highest_position(tree))
    for column in list(tree.find_all(exp.Column)):
        column.replace(exp.column(_resolve(column, query.alias, header)))
    for star in list(tree.find_all(exp.Star)):
        if isinstance(star.parent, exp.Select):
            star.replace(exp.Star())
    table = exp.Table(this=exp.to_identifier("archive"))
    tree.set(_from_key(tree), exp.From(this=table))
    if any(isinstance(e, exp.Star) for e in tree.expressions):
        listed = [exp.column(f"c{i}") for i in range(1, max(columns, 1) + 1)]
        tree.set("expressions", listed)
    return tree.sql(dialect="sqlite"), columns


def _highest_position(tree: exp.Select) -> int:
    highest = 0
    for column in tree.find_all(exp.Column):
        position = _position(column.name) if not column.this.quoted else None
        highest = max(highest, position or 0)
    return highest


def _position(name: str) -> int | None:
    if name.startswith("_") and name[1:].isdigit() and int(name[1:]) >= 1:
        return int(name[1:])
    return None


def _check_qualifier(column: exp.Column, alias: str | None) -> None:
    qualifier = column.table
    known = {*SOURCES, *([alias.lower()] if alias else [])}
    if qualifier and qualifier.lower() not in known:
        raise invalid(f"unknown table or alias {qualifier!r}.")


def _resolve(column: exp.Column, alias: str | None, header: Sequence[str] | None) -> str:
    name = column.name
    quoted = bool(column.this.quoted)
    position = None if quoted else _position(name)
    if position is not None:
        return f"c{position}"
    if header is None:
        raise invalid(f"column {name!r} needs FileHeaderInfo USE, or use _1, _2, ...")
    matches = [
        i for i, h in enumerate(header) if (h == name if quoted else h.lower() == name.lower())
    ]
    if not matches:
        raise invalid(f"MissingHeaderName: no column named {name!r} in the header.")
    if len(matches) > 1:
        raise invalid(f"AmbiguousFieldName: {name!r} names several header columns.")
    return f"c{matches[0] + 1}"

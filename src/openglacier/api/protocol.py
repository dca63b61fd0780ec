"""Reading Glacier requests and writing Glacier responses (spec 1.5, 1.7, 2.x)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from openglacier.errors import InvalidParameterValueException, SerializationException

VAULTS_LIMIT = (10, 10)  # (default, maximum) per spec 2.3 / 9 #4
UPLOADS_LIMIT = (50, 50)
PARTS_LIMIT = (50, 50)
# Glacier's deepest body (a wrapped InitiateJob's OutputLocation grantee) is 7 levels.
MAX_JSON_DEPTH = 32


def parse_limit(value: str | None, default: int, maximum: int) -> int:
    """`limit` query parameter: an integer >= 1; above the maximum it is clamped."""
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise InvalidParameterValueException(
            f"Invalid limit: {value}. The limit must be an integer greater than 0."
        )
    return min(int(value), maximum)


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The one reader of client JSON bodies (spec 1.5, 1.7): whatever the Content-Type;
    empty means {}; members whose value is null count as absent.

    Malformed text is a 400 SerializationException: bytes that are not UTF-8 (JSON
    between systems is UTF-8, RFC 8259 section 8.1), bad syntax, NaN/Infinity
    (not JSON), or nesting deeper than MAX_JSON_DEPTH (Python's decoder would
    otherwise end in a RecursionError, or leave a document too deep to encode
    again). A string no storage can hold is refused by `check_text`.
    """
    if not body.strip():
        return {}
    try:
        text = body.decode("utf-8")  # strict: refuses encoded surrogates (ED A0 80)
        value = json.loads(text, parse_constant=_not_json)
    except ValueError as exc:
        raise SerializationException(f"Could not parse the request body as JSON: {exc}") from None
    except RecursionError:
        raise _too_deep() from None
    if not isinstance(value, dict):
        raise SerializationException("The request body must be a JSON object.")
    _check_document(value)
    return {k: v for k, v in value.items() if v is not None}


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def _too_deep() -> SerializationException:
    return SerializationException(
        f"Could not parse the request body as JSON: it is nested more than "
        f"{MAX_JSON_DEPTH} levels deep."
    )


def _check_document(document: dict[str, Any]) -> None:
    """Depth and text of every name and string, in one pass (iterative: no recursion)."""
    pending: list[tuple[Any, int, str]] = [(document, 1, "")]
    while pending:
        value, depth, path = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise _too_deep()
        if isinstance(value, dict):
            for key, item in value.items():
                name = f"{path}.{key}" if path else key
                check_text(key, f"the name of member {name}")
                pending.append((item, depth + 1, name))
        elif isinstance(value, list):
            pending.extend((item, depth + 1, f"{path}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, str):
            check_text(value, f"member {path}")


def check_text(value: str, where: str) -> None:
    """The one rule for client text that may reach storage: no lone UTF-16 surrogate
    (JSON can escape one, "\\ud800", but it is no Unicode character and cannot be
    encoded as UTF-8) and no NUL (PostgreSQL text cannot hold it). 400
    InvalidParameterValueException: the text is well-formed, its value is not."""
    if "\x00" in value:
        raise InvalidParameterValueException(f"Invalid value in {where}: it contains NUL.")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidParameterValueException(
                f"Invalid value in {where}: it is not valid Unicode text (a lone surrogate)."
            ) from None


def string_map(value: Any, member: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise SerializationException(f"Member {member} must be a map of strings to strings.")
    return dict(value)


def string_list(value: Any, member: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SerializationException(f"Member {member} must be a list of strings.")
    return value


def json_response(payload: Mapping[str, Any], status: int = 200) -> Response:
    # Exactly "application/json", no charset: boto 2 compares the header verbatim.
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(content=body, status_code=status, media_type="application/json")


def empty_response(status: int, headers: Mapping[str, str] | None = None) -> Response:
    """201/202/204 carry no body and Content-Length: 0 (spec 1.7)."""
    response = Response(content=b"", status_code=status, headers=dict(headers or {}))
    response.headers["content-length"] = "0"
    return response

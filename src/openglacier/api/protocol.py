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
    """JSON bodies are parsed whatever the Content-Type (spec 1.5); empty means {}.

    Members whose value is null count as absent (spec 1.7).
    """
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SerializationException(f"Could not parse the request body as JSON: {exc}") from None
    if not isinstance(value, dict):
        raise SerializationException("The request body must be a JSON object.")
    return {k: v for k, v in value.items() if v is not None}


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

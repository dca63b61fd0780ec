"""Input rules shared by several operations (spec 1.4, 1.5, 2.15, 2.18)."""

from __future__ import annotations

import re

from openglacier.errors import InvalidParameterValueException, MissingParameterValueException

VAULT_NAME_RE = re.compile(r"\A[A-Za-z0-9_.\-]{1,255}\Z")
HEX64_RE = re.compile(r"\A[0-9A-Fa-f]{64}\Z")
MAX_DESCRIPTION = 1024


def is_valid_vault_name(name: str) -> bool:
    return VAULT_NAME_RE.match(name) is not None


def check_description(value: str | None, *, strip_leading: bool = False) -> str | None:
    """Archive descriptions: at most 1,024 characters, each 0x20-0x7E (spec 1.5).

    InitiateMultipartUpload removes leading spaces (spec 2.20).
    """
    if value is None:
        return None
    if strip_leading:
        value = value.lstrip(" ")
    if len(value) > MAX_DESCRIPTION or any(not 0x20 <= ord(c) <= 0x7E for c in value):
        raise InvalidParameterValueException(
            "Invalid archive description: it must be at most 1024 characters, "
            "each a printable ASCII character (0x20-0x7E)."
        )
    return value


def require_tree_hash(value: str | None) -> str:
    """A tree-hash header must be present and 64 hex digits; returned lowercased."""
    if value is None or value == "":
        raise MissingParameterValueException("Required parameter missing: x-amz-sha256-tree-hash")
    if HEX64_RE.match(value) is None:
        raise InvalidParameterValueException(f"Invalid x-amz-sha256-tree-hash: {value}")
    return value.lower()


def parse_decimal(value: str) -> int | None:
    """Strict non-negative decimal (no sign, spaces or exponent), else None."""
    return int(value) if value.isascii() and value.isdigit() else None

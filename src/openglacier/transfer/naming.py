"""Archive descriptions: the `--description` template and its reversible encoding.

Glacier descriptions are at most 1,024 characters, each printable ASCII
(0x20-0x7E). File names are not: they may hold any Unicode, and control
characters. The template's result is therefore percent-encoded (UTF-8, RFC 3986
style) for every character outside printable ASCII and for "%" itself, so that
`decode_description` gives back exactly the text the template produced, and a
description without "%" or non-ASCII characters is sent unchanged.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, unquote

MAX_DESCRIPTION = 1024
DEFAULT_TEMPLATE = "{relpath}"
FIELDS = ("path", "relpath", "name", "mtime", "size")
# Printable ASCII except "%", which introduces an escape.
_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


class DescriptionError(ValueError):
    """The template is malformed, or its result is too long for Glacier."""


@dataclass(frozen=True)
class FileFacts:
    """What a description template may name about a file."""

    path: Path  # absolute
    relpath: str  # as the user named it: relative to the argument's parent directory
    size: int
    mtime_ns: int


def check_template(template: str) -> None:
    """Raise DescriptionError for a template naming unknown fields or malformed."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise DescriptionError(f"bad --description template {template!r}: {exc}") from exc
    unknown = sorted({f for f in fields if f not in FIELDS})
    if unknown:
        raise DescriptionError(
            f"bad --description template {template!r}: unknown field(s) {', '.join(unknown)}"
            f" (known: {', '.join(FIELDS)})"
        )


def render(template: str, facts: FileFacts) -> str:
    """The description to send: the template filled in, then encoded."""
    mtime = datetime.fromtimestamp(facts.mtime_ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = template.format(
        path=str(facts.path),
        relpath=facts.relpath,
        name=facts.path.name,
        mtime=mtime,
        size=facts.size,
    )
    encoded = encode_description(text)
    if len(encoded) > MAX_DESCRIPTION:
        raise DescriptionError(
            f"description is {len(encoded)} characters once encoded, Glacier takes at most"
            f" {MAX_DESCRIPTION}; use a shorter --description template (e.g. '{{name}}')"
        )
    return encoded


def encode_description(text: str) -> str:
    return quote(text, safe=_SAFE, encoding="utf-8", errors="surrogateescape")


def decode_description(description: str) -> str:
    """The text an encoded description stands for (descriptions written by other
    tools come back unchanged unless they hold %XX sequences)."""
    return unquote(description, encoding="utf-8", errors="surrogateescape")
